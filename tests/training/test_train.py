"""End to end: train.py on tiny synthetic data (64x64, resnet18, 1 epoch per phase, 2 folds)."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scripts import TINY, load_script

from salt_tf.run.config import Config
from salt_tf.tiles import synthetic
from salt_tf.tiles.data import load_train
from salt_tf.tiles.folds import read_folds
from salt_tf.training.train import run

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CLI = load_script("train.py", "train_cli")


def train_here(capsys, *args) -> SimpleNamespace:
    """train.py's main() in this process, seen as a finished process: an error path needs no
    process of its own (nor TensorFlow's start-up) to show its one line and exit status."""
    try:
        code = TRAIN_CLI.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def test_end_to_end_writes_every_file(tiny_run, tiny_data):
    out, stdout = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and config["size"] == 64 and config["encoder"] == "resnet18"
    folds = pd.read_csv(out / "folds.csv", dtype={"id": str})
    ids = load_train(tiny_data).ids
    assert sorted(folds["id"]) == sorted(ids) and set(folds["fold"]) == {0, 1}
    for k in (0, 1):
        fold = out / f"fold{k}"
        assert (fold / "model.keras").is_file()
        assert (fold / "saved_model" / "saved_model.pb").is_file()
        assert any((fold / "logs").rglob("events.out.tfevents.*"))
        history = pd.read_csv(fold / "history.csv")
        assert list(history["phase"]) == [1, 2]
        assert {"loss", "val_loss", "val_score", "learning_rate"} <= set(history.columns)
        assert history["val_score"].between(0, 1).all()
        with np.load(fold / "oof.npz") as oof:
            assert oof["probs"].shape == ((folds["fold"] == k).sum(), 101, 101)
            assert set(oof["ids"]) == set(folds["id"][folds["fold"] == k])
            assert 0 <= oof["probs"].min() and oof["probs"].max() <= 1
        assert not (fold / "checkpoint").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["folds_done"] == [0, 1] and report["n_oof"] == 40
    assert 0 <= report["cv_score"] <= 1 and 0 <= report["cv_score_tuned"] <= 1 and 0 < report["threshold"] < 1
    assert 0 < report["boundary_threshold"] < 1 and 0 <= report["pixel_iou"] <= 1
    assert all(r["phase_seconds"]["1"] > 0 and r["phase_seconds"]["2"] > 0 for r in report["folds"])
    assert "Out-of-fold competition score" in (out / "report.md").read_text()
    stats = json.loads((out / "tile_stats.json").read_text())  # for segment.py's amplitude mapping
    assert stats["n_tiles"] == 40 and stats["median"] == float(np.median(load_train(tiny_data).images))
    # Progress: one summary line per epoch, a line per phase and fold, the final score and folder.
    assert stdout.count("fold 0 phase 1 epoch 1/1:") == 1 and "fold 1 phase 2 done" in stdout
    assert f"cross-validation score {report['cv_score']:.4f}" in stdout and "folds [0, 1]); run folder" in stdout
    assert not list(out.rglob("*.tmp")) and not list(out.parent.glob(".*.tmp"))
    # The fold processes joined one folder: one config (naming the fold of whichever came first).
    assert json.loads((out / "config.json").read_text())["fold"] in (0, 1)


def test_oof_probabilities_are_made_as_predict_makes_them(tiny_run, tiny_data):
    # The threshold is tuned on these: flip TTA through the exported model, predict.py's function.
    from salt_tf.inference.predict import load_ensemble, predict_probs

    out, _ = tiny_run
    train = load_train(tiny_data)
    ensemble = load_ensemble(out)
    assert ensemble.folds == [0, 1]
    ensemble.folds, ensemble.models = [0], ensemble.models[:1]
    with np.load(out / "fold0" / "oof.npz") as oof:
        images = train.images[pd.Index(train.ids).get_indexer(oof["ids"])]
        expected = predict_probs(ensemble, images, tta=True, progress=False)
        untta = predict_probs(ensemble, images, tta=False, progress=False)
        saved = oof["probs"].astype(np.float32)
    assert np.abs(saved - expected).max() < 2e-3  # float16 storage
    assert np.abs(saved - untta).max() > 1e-2  # the test can tell TTA from none


def test_a_fold_with_other_settings_is_refused_and_writes_nothing(tiny_run, tiny_data, capsys):
    out, _ = tiny_run
    before = sorted(p.name for p in out.iterdir())
    result = train_here(capsys, "--data", str(tiny_data), "--out", str(out), *TINY, "--fold", "1", "--seed", "3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # The last line (TensorFlow's C++ start-up notes may come before it).
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "seed: 0 in config.json, 3 now" in result.stderr
    result = train_here(capsys, "--data", str(tiny_data), "--out", str(out), *TINY, "--fold", "1")
    assert result.returncode == 2 and "fold1: this fold was already started; use --resume" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before


def test_bad_data_stops_before_any_epoch(tiny_data, tmp_path, capsys):
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(tiny_data, broken)
    victim = sorted((broken / "train" / "masks").iterdir())[3]
    victim.write_bytes(b"not a png")
    result = train_here(capsys, "--data", str(broken), "--out", str(tmp_path / "r"), *TINY)
    assert result.returncode == 2
    assert f"{victim}: not a readable image" in result.stderr
    assert "epoch" not in result.stdout and not (tmp_path / "r").exists()


def test_unknown_encoder_lists_known_ones(tiny_data, tmp_path, capsys):
    result = train_here(capsys, "--data", str(tiny_data), "--out", str(tmp_path / "r"), *TINY, "--encoder", "resnet35")
    assert result.returncode == 2
    assert "resnet35" in result.stderr and "resnet34" in result.stderr and "resnext50" in result.stderr


def test_short_training_learns_in_mixed_precision(tmp_path):
    """A short training learns (in the machine's mixed precision), and the run leaves the process's
    global precision policy as it found it. Learning is judged by the out-of-fold pixel IoU (best
    over thresholds) against predicting salt everywhere, which an uninformative model reaches: on 50
    tiles the competition score against predicting no salt depends on the seed (benchmarks/RESULTS.md,
    "The learning test, judged by pixel IoU"). 6 epochs and the margin 0.16: after 4 epochs one seed
    in bfloat16 on an AMD EPYC with AVX-512 BF16 beat salt everywhere by only 0.091; after 6, seeds
    1-6 on four CPU arithmetics beat it by 0.301-0.449 and the broken trainings (masks shuffled,
    learning rate 0) by 0.009-0.031 ("The learning test on every CPU")."""
    import keras

    from salt_tf.common.machine import mixed_policy

    data = synthetic.generate(tmp_path / "data", n_train=200, n_test=4, seed=11)
    config = Config(data=str(data), out=str(tmp_path / "run"), size=32, encoder="resnet18", encoder_weights=None,
                    batch_size=8, phase1_epochs=6, phase1_lr=0.05, phase2_epochs=0, folds=4, fold=0, seed=1,
                    mixed_precision=True)
    said = []
    report = run(config, log=said.append)
    train = load_train(data)
    folds = read_folds(tmp_path / "run" / "folds.csv", ids=train.ids).set_index("id").loc[train.ids, "fold"]
    val_masks = train.masks[folds.to_numpy() == 0]
    salt_everywhere = val_masks.mean()  # the pixel IoU of predicting salt on every pixel
    all_empty = np.mean([m.max() == 0 for m in val_masks])  # the competition score of predicting no salt
    print(f"pixel IoU {report['pixel_iou']:.3f} (salt everywhere {salt_everywhere:.3f}); competition score "
          f"{report['folds'][0]['val_score_101']:.3f} at 101x101 (no salt anywhere {all_empty:.3f})")
    assert report["pixel_iou"] > salt_everywhere + 0.16
    # float16 where a GPU is visible, bfloat16 on a CPU that computes it natively; float32, said
    # once, on a CPU that would emulate bfloat16 (about ten times slower)
    model = keras.models.load_model(tmp_path / "run" / "fold0" / "model.keras")
    expected = mixed_policy()
    assert any(layer.dtype_policy.name == (expected or "float32") for layer in model.layers)
    assert sum("no native bfloat16" in line for line in said) == (expected is None)
    assert keras.mixed_precision.global_policy().name == "float32"  # and the process is float32 again


def _tiny_fit(budget, epochs=3, n=64, batch=8):
    return _tiny_fit_with([budget], epochs, n, batch)


def _tiny_fit_with(callbacks, epochs=3, n=64, batch=8):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: rates.append(float(model.optimizer.learning_rate.numpy())))
    history = model.fit(x, x[:, :1], batch_size=batch, epochs=epochs, validation_data=(x[:8], x[:8, :1]),
                        callbacks=[*callbacks, record], verbose=0)
    return history, rates


def test_time_budget_stops_after_a_batch_and_still_validates():
    import time

    from salt_tf.training.callbacks import TimeBudget

    budget = TimeBudget(time.monotonic() - 1.0, val_batches=1)  # already past the deadline
    history, rates = _tiny_fit(budget)
    assert budget.stopped and budget.steps == 1 and len(rates) == 1  # one batch of 8, not 3 epochs
    assert len(history.history["val_loss"]) == 1  # the interrupted epoch was still validated


def test_time_budget_does_not_judge_by_the_first_batch():
    # The first batch traces the step function: slow once, then fast. The old estimate took it for
    # the batch time, predicted a validation pass of 0.5 x 100 x 1 s and stopped a run that had time.
    import time

    import keras

    from salt_tf.training.callbacks import TimeBudget

    slow_first = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: time.sleep(1.0) if b == 0 else None)
    budget = TimeBudget(time.monotonic() + 30.0, val_batches=100)
    _tiny_fit_with([slow_first, budget], epochs=2)  # the budget's batch time includes the sleep
    assert not budget.stopped and budget.steps == 16


def test_time_budget_cosine_learning_rate_ends_at_the_step_limit():
    import time

    from salt_tf.training.callbacks import TimeBudget

    budget = TimeBudget(time.monotonic() + 3600, val_batches=1, peak_lr=0.2, total_steps=16)
    _, rates = _tiny_fit(budget, epochs=2)  # 2 epochs of 8 batches = the 16 steps
    assert not budget.stopped and len(rates) == 16
    # Set after each batch for the next: halfway down after 8 of 16 steps, zero at the end.
    assert rates[7] == pytest.approx(0.1, rel=1e-3) and rates[-1] == pytest.approx(0.0, abs=1e-6)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_fast_bfloat16_reads_the_cpu_flags():
    from salt_tf.common import machine

    assert machine.cpu_flags("processor: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n") == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    assert machine.cpu_flags("Features\t: fp asimd bf16\n") == {"fp", "asimd", "bf16"}
    assert machine.fast_bfloat16({"avx2", "avx512_bf16"}) and machine.fast_bfloat16({"amx_bf16"})
    assert not machine.fast_bfloat16({"avx2", "fma", "avx512f"}) and not machine.fast_bfloat16(set())


def test_decayed_lr_cosine_and_linear():
    from salt_tf.training.callbacks import decayed_lr

    for schedule in ("cosine", "linear"):
        assert decayed_lr(0.2, 0.0, schedule) == pytest.approx(0.2)
        assert decayed_lr(0.2, 0.5, schedule) == pytest.approx(0.1)
        assert decayed_lr(0.2, 1.0, schedule) == pytest.approx(0.0, abs=1e-12)
        assert decayed_lr(0.2, 1.5, schedule) == pytest.approx(0.0, abs=1e-12)  # clipped past the end
    assert decayed_lr(0.2, 0.25, "linear") == pytest.approx(0.15)
    assert decayed_lr(0.2, 0.25, "cosine") == pytest.approx(0.1 * (1 + np.cos(np.pi / 4)))
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        decayed_lr(0.2, 0.5, "step")


def test_time_budget_schedule_goes_on_across_two_fits():
    """One phase in two fit() calls (one per input size): the second continues the decay."""
    import time

    from salt_tf.training.callbacks import TimeBudget

    first = TimeBudget(time.monotonic() + 3600, val_batches=1, peak_lr=0.2, total_steps=16, schedule="linear")
    _, rates = _tiny_fit(first, epochs=1)  # 8 of the 16 steps
    second = TimeBudget(time.monotonic() + 3600, val_batches=1, peak_lr=0.2, total_steps=16, schedule="linear",
                        steps_done=first.steps)
    _, more = _tiny_fit(second, epochs=1)
    assert first.steps == 8 and rates[-1] == pytest.approx(0.1, rel=1e-3)
    assert more[0] == pytest.approx(0.2 * 7 / 16, rel=1e-3) and more[-1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("phase", [1, 2])
def test_a_phase_traces_its_training_step_once(phase):
    """The phase's optimizer has its slots before fit(): the first fit traces the training step
    once (Keras making them inside the traced step has it traced twice; benchmarks/first_fit.py)."""
    import keras

    from salt_tf.training.train import _phase_compile

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    _phase_compile(model, Config(), phase, steps=2)
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    model.fit(x, (x > 0.5).astype("float32"), batch_size=4, epochs=2, verbose=0)
    assert len(traces) == 1


def test_stages_split_phase_one_for_progressive_resizing():
    from salt_tf.training.train import _stages

    config = Config(size=128, warmup_size=64, warmup_share=0.3, phase1_epochs=10)
    assert _stages(config, 1, 10) == [(64, 3, 0.3), (128, 10, 1.0)]
    assert _stages(config, 2, 50) == [(128, 50, 1.0)]  # phase 2 stays at the full size
    assert _stages(Config(size=128), 1, 10) == [(128, 10, 1.0)]


def test_best_epoch_is_chosen_at_the_export_size(tmp_path):
    """A warm-up epoch validated at its smaller size is best only until the first epoch at the
    final size; among those, the score decides."""
    from salt_tf.training.callbacks import FoldTracker

    state = {}
    warm = FoldTracker(tmp_path, 0, 1, 10, state, print, size=64, final_size=128)
    full = FoldTracker(tmp_path, 0, 1, 10, state, print, size=128, final_size=128)
    assert warm._ranks_above_best(0.3)  # nothing held yet
    state.update(best_score=0.7, best_size=64)
    assert warm._ranks_above_best(0.75) and not warm._ranks_above_best(0.6)
    assert full._ranks_above_best(0.2)
    state.update(best_score=0.2, best_size=128)
    assert not warm._ranks_above_best(0.9)
    assert full._ranks_above_best(0.25) and not full._ranks_above_best(0.15)
    del state["best_size"]  # a state written before sizes were recorded: its best was at the final size
    assert not warm._ranks_above_best(0.9) and full._ranks_above_best(0.25)


def test_progressive_resizing_under_a_budget(tiny_data, tmp_path, monkeypatch, eager):
    """Both phases stop cleanly when their share of the budget is spent (not after 500 epochs each).
    Phase 1 starts at 32, goes on at 64 within its time; the warm-up validates at 32, the rest and
    the exported model at 64, whose best epoch is kept; the report has the learning curve and the
    time per training tile."""
    import cv2
    import tensorflow as tf

    from salt_tf.tiles import pipeline

    validated = []
    eval_dataset = pipeline.eval_dataset
    monkeypatch.setattr(pipeline, "eval_dataset",
                        lambda images, masks, config: validated.append(config.size) or eval_dataset(images, masks, config))
    config = Config(data=str(tiny_data), out=str(tmp_path / "r"), size=64, encoder="resnet18", encoder_weights=None,
                    batch_size=8, phase1_epochs=500, phase2_epochs=500, phase2_patience=500, folds=2, fold=0,
                    budget_min=0.5, warmup_size=32, warmup_share=0.5, phase1_schedule="linear")
    lines = []
    report = run(config, log=lines.append)
    fold = report["folds"][0]
    assert fold["stopped_by_budget"] == [1, 2]
    assert 1 <= fold["phase_epochs"]["1"] < 500 and 1 <= fold["phase_epochs"]["2"] < 500
    assert sum(fold["phase_seconds"].values()) < config.budget_min * 60 + 60  # stopped near the budget
    assert any("phase 1 done" in line and "(time budget spent)" in line for line in lines)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["budget_min"] == 0.5
    row = (tmp_path / "r" / "report.md").read_text().splitlines()[-1]
    assert row.endswith("| 1, 2 |") and f"| {fold['phase_epochs']['1']}/{fold['phase_epochs']['2']} |" in row
    history = pd.read_csv(tmp_path / "r" / "fold0" / "history.csv")
    assert fold["val_score"] == pytest.approx(history["val_score"][history["size"] == 64].max())
    phase1 = history[history["phase"] == 1]
    assert list(phase1["size"]) == sorted(phase1["size"]) and set(phase1["size"]) == {32, 64}
    assert set(history[history["phase"] == 2]["size"]) == {64}
    assert sorted(validated) == [32, 64]  # one validation set per size
    best = history[(history["phase"] == fold["best_phase"]) & (history["epoch"] == fold["best_epoch"])]
    assert list(best["size"]) == [64]
    assert list(history["epoch"][history["phase"] == 1]) == list(range(1, len(phase1) + 1))  # no epoch twice
    assert (history["ms_per_tile"] > 0).all() and (history["train_seconds"] <= history["seconds"]).all()
    # The learning rate decays over the whole phase, across the size change, to near 0 at its end:
    # the last batch's rate is the linear decay's for the time the clock still had then. The phase
    # stops while one batch and the validation pass still fit, a large part of this tiny phase (the
    # eager validation passes left the rate at 0.31 and 0.33 of its peak in CI on a slow machine),
    # so the bound is that time's share of the phase, not a fixed fraction.
    last = phase1.iloc[-1]
    left = last["val_seconds"] + last["after_last_batch_seconds"] + 2 * last["train_seconds"] / max(1, last["batches"])
    assert (np.diff(phase1["learning_rate"]) <= 0).all()
    assert last["learning_rate"] < config.phase1_lr * min(0.5, left / fold["phase_seconds"]["1"] + 0.1), \
        (last.to_dict(), fold["phase_seconds"])
    served = tf.saved_model.load(str(tmp_path / "r" / "fold0" / "saved_model"))
    assert tuple(served.serve.input_signature[0].shape) == (None, 64, 64, 1)
    assert any("input 32x32 from epoch 1" in line for line in lines) and any("input 64x64 from epoch" in line for line in lines)
    curve = cv2.imread(str(tmp_path / "r" / "learning_curve.png"))
    assert curve is not None and curve.shape[0] > 200 and curve.std() > 10  # a drawn picture
    text = (tmp_path / "r" / "report.md").read_text()
    assert "![learning curve](learning_curve.png)" in text and " at 32, " in text and " at 64 / " in text


# --- resume = continue (a real SIGKILL at every kind of instant: tests/test_runfolder.py) -----------


def test_time_budget_continues_from_the_spent_time_and_steps():
    import time

    from salt_tf.training.callbacks import TimeBudget

    # 8 of 16 steps done before the interruption: the next rate continues the cosine from there.
    budget = TimeBudget(time.monotonic() + 3600, val_batches=1, peak_lr=0.2, total_steps=16, steps_done=8)
    _, rates = _tiny_fit(budget, epochs=1)
    assert rates[0] == pytest.approx(0.1 * (1 + np.cos(np.pi * 9 / 16)), rel=1e-3)
    assert rates[-1] == pytest.approx(0.0, abs=1e-6)
    # 90 s of 100 spent: the time-based progress starts at 0.9, not 0.
    now = time.monotonic()
    budget = TimeBudget(now + 10, val_batches=1, horizon=(now - 90, now + 10))
    assert budget.progress() == pytest.approx(0.9, abs=0.01)


def test_early_stopping_and_plateau_counters_come_back():
    from salt_tf.training.callbacks import ResumableEarlyStopping, ResumableReduceLROnPlateau

    # Best val_loss 0.0 and two flat epochs already counted: the next flat epoch halves the rate
    # (patience 3) and the one after stops (Keras never stops at a fit's first epoch), where fresh
    # callbacks would train four epochs before stopping.
    stop = ResumableEarlyStopping("val_loss", patience=3, restore={"wait": 2, "best": 0.0, "best_epoch": 0})
    plateau = ResumableReduceLROnPlateau("val_loss", patience=3, factor=0.5,
                                         restore={"wait": 2, "best": 0.0, "cooldown_counter": 0})
    history, rates = _tiny_fit_with([stop, plateau], epochs=5)
    assert len(history.history["val_loss"]) == 2
    assert stop.counters()["wait"] == 4 and plateau.counters()["best"] == 0.0
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.05)


# --- failures write nothing -----------------------------------------------------------------------


def _main(argv, capsys):
    try:
        code = TRAIN_CLI.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    return code, capsys.readouterr().err


def test_missing_imagenet_weights_is_one_line_before_any_folder_or_data(tiny_data, tmp_path, capsys, monkeypatch):
    from salt_tf.model import encoders

    def offline(name):
        raise FileNotFoundError(f"ImageNet weights for {name}: /k/models/x.h5 is missing and could not be downloaded")

    monkeypatch.setattr(encoders, "imagenet_weights_path", offline)
    loaded = []
    monkeypatch.setattr("salt_tf.training.train.load_train", lambda *a: loaded.append(a))
    code, err = _main(["--folds", "5", "--size", "128", "--out", tmp_path / "r"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ImageNet weights for resnet34: /k/models/x.h5 is missing")
    assert "--encoder-weights PATH" in err and "--encoder-weights none" in err and "--preset demo" in err
    assert not (tmp_path / "r").exists() and not loaded


@pytest.mark.parametrize("case", ["resume without --out", "resume of no run", "resume changing a flag",
                                  "resume changing a preset", "no epochs", "all folds into a run",
                                  "not a run folder", "weights file missing", "four decoder widths",
                                  "negative loss weight"])
def test_cli_errors_are_one_line_exit_2_and_write_nothing(case, tiny_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Config(data=str(tiny_data), out=str(run_dir), size=64, encoder="resnet18", encoder_weights=None,
           folds=2, fold=0).save(run_dir / "config.json")
    (run_dir / "folds.csv").write_text("id,fold\n")
    before = sorted(p.name for p in run_dir.iterdir())
    argv, message = {
        "resume without --out": (["--resume"], "--resume needs --out RUN"),
        "resume of no run": (["--resume", "--out", tmp_path / "nothing"], "nothing: no run to resume here (no config.json)"),
        "resume changing a flag": (["--resume", "--out", run_dir, "--size", "32", "--encoder", "resnet18"],
                                   "these flags change them: --size 32 (the run has 64)"),
        "resume changing a preset": (["--resume", "--out", run_dir, "--preset", "demo"],
                                     "--batch-size 8 (the run has 16)"),
        "no epochs": (["--out", tmp_path / "new", "--phase1-epochs", "0", "--phase2-epochs", "0",
                       "--encoder-weights", "none"], "no epoch to train"),
        "all folds into a run": (["--data", tiny_data, "--out", run_dir, "--encoder-weights", "none"],
                                 "run folder exists and is not empty"),
        "not a run folder": (["--data", tiny_data, "--out", tmp_path, "--encoder-weights", "none", "--fold", "0"],
                             "folder exists and is not a run folder (no config.json)"),
        "weights file missing": (["--out", tmp_path / "new", "--encoder-weights", tmp_path / "w.h5"], "w.h5: no such file"),
        "four decoder widths": (["--out", tmp_path / "new", "--encoder-weights", "none", "--decoder-filters", "64,32,16,8"],
                                "--decoder-filters 64,32,16,8: expected five positive widths"),
        "negative loss weight": (["--out", tmp_path / "new", "--encoder-weights", "none", "--phase1-lovasz-weight", "-1"],
                                 "--phase1-lovasz-weight -1.0: a loss weight must be 0 or more"),
    }[case]
    code, err = _main(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert err.strip().count("\n") == 0 or err.startswith("usage:")
    assert sorted(p.name for p in run_dir.iterdir()) == before and not (tmp_path / "new").exists()
    assert not list(tmp_path.glob(".*.tmp"))



def test_weight_average_is_what_is_validated_kept_and_resumed():
    """WeightAverage: the exponential average of the weights after each batch; validation sees it
    and training goes on from the raw weights; saved and restored, it goes on as if never stopped."""
    import keras

    from salt_tf.training.callbacks import WeightAverage

    def build():
        keras.utils.set_random_seed(2)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu"), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.05), "mse")
        return model

    x = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    y = x[:, :1] - x[:, 1:2]
    model, average = build(), WeightAverage(0.5)
    snapshots, validated = [], []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: snapshots.append(model.get_weights()),
        on_test_begin=lambda logs: validated.append(model.get_weights()))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False, validation_data=(x, y),
              callbacks=[average, record])
    expected = snapshots[0]  # started at the first batch's weights, then averaged batch by batch
    for weights in snapshots[1:]:
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, weights)]
    for a, e in zip(average.weights(), expected):
        np.testing.assert_allclose(a, e, rtol=1e-6)
    for a, e in zip(validated[-1], expected):  # validation ran on the average (it was swapped in)...
        np.testing.assert_allclose(a, e, rtol=1e-6)
    for a, e in zip(model.get_weights(), snapshots[-1]):  # ...and swapped out after
        np.testing.assert_array_equal(a, e)
    assert not np.allclose(expected[0], snapshots[-1][0])  # the average differs from the raw weights

    # Saved mid-way and restored into a rebuilt model: the same average as one uninterrupted run.
    first, second = build(), build()
    whole = WeightAverage(0.5)
    first.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False, callbacks=[whole])
    part = WeightAverage(0.5)
    second.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[part])
    weights, arrays = second.get_weights(), part.arrays()
    third = build()
    third.set_weights(weights)
    third.optimizer.build(third.trainable_variables)
    rest = WeightAverage(0.5, arrays)
    third.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[rest])
    for a, b in zip(whole.arrays(), rest.arrays()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_padding_run_trains_on_101_tiles_and_predicts_them(tiny_data, tmp_path, eager):
    """--fit pad end to end: the fold's model takes 101x101 tiles, reflects them out to 128 and gives
    the 128-pixel U-Net's logits at the tile's own pixels; predict.py's ensemble loads the run and
    gives its out-of-fold probabilities. It trains with the auxiliary heads, which the export drops."""
    import keras

    import salt_tf.model.unet  # noqa: F401  (registers the custom layers the file names)
    from salt_tf.inference.predict import load_ensemble, predict_probs

    config = Config(data=str(tiny_data), out=str(tmp_path / "r"), size=128, fit="pad", encoder="resnet18",
                    encoder_weights=None, batch_size=8, phase1_epochs=1, phase2_epochs=0, folds=2, fold=0,
                    supervision_weight=0.1, empty_weight=0.05)
    run(config, log=lambda line: None)
    model = keras.models.load_model(tmp_path / "r" / "fold0" / "model.keras", compile=False)
    assert model.input_shape == (None, 101, 101, 1) and model.output_shape == (None, 101, 101, 1)
    assert not any(layer.name.startswith(("supervision", "empty")) for layer in model.layers)
    train = load_train(tiny_data)
    x = train.images[:3, ..., None].astype("float32") / 255
    unet = keras.Model(model.get_layer("to_pixels").input, model.get_layer("logits").output)  # at 128
    padded = np.pad(x, ((0, 0), (13, 14), (13, 14), (0, 0)), mode="reflect")
    np.testing.assert_allclose(model.predict(x, verbose=0), unet.predict(padded, verbose=0)[:, 13:114, 13:114],
                               rtol=1e-5, atol=1e-5)
    ensemble = load_ensemble(tmp_path / "r")  # the SavedModels take 101x101 tiles, as config.json says
    assert ensemble.size == 101
    with np.load(tmp_path / "r" / "fold0" / "oof.npz") as oof:
        images = train.images[pd.Index(train.ids).get_indexer(oof["ids"])]
        probs = predict_probs(ensemble, images, tta=True, progress=False)
        assert probs.shape == (len(images), 101, 101)
        assert np.abs(oof["probs"].astype(np.float32) - probs).max() < 2e-3  # float16 storage


def test_training_across_the_tile_grid_draws_windows_clear_of_the_validation_tiles(tiny_data, tmp_path, eager):
    """--sections end to end: a mosaic of the data's own tiles (4 x 5 cells, validation tiles among
    them) gives the fold windows across their grid and the fold trains on them; a run without
    --data or mosaics/ is refused before any work."""
    from salt_tf.run.config import check_config

    train = load_train(tiny_data)
    sections = tmp_path / "realdata"
    (sections / "mosaics").mkdir(parents=True)
    (sections / "test_tiles").mkdir()
    grid = np.array(train.ids[:20], dtype=object).reshape(4, 5)
    (sections / "mosaics" / "mosaic_1_1.csv").write_text("\n".join(",".join(f'"{i}"' for i in row) for row in grid) + "\n")
    config = Config(data=str(tiny_data), out=str(tmp_path / "r"), size=32, encoder="resnet18", encoder_weights=None,
                    batch_size=8, phase1_epochs=1, phase2_epochs=0, folds=2, fold=0, sections=str(sections),
                    section_windows=0.5, section_seams=3)
    said = []
    run(config, log=said.append)
    line = next(line for line in said if "windows across the tile grid" in line)
    n_windows = int(line.split(":")[1].split()[0])
    folds = read_folds(tmp_path / "r" / "folds.csv", ids=train.ids).set_index("id").loc[train.ids, "fold"].to_numpy()
    validation = set(np.asarray(train.ids)[folds == 0])
    assert 0 < n_windows <= round(0.5 * np.sum(folds != 0))
    history = pd.read_csv(tmp_path / "r" / "fold0" / "history.csv")
    assert len(history) == 1
    # the validation tiles lie inside the mosaic: windows had to be drawn around them
    # (mosaics.sample_windows never touches an excluded cell: tests/tiles/test_mosaics.py)
    assert validation & set(grid.ravel()) and set(grid.ravel()) - validation
    with pytest.raises(ValueError, match="--sections .*needs --data"):
        check_config(Config(sections=str(sections)))
    with pytest.raises(ValueError, match="a folder holding mosaics/"):
        check_config(Config(data=str(tiny_data), sections=str(tmp_path)))
    with pytest.raises(ValueError, match="--section-seams 51: must be 0 .off. to 50 pixels"):
        check_config(Config(data=str(tiny_data), sections=str(sections), section_seams=51))


def test_the_embedded_set_is_cached_under_its_recipe_version_and_an_older_recipes_is_not_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "EMBEDDED", {"n_train": 6, "n_test": 2, "seed": 0})
    old = synthetic.generate(tmp_path / "synthetic-n6-t2-seed0", n_train=6, n_test=2, seed=5)  # an older recipe's
    lines = []
    root = synthetic.embedded_set(tmp_path, log=lines.append)
    assert root.name == f"synthetic-v{synthetic.RECIPE_VERSION}-n6-t2-seed0" and root != old
    assert "generating" in lines[0] and (root / "train.csv").exists()
    assert synthetic.embedded_set(tmp_path, log=lines.append) == root and "using" in lines[1]
