"""predict.py and salt_tf/inference/predict.py: the submission of a tiny trained run, flip TTA, post-processing
choice, and bad inputs (a clear error, exit code 2, no output file).

One tiny run is trained on synthetic data (64x64 resnet18, one epoch, 2 folds). Everything else
uses hand-made "run folders" of tiny Keras models exported with ``model.export`` exactly as
training exports its folds: a flip-equivariant one (1x1 convs, then a 3x3 conv whose kernel is
left-right symmetric) and a non-equivariant one (3x3 convs with asymmetric kernels).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripts import load_script

from salt_tf.inference.predict import RunError, load_ensemble, predict_members, predict_probs
from salt_tf.inference.predict import run as predict_run
from salt_tf.run.config import Config
from salt_tf.tiles import pipeline, rle
from salt_tf.tiles.data import DataError
from salt_tf.tiles.metrics import MIN_AREAS, best_threshold, competition_score, remove_small, tune_postprocessing

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32  # the hand-made models' input size: small, and any size works for them


CLI = load_script("predict.py", "predict_cli")  # main() runs in-process, no new interpreter per case


def tiles(n: int, seed: int) -> np.ndarray:
    """uint8 tiles with structure at several scales (blurred noise plus fine noise)."""
    rng = np.random.default_rng(seed)
    coarse = np.stack([cv2.GaussianBlur(rng.normal(size=(101, 101)).astype(np.float32), (0, 0), 5) for _ in range(n)])
    coarse = (coarse - coarse.mean((1, 2), keepdims=True)) / coarse.std((1, 2), keepdims=True)
    return np.clip(128 + 40 * coarse + rng.normal(0, 15, coarse.shape), 0, 255).astype(np.uint8)


# --- hand-made run folders ---------------------------------------------------------------------


def symmetric_model(size: int = SIZE, seed: int = 0) -> keras.Model:
    """Flip-equivariant by construction: per-pixel ops, then a conv with a left-right symmetric
    kernel ('same' zero padding is symmetric for an odd kernel)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(4, 1, activation="tanh")(inputs)
    conv = keras.layers.Conv2D(1, 3, padding="same")
    model = keras.Model(inputs, conv(x))
    kernel, bias = conv.get_weights()
    conv.set_weights([2 * (kernel + kernel[:, ::-1]), bias])
    return model


def asymmetric_model(size: int = SIZE, seed: int = 0) -> keras.Model:
    """Not flip-equivariant: a horizontal-gradient kernel plus random weights."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, 1))
    conv = keras.layers.Conv2D(1, 3, padding="same")
    model = keras.Model(inputs, conv(inputs))
    kernel = rng.normal(0, 1, (3, 3, 1, 1)) + np.array([-4.0, 0.0, 4.0])[None, :, None, None]
    conv.set_weights([kernel.astype(np.float32), np.array([-0.5], np.float32)])
    return model


def constant_model(size: int, logit: float) -> keras.Model:
    inputs = keras.Input((size, size, 1))
    conv = keras.layers.Conv2D(1, 1)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.zeros((1, 1, 1, 1), np.float32), np.array([logit], np.float32)])
    return model


def export_run(folder: Path, models, config_size=None, threshold=0.5, min_area=0) -> Path:
    """A run folder as training leaves it: fold{k}/saved_model, config.json, report.json."""
    for fold, model in enumerate(models):
        model.export(str(folder / f"fold{fold}" / "saved_model"), verbose=False)
    size = config_size if config_size is not None else models[0].input_shape[1]
    Config(size=size, folds=len(models), encoder_weights=None).save(folder / "config.json")
    (folder / "report.json").write_text(json.dumps({"threshold": threshold, "min_area": min_area}))
    return folder


@pytest.fixture(scope="module")
def symmetric_run(tmp_path_factory):
    return export_run(tmp_path_factory.mktemp("symmetric") / "run", [symmetric_model()])


@pytest.fixture(scope="module")
def asymmetric_run(tmp_path_factory):
    models = [asymmetric_model(seed=0), asymmetric_model(seed=1)]
    return export_run(tmp_path_factory.mktemp("asymmetric") / "run", models), models


@pytest.fixture(scope="module")
def data(tiny_data):
    return tiny_data  # the session's (40 training and 12 test tiles)


@pytest.fixture(scope="module")
def trained_run(tiny_run):
    return tiny_run[0]  # the session's: 2 folds trained by train.py, 1 epoch per phase


# --- the command on a trained run -------------------------------------------------------------


def test_the_script_starts_as_a_real_process():
    """The one real interpreter: predict.py runs as a script (its argument parser, before any
    TensorFlow import); everything else calls its main() in-process."""
    result = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "--run" in result.stdout and "--overlays" in result.stdout, result.stderr


def test_cli_writes_a_submission_that_decodes_to_the_saved_probs(trained_run, data, tmp_path, capsys):
    images = data / "test" / "images"
    sub, probs_path, overlays = tmp_path / "sub.csv", tmp_path / "p.npz", tmp_path / "overlays.png"
    code = CLI.main(["--run", str(trained_run), "--images", str(images), "--out", str(sub),
                     "--probs", str(probs_path), "--overlays", str(overlays)])
    result = capsys.readouterr()
    assert code == 0, result.out[-3000:] + result.err[-3000:]

    table = pd.read_csv(sub, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["id", "rle_mask"]
    expected_ids = sorted(p.stem for p in images.iterdir())
    assert len(expected_ids) == 12
    assert sorted(table["id"]) == expected_ids and not table["id"].duplicated().any()

    report = json.loads((trained_run / "report.json").read_text())
    with np.load(probs_path) as saved:
        assert list(saved["ids"]) == list(table["id"])
        probs = saved["probs"].astype(np.float32)
    assert probs.shape == (12, 101, 101) and 0 <= probs.min() and probs.max() <= 1
    expected = remove_small(probs > report["threshold"], report["min_area"])
    decoded = np.stack([rle.decode(text) for text in table["rle_mask"]])
    assert np.array_equal(decoded, expected)

    overlay = cv2.imread(str(overlays))  # one grid: 12 tiles (< --n-overlays 16) in 3 rows of 4
    assert overlay.shape == (960, 1200, 3)
    assert re.search(r"wrote .*sub\.csv: 12 tiles, \d+ with salt; [\d.]+ tiles/s \(2 folds x 2 passes\)", result.out)
    assert not list(tmp_path.rglob("*.tmp"))

    # A one-epoch model's tuned threshold may leave every tile empty; a given threshold near the
    # median probability makes the same check bite (and switches the tuned minimum area off).
    threshold = float(np.round(np.median(probs), 3))
    result = predict_run(trained_run, images, tmp_path / "sub2.csv", threshold=threshold,
                         probs_path=tmp_path / "p2.npz", log=lambda s: None)
    table = pd.read_csv(tmp_path / "sub2.csv", dtype=str, keep_default_na=False)
    with np.load(tmp_path / "p2.npz") as saved:
        np.testing.assert_allclose(saved["probs"].astype(np.float32), probs, atol=1e-3)  # same models, same tiles
        expected = saved["probs"].astype(np.float32) > threshold
    decoded = np.stack([rle.decode(text) for text in table["rle_mask"]]).astype(bool)
    assert 0.2 < decoded.mean() < 0.8
    assert np.array_equal(decoded, expected) and np.array_equal(decoded, result["masks"].astype(bool))


# --- ids from a CSV ----------------------------------------------------------------------------


def test_ids_csv_sets_the_order(symmetric_run, data, tmp_path, capsys):
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str, keep_default_na=False)
    shuffled = sample.iloc[np.random.default_rng(0).permutation(len(sample))]
    assert list(shuffled["id"]) != sorted(shuffled["id"])
    listing = tmp_path / "sample_submission.csv"
    shuffled.to_csv(listing, index=False)
    out = tmp_path / "sub.csv"
    code = CLI.main(["--run", str(symmetric_run), "--images", str(data / "test" / "images"), "--ids", str(listing),
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert list(pd.read_csv(out, dtype=str, keep_default_na=False)["id"]) == list(shuffled["id"])


def test_ids_csv_with_an_id_without_image(symmetric_run, data, tmp_path, capsys):
    ids = list(pd.read_csv(data / "sample_submission.csv", dtype=str)["id"])
    listing = tmp_path / "ids.csv"
    pd.DataFrame({"id": ids[:5] + ["00000ghost"] + ids[5:]}).to_csv(listing, index=False)
    out = tmp_path / "sub.csv"
    code = CLI.main(["--run", str(symmetric_run), "--images", str(data / "test" / "images"), "--ids", str(listing),
                     "--out", str(out), "--probs", str(tmp_path / "p.npz")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data / 'test' / 'images' / '00000ghost.png'}: file not found" in err and str(listing) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.csv"]


def test_ids_csv_without_ids(symmetric_run, data, tmp_path, capsys):
    listing = tmp_path / "ids.csv"
    listing.write_text("id,rle_mask\n")
    out = tmp_path / "sub.csv"
    code = CLI.main(["--run", str(symmetric_run), "--images", str(data / "test" / "images"), "--ids", str(listing),
                     "--out", str(out)])
    assert code == 2 and f"error: {listing}: no ids listed" in capsys.readouterr().err
    assert not out.exists()


# --- flip TTA ----------------------------------------------------------------------------------


def test_tta_is_a_no_op_for_a_flip_equivariant_model(symmetric_run):
    ensemble = load_ensemble(symmetric_run)
    images = tiles(6, seed=1)
    plain = predict_probs(ensemble, images, tta=False, progress=False)
    assert plain.shape == (6, 101, 101) and plain.std() > 0.01  # a non-trivial output
    mirrored = predict_probs(ensemble, images[:, :, ::-1], tta=False, progress=False)
    np.testing.assert_allclose(mirrored, plain[:, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(predict_probs(ensemble, images, tta=True, progress=False), plain, atol=1e-6)


def keras_probs(models, images: np.ndarray, size: int) -> np.ndarray:
    """Mean sigmoid of the Keras models (not the exported ones) at 101x101, without TTA."""
    x = pipeline.to_input(images, size)
    probs = np.mean([1 / (1 + np.exp(-np.asarray(model(x, training=False)))) for model in models], axis=0)
    return pipeline.to_tile(probs)


def test_tta_averages_the_plain_and_the_unflipped_mirrored_prediction(asymmetric_run):
    run_dir, models = asymmetric_run
    ensemble = load_ensemble(run_dir)
    assert ensemble.folds == [0, 1]
    images = tiles(5, seed=2)
    plain = keras_probs(models, images, SIZE)
    unflipped = keras_probs(models, images[:, :, ::-1], SIZE)[:, :, ::-1]
    assert np.abs(plain - unflipped).max() > 0.1  # the model really is not flip-equivariant
    np.testing.assert_allclose(predict_probs(ensemble, images, tta=False, progress=False), plain, atol=1e-5)
    np.testing.assert_allclose(predict_probs(ensemble, images, tta=True, progress=False),
                               0.5 * (plain + unflipped), atol=1e-5)


def test_a_run_of_keras_files_predicts_as_its_saved_models(asymmetric_run, tmp_path):
    """A run trained on JAX or PyTorch has fold*/model.keras and no SavedModel: predict.py loads
    those, with the same TTA (NumPy around predict_on_batch) and the same members."""
    run_dir, models = asymmetric_run
    keras_run = tmp_path / "run"
    for fold, model in enumerate(models):
        (keras_run / f"fold{fold}").mkdir(parents=True)
        model.save(keras_run / f"fold{fold}" / "model.keras")
    for name in ("config.json", "report.json"):
        (keras_run / name).write_text((run_dir / name).read_text())
    ensemble, saved = load_ensemble(keras_run), load_ensemble(run_dir)
    assert (ensemble.kind, ensemble.folds, ensemble.size) == ("keras", [0, 1], SIZE) and saved.kind == "saved_model"
    images = tiles(7, seed=3)
    for tta in (False, True):
        np.testing.assert_allclose(predict_probs(ensemble, images, batch_size=4, tta=tta, progress=False),
                                   predict_probs(saved, images, batch_size=4, tta=tta, progress=False), atol=1e-5)
        np.testing.assert_allclose(predict_members(ensemble, images, batch_size=4, tta=tta),
                                   predict_members(saved, images, batch_size=4, tta=tta), atol=1e-5)
    (keras_run / "fold1" / "model.keras").write_bytes(b"not a zip")
    broken = keras_run / "fold1" / "model.keras"
    with pytest.raises(RunError, match=re.escape(f"{broken}: cannot load the fold's model")):
        load_ensemble(keras_run)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_tta_output_is_mirror_symmetric_for_any_model(asymmetric_run, seed, n):
    # n up to 40 tiles: also a last batch smaller than --batch-size (32).
    ensemble = load_ensemble(asymmetric_run[0])
    images = tiles(n, seed % 1000)
    both = predict_probs(ensemble, np.concatenate([images, images[:, :, ::-1]]), tta=True, progress=False)
    np.testing.assert_allclose(both[n:], both[:n, :, ::-1], atol=1e-6)


# --- post-processing choice --------------------------------------------------------------------


def salt_and_probs():
    """Two tiles. A: 400 px of salt, 300 of them at 0.8 and 100 at 0.4 (rest 0.1). B: no salt, a
    50 px blob at 0.34. Then t < 0.34 keeps B's blob (B scores 0), 0.34 <= t < 0.4 is perfect,
    0.4 <= t < 0.8 loses a quarter of A (IoU 0.75: 5 of 10 IoU thresholds), t >= 0.8 loses A."""
    truth = np.zeros((2, 101, 101), np.uint8)
    probs = np.full((2, 101, 101), 0.1, np.float32)
    truth[0, 10:30, 10:30] = 1
    probs[0, 10:25, 10:30] = 0.8
    probs[0, 25:30, 10:30] = 0.4
    probs[1, 50:55, 50:60] = 0.34
    return truth, probs


def test_best_threshold_on_a_hand_computed_case():
    truth, probs = salt_and_probs()
    grid = np.array([0.2, 0.3, 0.35, 0.45, 0.6, 0.85])
    scores = [competition_score(truth, probs > t) for t in grid]
    assert scores == pytest.approx([0.5, 0.5, 1.0, 0.75, 0.75, 0.5])
    assert best_threshold(truth, probs, grid) == (0.35, 1.0)
    assert best_threshold(truth, probs) == (0.35, 1.0)  # default grid 0.05..0.95: first of 0.35, 0.375


def test_min_area_is_off_when_it_does_not_help():
    truth, probs = salt_and_probs()
    tuned = tune_postprocessing(truth, probs)
    assert tuned["threshold"] == 0.35 and tuned["min_area"] == 0
    assert tuned["score_before"] == pytest.approx(0.75) and tuned["score_after"] == 1.0


def test_min_area_removes_specks_on_empty_tiles():
    """Confident 4 px specks on empty tiles, which no threshold removes without losing salt, and a
    true 30 px body: the smallest area that helps (10) is chosen, not one that deletes the body."""
    truth, probs = salt_and_probs()
    truth = np.concatenate([truth, np.zeros((3, 101, 101), np.uint8)])
    probs = np.concatenate([probs, np.full((3, 101, 101), 0.1, np.float32)])
    for k in (2, 3):
        probs[k, 40:42, 70:72] = 0.9  # 4 px at 0.9
    truth[4, 60:65, 20:26] = 1
    probs[4, 60:65, 20:26] = 0.85  # 30 px of real salt
    tuned = tune_postprocessing(truth, probs)
    assert tuned["threshold"] == 0.35
    assert tuned["min_area"] == 10 == MIN_AREAS[1]
    assert tuned["score_after"] == 1.0 and tuned["score_before"] == pytest.approx((0.5 + 1 + 0 + 0 + 1) / 5)


# --- the saved probabilities reproduce the submission ------------------------------------------


def test_saved_probs_reproduce_the_submission_at_the_threshold(tmp_path):
    """Probabilities just above the threshold (0.5 + 1e-4, closer than float16's resolution of
    ~5e-4 there; the --probs file is float16): the submission and the saved file must agree."""
    logit = float(np.log(0.5001 / 0.4999))
    run_dir = export_run(tmp_path / "run", [constant_model(SIZE, logit)], threshold=0.5)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    for i, image in enumerate(tiles(2, seed=3)):
        cv2.imwrite(str(images_dir / f"tile{i}.png"), image)
    result = predict_run(run_dir, images_dir, tmp_path / "sub.csv", probs_path=tmp_path / "p.npz", log=lambda s: None)
    table = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    with np.load(tmp_path / "p.npz") as saved:
        from_file = saved["probs"].astype(np.float32) > 0.5
    decoded = np.stack([rle.decode(text) for text in table["rle_mask"]]).astype(bool)
    assert np.array_equal(decoded, result["masks"].astype(bool))
    assert np.array_equal(decoded, from_file)


# --- bad inputs --------------------------------------------------------------------------------


def write_images(folder: Path, n: int = 3, odd=None) -> Path:
    """``n`` good 101x101 tiles; ``odd`` = (name, bytes or array) adds one bad file."""
    folder.mkdir(parents=True)
    for i, image in enumerate(tiles(n, seed=4)):
        cv2.imwrite(str(folder / f"t{i}.png"), image)
    if odd is not None:
        name, content = odd
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            cv2.imwrite(str(folder / name), content)
    return folder


def bad_case(case: str, tmp: Path, symmetric_run: Path):
    """(run folder, images folder, text the error must contain) for one kind of bad input."""
    tmp.mkdir()
    good_images = tmp / "good"
    if case == "no models":
        run_dir = tmp / "run"
        run_dir.mkdir()
        Config(size=SIZE).save(run_dir / "config.json")
        return run_dir, write_images(good_images), f"{run_dir}: no fold*/saved_model in this run folder"
    if case == "run folder missing":
        return tmp / "nowhere", write_images(good_images), f"{tmp / 'nowhere'}: run folder not found"
    if case == "model size differs from config.json":
        run_dir = export_run(tmp / "run", [symmetric_model(SIZE)], config_size=64)
        return run_dir, write_images(good_images), "models expect 32x32 tiles but config.json says size 64"
    if case == "folds of different sizes":
        run_dir = export_run(tmp / "run", [symmetric_model(SIZE), symmetric_model(64)], config_size=SIZE)
        return run_dir, write_images(good_images), "the folds' models expect different input sizes (fold0: 32, fold1: 64)"
    if case == "tile not 101x101":
        images = write_images(tmp / "images", odd=("small.png", np.zeros((96, 101), np.uint8)))
        return symmetric_run, images, f"{images / 'small.png'}: expected 101x101, got 96x101"
    if case == "unreadable tile":
        images = write_images(tmp / "images", odd=("broken.png", b"not a png"))
        return symmetric_run, images, f"{images / 'broken.png'}: not a readable image"
    if case == "empty image folder":
        (tmp / "images").mkdir()
        return symmetric_run, tmp / "images", f"{tmp / 'images'}: no .png tiles in this folder"
    if case == "image folder missing":
        return symmetric_run, tmp / "images", f"{tmp / 'images'}: folder not found"
    raise AssertionError(case)


BAD_CASES = ["no models", "run folder missing", "model size differs from config.json", "folds of different sizes",
             "tile not 101x101", "unreadable tile", "empty image folder", "image folder missing"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_a_clear_error_and_writes_nothing(case, symmetric_run, tmp_path, capsys):
    run_dir, images, message = bad_case(case, tmp_path / "in", symmetric_run)
    out = tmp_path / "out"
    code = CLI.main(["--run", str(run_dir), "--images", str(images), "--out", str(out / "sub.csv"),
                     "--probs", str(out / "p.npz"), "--overlays", str(out / "overlays.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", ["model size differs from config.json", "unreadable tile"])
def test_bad_input_raises_in_process(case, symmetric_run, tmp_path):
    run_dir, images, message = bad_case(case, tmp_path / "in", symmetric_run)
    with pytest.raises(RunError if "model" in case else DataError, match=re.escape(message)):
        predict_run(run_dir, images, tmp_path / "sub.csv", log=lambda s: None)
    assert not (tmp_path / "sub.csv").exists()


@pytest.mark.parametrize("value", ["1.5", "-0.1", "1"])
def test_threshold_outside_a_probability_is_refused(value, symmetric_run, tmp_path, capsys):
    images = write_images(tmp_path / "images")
    code = CLI.main(["--run", str(symmetric_run), "--images", str(images), "--out", str(tmp_path / "sub.csv"),
                     "--threshold", value])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --threshold {float(value)}: must be a probability in [0, 1)"), err
    assert not (tmp_path / "sub.csv").exists()


def test_predict_uses_exactly_the_folds_of_the_report(tmp_path):
    # A --fold process may have exported fold 1 after the report (and its threshold) covered fold 0.
    run_dir = export_run(tmp_path / "run", [symmetric_model(SIZE, seed=0), symmetric_model(SIZE, seed=1)])
    (run_dir / "report.json").write_text(json.dumps({"threshold": 0.5, "min_area": 0, "folds_done": [0]}))
    assert load_ensemble(run_dir).folds == [0]
    (run_dir / "report.json").write_text(json.dumps({"threshold": 0.5, "min_area": 0, "folds_done": [0, 2]}))
    with pytest.raises(RunError, match=re.escape(f"lists fold models that are missing: {run_dir / 'fold2' / 'saved_model'}")):
        load_ensemble(run_dir)


def context_run(folder: Path, context: dict, size: int = SIZE) -> tuple[Path, keras.Model]:
    """A run as ``section_context.py`` exports a fine-tune: fold0/model.keras of any input size, the
    start's config (its tiles' size) and report.json with a ``context``."""
    rng = np.random.default_rng(4)
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 5, padding="same")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([rng.normal(0, 1, (5, 5, 1, 1)).astype(np.float32), np.zeros(1, np.float32)])
    (folder / "fold0").mkdir(parents=True)
    model.save(folder / "fold0" / "model.keras")
    Config(size=size, folds=1, encoder_weights=None).save(folder / "config.json")
    (folder / "report.json").write_text(json.dumps({"threshold": 0.45, "min_area": 10, "folds_done": [0], "context": context}))
    return folder, model


def test_a_run_that_reads_with_context_takes_tiles_alone_and_its_windows_each_at_their_size(tmp_path):
    """predict.py reads a tile alone at the run's size; segment.py's windows of 101 + 2 x margin at
    the size the context was learned at, their probabilities back at the window's side."""
    run_dir, model = context_run(tmp_path / "run", {"margin": 50, "size": 64, "threshold": 0.5, "min_area": 20})
    ensemble = load_ensemble(run_dir)
    assert (ensemble.kind, ensemble.size, ensemble.input_size(101), ensemble.input_size(201)) == ("keras", SIZE, SIZE, 64)
    images = tiles(3, seed=5)
    np.testing.assert_allclose(predict_probs(ensemble, images, tta=False, progress=False),
                               keras_probs([model], images, SIZE), atol=1e-5)
    windows = np.stack([cv2.resize(t, (201, 201)) for t in images])
    wide = predict_probs(ensemble, windows, tta=False, progress=False)
    x = pipeline.to_input(windows, 64)
    expected = pipeline.to_tile(1 / (1 + np.exp(-np.asarray(model(x, training=False)))), 201)
    assert wide.shape == (3, 201, 201)
    np.testing.assert_allclose(wide, expected, atol=1e-5)
    assert predict_members(ensemble, windows, tta=True).shape == (2, 3, 201, 201)
    with pytest.raises(RunError, match=re.escape("windows of 151x151 pixels: this run reads 101x101 or 201x201")):
        predict_probs(ensemble, windows[:, :151, :151], progress=False)
    alone = load_ensemble(export_run(tmp_path / "alone", [symmetric_model()]))
    with pytest.raises(RunError, match=re.escape("windows of 201x201 pixels: this run reads 101x101")):
        predict_probs(alone, windows, progress=False)
    alone.context = ensemble.context  # a SavedModel is traced at one input size
    with pytest.raises(RunError, match=re.escape("windows with context need the folds' model.keras")):
        predict_probs(alone, windows, progress=False)


@pytest.mark.parametrize("context", [{"margin": 0, "size": 64, "threshold": 0.5, "min_area": 0},
                                     {"margin": 50, "threshold": 0.5, "min_area": 0},
                                     {"margin": 50, "size": 64, "threshold": 1.5, "min_area": 0},
                                     {"margin": 50.5, "size": 64, "threshold": 0.5, "min_area": 0}, 50])
def test_a_context_that_cannot_be_read_is_refused_naming_the_report(context, tmp_path):
    run_dir, _ = context_run(tmp_path / "run", context)
    with pytest.raises(RunError, match=re.escape(f"{run_dir / 'report.json'}: context must give")):
        load_ensemble(run_dir)
