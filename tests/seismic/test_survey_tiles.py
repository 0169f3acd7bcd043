"""salt_tf/seismic/survey_tiles.py and train.py --survey: windows of a survey's labelled lines framed as
segment.py frames them, folds of whole lines with a gap, and a run trained on them end to end."""
import json

import numpy as np
import pandas as pd
import pytest

from salt_tf.common.errors import SectionError
from salt_tf.run.config import Config
from salt_tf.seismic import sections, survey_tiles
from salt_tf.seismic.synthetic import make_volume
from salt_tf.tiles import windows_set
from salt_tf.tiles.framing import stretch
from salt_tf.tiles.metrics import UNLABELLED


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survey")
    amplitudes, mask = make_volume(np.random.default_rng(4), n_inlines=8, n_xlines=130, n_samples=120)
    labels = mask.copy()
    labels[:, :, :10] = UNLABELLED  # the shallowest samples nobody labelled
    np.save(folder / "v.npy", amplitudes)
    np.save(folder / "labels.npy", labels)
    return folder


def test_windows_are_cut_and_framed_as_segment_cuts_them_from_the_kept_lines_only(survey):
    built = survey_tiles.build(survey / "v.npy", survey / "labels.npy", n_folds=2, label_lines=[1, 2, 6, 7], stride=50)
    assert built["summary"]["labelled_lines"] == [1, 2, 6, 7] and set(built["lines"]) == {1, 2, 6, 7}
    amplitudes, labels = np.load(survey / "v.npy"), np.load(survey / "labels.npy")
    # line 2's windows: exactly segment.py's windows of that line (minmax), with the labels cut alike
    expected, _ = sections.windows(amplitudes[2].T, 50)
    expected_labels, _ = sections.windows(labels[2].T, 50)
    mine = built["lines"] == 2
    assert mine.sum() == len(expected)  # every window of it is a quarter labelled or more
    np.testing.assert_array_equal(built["images"][mine], stretch(expected))
    np.testing.assert_array_equal(built["labels"][mine], expected_labels)
    assert set(np.unique(built["labels"])) == {0, 1, UNLABELLED}
    # folds: whole lines in two contiguous blocks
    assert {int(n): int(f) for n, f in zip(built["lines"], built["folds"])} == {1: 0, 2: 0, 6: 1, 7: 1}


def test_windows_with_too_few_labelled_pixels_are_skipped(survey, tmp_path):
    labels = np.load(survey / "labels.npy")
    labels[:, 40:, :] = UNLABELLED  # only the first 40 traces of each line labelled
    np.save(tmp_path / "l.npy", labels)
    built = survey_tiles.build(survey / "v.npy", tmp_path / "l.npy", n_folds=2, stride=50, min_labelled=0.3)
    shares = (built["labels"] != UNLABELLED).mean(axis=(1, 2))
    assert (shares >= 0.3).all() and len(built["ids"]) < 8 * len(sections.windows(np.zeros((120, 130)), 50)[0])


def test_a_fold_trains_on_no_line_within_the_gap_of_its_validation_lines():
    lines = np.array([1, 1, 2, 3, 3, 4, 5, 6, 6, 9])
    in_val = np.isin(lines, [3, 4])
    for gap, kept in ((0, {1, 2, 5, 6, 9}), (1, {1, 6, 9}), (2, {9}), (5, set())):
        rows = windows_set.training_rows(lines, in_val, gap)
        assert set(lines[rows]) == set(kept) and not in_val[rows].any()


@pytest.mark.parametrize("n_folds, lines, message", [(0, None, "--folds 0: at least 1"),
                                                      (3, [2, 5], "2 labelled lines are too few for 3 folds"),
                                                      (2, [5], "1 labelled lines are too few for 2 folds.*--folds 1")])
def test_too_few_folds_or_lines_are_refused(survey, n_folds, lines, message):
    with pytest.raises(SectionError, match=message):
        survey_tiles.build(survey / "v.npy", survey / "labels.npy", n_folds=n_folds, label_lines=lines)


@pytest.fixture(scope="module")
def survey_run(survey, tmp_path_factory):
    """(folder, config, report, log lines): the survey's lines 0-2 and 5-7 as a training set in
    ``folder / "s"``, fold 0 of it trained into ``folder / "r"`` (two tests read it: one training)."""
    from salt_tf.training.train import run

    folder = tmp_path_factory.mktemp("survey_run")
    assert survey_tiles.main(["--input", str(survey / "v.npy"), "--labels", str(survey / "labels.npy"), "--out",
                              str(folder / "s"), "--label-lines", "0,1,2,5,6,7", "--stride", "50"]) == 0
    config = Config(survey=str(folder / "s"), out=str(folder / "r"), size=32, encoder="resnet18",
                    encoder_weights=None, batch_size=8, phase1_epochs=1, phase2_epochs=0, folds=2, fold=0, gap=3)
    said = []
    report = run(config, log=said.append)
    return folder, config, report, said


def test_train_on_a_survey_end_to_end_then_refusals_before_any_folder(survey, survey_run, tmp_path):
    from salt_tf.training.train import run

    made, config, report, said = survey_run
    train, folds, _ = windows_set.load(made / "s")
    in_val = folds["fold"].to_numpy() == 0
    expected = windows_set.training_rows(train.depths, in_val, 3)
    assert set(train.depths[expected]) == {6, 7}  # line 5 lies within 3 lines of line 2
    assert f"fold 0: {len(expected)} training tiles, {in_val.sum()} validation tiles" in said
    assert report["n_oof"] == in_val.sum() and 0 <= report["cv_score"] <= 1
    assert json.loads((made / "r" / "config.json").read_text())["survey"] == str(made / "s")
    assert json.loads((made / "r" / "tile_stats.json").read_text())["window_norm"] == "minmax"
    # segment.py on the survey with that run: the unlabelled lines ranked for labelling next
    from salt_tf.seismic.segment import run as segment

    summary = segment(made / "r", survey / "v.npy", tmp_path / "seg", n_figures=0,
                      progress=False, log=said.append)
    ranking = pd.read_csv(tmp_path / "seg" / "label_next.csv")
    assert ranking["line"].tolist() == sorted([3, 4], key=lambda n: -ranking.set_index("line").loc[n, "score"])
    assert list(ranking["rank"]) == [1, 2] and ranking["disagreement"].isna().all()  # one direction: none
    per_line = summary["domain_check"]["lines"]
    spread = dict(zip(per_line["line"], per_line["mean_uncertainty"]))
    np.testing.assert_allclose(ranking["score"], [spread[n] for n in ranking["line"]])
    assert any(line.startswith(f"label next: line {ranking['line'][0]} (mean uncertainty") for line in said)
    # the survey folder moved away: every line is ranked, none known to be labelled
    (made / "s").rename(made / "moved")
    try:
        segment(made / "r", survey / "v.npy", tmp_path / "seg2", n_figures=0, progress=False, log=said.append)
    finally:
        (made / "moved").rename(made / "s")
    assert sorted(pd.read_csv(tmp_path / "seg2" / "label_next.csv")["line"]) == list(range(8))
    for changes, message in (({"folds": 3}, "made with 2 folds of whole lines; give --folds 2"),
                             ({"gap": 5}, "fold 0 has no line to train on")):
        bad = Config(**{**config.__dict__, "out": str(tmp_path / "bad"), **changes})
        with pytest.raises(ValueError, match=message):
            run(bad, log=said.append)
        assert not (tmp_path / "bad").exists()


def test_one_labelled_line_trains_without_validation_and_keeps_the_last_epoch(survey, tmp_path, eager):
    from salt_tf.seismic.segment import run as segment
    from salt_tf.training.train import run

    built = survey_tiles.build(survey / "v.npy", survey / "labels.npy", n_folds=1, label_lines=[3], stride=50)
    assert set(built["folds"]) == {survey_tiles.NOT_VALIDATED} and set(built["lines"]) == {3}
    survey_tiles.write(built, tmp_path / "s")
    config = Config(survey=str(tmp_path / "s"), out=str(tmp_path / "r"), size=32, encoder="resnet18",
                    encoder_weights=None, batch_size=8, phase1_epochs=2, phase2_epochs=2, folds=1)
    said = []
    report = run(config, log=said.append)
    assert f"fold 0: {len(built['ids'])} training tiles, 0 validation tiles" in said
    result = json.loads((tmp_path / "r" / "fold0" / "result.json").read_text())
    # every epoch of both phases ran (no early stopping without validation) and the last one is the model
    assert result["phase_epochs"] == {"1": 2, "2": 2} and (result["best_phase"], result["best_epoch"]) == (2, 2)
    history = pd.read_csv(tmp_path / "r" / "fold0" / "history.csv")
    assert len(history) == 4 and history["val_score"].isna().all() and "val_loss" not in history
    assert report["n_oof"] == 0 and report["threshold"] == 0.5 and report["min_area"] == 0
    assert "No validation" in (tmp_path / "r" / "report.md").read_text()
    assert any(line.startswith("no validation (--folds 1)") for line in said)
    segment(tmp_path / "r", survey / "v.npy", tmp_path / "seg", n_figures=0, progress=False, log=said.append)
    assert 3 not in pd.read_csv(tmp_path / "seg" / "label_next.csv")["line"].tolist()
    # --folds 1 means no validation: for the competition's tiles, refused before any folder
    with pytest.raises(ValueError, match="n_folds must be between 2"):
        run(Config(out=str(tmp_path / "tiles"), folds=1, encoder_weights=None), log=said.append)
    assert not (tmp_path / "tiles").exists()


def test_bad_labels_give_one_error_line_and_no_folder(survey, tmp_path, capsys):
    np.save(tmp_path / "l.npy", np.zeros((8, 130, 119), np.uint8))
    code = survey_tiles.main(["--input", str(survey / "v.npy"), "--labels", str(tmp_path / "l.npy"), "--out",
                              str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "expected the survey's (8, 130, 120)" in err[0]
    assert not (tmp_path / "s").exists()


def test_fine_tuning_starts_each_fold_from_the_start_runs_weights_exactly(survey_run, tmp_path):
    """A run started from ``survey_run``'s (--init-from) begins fold 0 with its fold 0's weights."""
    import keras

    from salt_tf.training import train as training

    made, config, _, _ = survey_run
    tuned = Config(**{**config.__dict__, "out": str(tmp_path / "tuned"), "init_from": str(made / "r")})
    training.check_weights(tuned)
    train, folds, _ = windows_set.load(made / "s")
    said = []
    f = training._start_fold(tuned, train, folds[["id", "fold"]], 0, tmp_path / "tuned" / "fold0", said.append, None)
    start = keras.models.load_model(made / "r" / "fold0" / "model.keras", compile=False).get_weights()
    for a, b in zip(f.model.get_weights(), start, strict=True):
        np.testing.assert_array_equal(a, b)
    assert f"fold 0: starting from {made / 'r' / 'fold0' / 'model.keras'}" in said
    # another encoder, or no finished fold there, is refused before any folder is made
    for changes, message in (({"encoder": "resnet34"}, "does not match these settings (encoder resnet34"),
                             ({"init_from": str(made / "s")}, "no fold0/model.keras nor fold0/model.keras")):
        bad = Config(**{**tuned.__dict__, "out": str(tmp_path / "bad"), **changes})
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            training.run(bad, log=said.append)
        assert not (tmp_path / "bad").exists()


def test_a_lines_mute_and_absent_traces_are_filled_as_segment_fills_them_and_left_unlabelled(tmp_path):
    """A survey's training windows are the windows segment.py gives the model, mute and gap included
    (the mute mirrored, the gap the nearest trace's), so that fine-tuning sees what segmenting will;
    nobody's labels there count."""
    from salt_tf.seismic.segment import run
    from salt_tf.seismic.seiswrite import write_segy_volume

    cube = np.random.default_rng(6).normal(0, 100, (2, 130, 120)).astype(np.float32)
    mute = np.arange(120) < (12 + np.arange(130) // 5)[:, None]  # 12-37 zeros atop each trace
    cube[:, mute] = 0.0
    live = np.ones((2, 130), bool)
    live[0, 60:70] = False  # a gap in inline 1
    write_segy_volume(tmp_path / "s.sgy", cube, live=live)
    np.save(tmp_path / "labels.npy", np.broadcast_to((np.arange(120) > 70).astype(np.uint8), cube.shape))
    built = survey_tiles.build(tmp_path / "s.sgy", tmp_path / "labels.npy", n_folds=1, stride=50, min_labelled=0.01)
    seen = []

    def model(windows):
        seen.append(windows.copy())
        return windows.astype(np.float32) / 255.0

    run(None, tmp_path / "s.sgy", tmp_path / "out", model=model, stride=50, windows="minmax", progress=False,
        log=lambda line: None, warn=lambda line: None)
    segmented = {w.tobytes() for w in np.concatenate(seen)}
    assert len(built["images"]) == 2 * 3 * 3 and all(w.tobytes() in segmented for w in built["images"])
    # no data unlabelled: a window's share of unlabelled pixels is the share of mute and gap it covers
    first = built["lines"] == 1
    labelled = (built["labels"][first] != UNLABELLED).mean()
    assert 0.75 < labelled < 0.95 and (built["labels"][~first] != UNLABELLED).mean() > labelled
