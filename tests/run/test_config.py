import argparse
import json
import re

import pytest

from salt_tf.run import config as config_mod
from salt_tf.run.config import PRESETS, Config


def parse(*argv):
    parser = argparse.ArgumentParser()
    config_mod.add_arguments(parser)
    return config_mod.from_args(parser.parse_args(list(argv)))


def test_every_field_has_a_flag_and_help():
    assert set(config_mod.HELP) == set(Config.__dataclass_fields__)
    assert parse() == Config()


def test_flags_map_one_to_one():
    config = parse("--folds", "3", "--fold", "1", "--size", "192", "--no-scse", "--hypercolumn",
                   "--encoder-weights", "none", "--phase2-lr", "3e-4", "--steps-per-epoch", "7")
    assert (config.folds, config.fold, config.size, config.scse, config.hypercolumn) == (3, 1, 192, False, True)
    assert config.encoder_weights is None and config.phase2_lr == 3e-4 and config.steps_per_epoch == 7


def test_preset_then_explicit_flags_win():
    config = parse("--preset", "demo", "--phase1-epochs", "9")
    assert config.preset == "demo" and config.encoder == PRESETS["demo"]["encoder"]
    assert config.phase1_epochs == 9


def test_unknown_preset_is_refused():
    with pytest.raises(SystemExit):
        parse("--preset", "nope")
    with pytest.raises(ValueError, match="known presets"):
        config_mod.with_preset(Config(), "nope")


def test_save_and_load(tmp_path):
    config = Config(seed=7, fold=2)
    config.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == config
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 7
    (tmp_path / "bad.json").write_text('{"sead": 1}')
    with pytest.raises(ValueError, match="unknown settings"):
        Config.load(tmp_path / "bad.json")


def test_every_preset_is_a_valid_config():
    from salt_tf.run.config import check_config

    for name in PRESETS:
        check_config(config_mod.with_preset(Config(), name))  # unknown fields would raise TypeError
    assert PRESETS["cpu-60min"]["budget_min"] == 60 and PRESETS["cpu-60min"]["encoder_weights"] is None


@pytest.mark.parametrize("flags, message", [
    (("--budget-min", "0"), "--budget-min 0.0: the time budget must be positive"),
    (("--phase1-share", "1.5"), "--phase1-share 1.5: must be in"),
    (("--warmup-size", "48"), "--warmup-size 48: must be a multiple of 32 below --size 128"),
    (("--warmup-size", "128"), "--warmup-size 128: must be a multiple of 32 below --size 128"),
    (("--warmup-size", "64", "--warmup-share", "1"), "--warmup-share 1.0: must be in (0, 1)"),
    (("--ema", "1"), "--ema 1.0: must be a momentum in [0, 1)"),
    (("--fit", "pad", "--size", "256"), "--fit pad --size 256: a 101x101 tile is reflected out to the size"),
    (("--fit", "pad", "--size", "96"), "--fit pad --size 96: a 101x101 tile is reflected out to the size"),
    (("--fit", "pad", "--warmup-size", "64"), "--fit pad --warmup-size 64: progressive resizing trains on resized"),
])
def test_bad_budget_and_schedule_settings_are_refused(flags, message):
    from salt_tf.run.config import check_config

    with pytest.raises(ValueError, match=re.escape(message)):
        check_config(parse(*flags))


def test_unknown_schedule_is_refused_by_the_cli():
    with pytest.raises(SystemExit):
        parse("--phase1-schedule", "step")
    with pytest.raises(SystemExit):
        parse("--fit", "crop")
