"""Tests for salt_tf/tiles/synthetic.py: layout, determinism, statistics, look and learnability."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from salt_tf.tiles import data, metrics, synthetic

ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small") / "set"
    return synthetic.generate(root, n_train=60, n_test=20, seed=1)


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> data.TrainData:
    """400 training tiles: enough for the statistical checks (and only a couple of seconds)."""
    root = tmp_path_factory.mktemp("large") / "set"
    return data.load_train(synthetic.generate(root, n_train=400, n_test=1, seed=0))


def test_layout_reads_back_through_the_loaders(small):
    train, test = data.load_train(small), data.load_test(small)
    assert len(train.ids) == 60 and len(test.ids) == 20
    assert train.images.shape == (60, 101, 101) and train.masks.shape == (60, 101, 101)
    assert test.images.shape == (20, 101, 101)
    ids = list(train.ids) + list(test.ids)
    assert len(set(ids)) == 80
    assert all(re.fullmatch(r"[0-9a-f]{10}", i) for i in ids)
    assert sorted(p.stem for p in (small / "train" / "images").glob("*.png")) == sorted(train.ids)
    assert sorted(p.stem for p in (small / "test" / "images").glob("*.png")) == sorted(test.ids)

    depths = pd.read_csv(small / "depths.csv", dtype={"id": str})
    assert sorted(depths["id"]) == sorted(ids)
    assert depths["z"].between(synthetic.DEPTH_MIN, synthetic.DEPTH_MAX).all()
    submission = pd.read_csv(small / "sample_submission.csv", dtype=str)
    assert list(submission.columns) == ["id", "rle_mask"]
    assert list(submission["id"]) == list(test.ids) and (submission["rle_mask"] == "1 1").all()


def test_files_have_the_competition_formats(small):
    tile_id = pd.read_csv(small / "train.csv", dtype=str)["id"].iloc[0]
    image = cv2.imread(str(small / "train" / "images" / f"{tile_id}.png"), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint8 and image.shape == (101, 101, 3)
    assert (image == image[..., :1]).all()
    for path in (small / "train" / "masks").glob("*.png"):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint16 and mask.shape == (101, 101)
        assert set(np.unique(mask)) <= {0, 65535}
    assert (small / "train.csv").read_text().splitlines()[0] == "id,rle_mask"
    assert (small / "depths.csv").read_text().splitlines()[0] == "id,z"


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, small):
    again = _files(synthetic.generate(tmp_path / "again", n_train=60, n_test=20, seed=1))
    assert again == _files(small)
    other = _files(synthetic.generate(tmp_path / "other", n_train=60, n_test=20, seed=2))
    assert other.keys() != again.keys()  # ids come from the seed
    assert other["train.csv"] != again["train.csv"]


def test_empty_share_is_near_the_real_39_percent(large):
    expected = synthetic.expected_empty_share()
    assert 0.37 <= expected <= 0.42  # the real training set: 39%
    empty = (large.masks.reshape(len(large.masks), -1).max(axis=1) == 0).mean()
    # Each tile is empty independently with mean probability `expected`: the count is binomial,
    # and 4 standard deviations (0.098 at n=400) leave a chance of about 1e-4 to fail wrongly.
    sd = np.sqrt(expected * (1 - expected) / len(large.masks))
    assert abs(empty - expected) < 4 * sd


def test_tiles_span_0_to_255_each_stretched_on_its_own_like_the_real_ones(large):
    images = large.images
    lows, highs = images.min(axis=(1, 2)), images.max(axis=(1, 2))
    assert (lows == 0).all() and (highs == 255).all()
    # and the stretch leaves their grey levels as varied as the real tiles' (mean 81..163, 5-95%)
    means = images.mean(axis=(1, 2))
    assert 60 < np.percentile(means, 5) < np.percentile(means, 95) < 190
    assert np.percentile(means, 95) - np.percentile(means, 5) > 20


def test_depth_carries_signal(large):
    salty = large.masks.reshape(len(large.masks), -1).max(axis=1) == 1
    shallow, middle = large.depths < 250, (large.depths >= 300) & (large.depths < 700)
    # Model: about 0.3 vs 0.69 salty; with ~40 shallow tiles the gap's sd is about 0.08.
    assert shallow.sum() >= 20
    assert salty[middle].mean() - salty[shallow].mean() > 0.15


def test_coverage_spans_small_to_large_and_never_full(large):
    coverage = large.masks.reshape(len(large.masks), -1).mean(axis=1)
    salty = coverage[coverage > 0]
    assert salty.max() < 1.0
    assert (salty < 0.05).mean() > 0.03 and (salty > 0.8).mean() > 0.05
    assert 0.25 < np.median(salty) < 0.5  # real: 0.37


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), salty=st.booleans())
def test_tile_is_one_body_never_the_whole_tile(seed, salty):
    image, mask = synthetic.make_tile(np.random.default_rng(seed), salty)
    assert image.dtype == np.uint8 and image.shape == (101, 101)
    assert mask.dtype == np.uint8 and mask.shape == (101, 101)
    if not salty:
        assert not mask.any()
        return
    assert synthetic.COVERAGE_MIN / 2 < mask.mean() < 1.0
    n_labels, _ = cv2.connectedComponents(mask, connectivity=4)
    assert n_labels == 2  # background plus exactly one body


def test_salt_has_a_bright_top_and_a_dim_interior(large):
    brighter, dimmer = [], []
    for image, mask in zip(large.images.astype(np.float64), large.masks):
        inside = cv2.erode(mask, np.ones((7, 7), np.uint8)).astype(bool)
        top = np.zeros(mask.shape, bool)
        top[1:] = (mask[1:] == 1) & (mask[:-1] == 0)  # salt pixels with sediment right above
        above = np.zeros(mask.shape, bool)  # the two pixels just above each top pixel
        above[:-1] |= top[1:]
        above[:-2] |= top[2:]
        above &= mask == 0
        if above.sum() >= 10 and inside.sum() >= 50:
            brighter.append((image[above].mean() - image[inside].mean()) / image.std())
        far = cv2.dilate(mask, np.ones((9, 9), np.uint8)) == 0
        if far.sum() >= 200 and inside.sum() >= 200:
            dimmer.append(image[inside].std() / image[far].std())
    assert len(brighter) > 50 and len(dimmer) > 50
    assert np.mean(np.array(brighter) > 0.5) > 0.9 and np.median(brighter) > 1.0
    assert np.mean(np.array(dimmer) < 0.6) > 0.9


def _pixel_features(images: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """Per-pixel features a shallow model can use: intensity, local mean/std and gradient energy
    across and along the layers at three scales, row position and depth. (N, 101, 101, F)."""
    rows = np.broadcast_to(np.linspace(0, 1, 101, dtype=np.float32)[:, None], (101, 101))
    tiles = []
    for image, depth in zip(images, depths):
        x = image.astype(np.float32) / 255
        spread = x.std() + 1e-6
        gx, gy = cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1)
        features = [x, (x - x.mean()) / spread]
        for k in (7, 15, 31):
            mean = cv2.blur(x, (k, k))
            std = np.sqrt(np.maximum(cv2.blur(x * x, (k, k)) - mean * mean, 0))
            across, along = np.sqrt(cv2.blur(gy * gy, (k, k))), np.sqrt(cv2.blur(gx * gx, (k, k)))
            features += [mean, std, std / spread, across, along, across / (across + along + 1e-6)]
        features += [rows, np.full((101, 101), depth / 1000, np.float32)]
        tiles.append(np.stack(features, axis=-1))
    return np.stack(tiles)


def test_a_shallow_pixel_classifier_beats_predicting_no_salt(tmp_path):
    train = data.load_train(synthetic.generate(tmp_path / "set", n_train=140, n_test=1, seed=3))
    features = _pixel_features(train.images, train.depths)
    fit, held = slice(0, 80), slice(80, None)
    x_fit, y_fit = features[fit].reshape(-1, features.shape[-1]), train.masks[fit].ravel()
    pick = np.random.default_rng(0).choice(len(y_fit), 30_000, replace=False)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_fit[pick], y_fit[pick])

    def predict(part: slice, threshold: float, min_pixels: int) -> np.ndarray:
        probs = model.predict_proba(features[part].reshape(-1, features.shape[-1]))[:, 1]
        masks = (probs.reshape(features[part].shape[:3]) > threshold).astype(np.uint8)
        # A tile with only a few salt pixels predicted is called empty: a stray false positive
        # costs a whole empty tile's score.
        masks[masks.reshape(len(masks), -1).sum(axis=1) < min_pixels] = 0
        return masks

    grid = [(t, m) for t in (0.3, 0.4, 0.5, 0.6, 0.7) for m in (0, 100, 300, 600)]
    # Threshold and minimum salt size are tuned on the fitting tiles, scored on the held-out ones.
    threshold, min_pixels = max(
        grid, key=lambda g: metrics.competition_score(train.masks[fit], predict(fit, *g))
    )
    truth = train.masks[held]
    score = metrics.competition_score(truth, predict(held, threshold, min_pixels))
    all_empty = metrics.competition_score(truth, np.zeros_like(truth))
    print(f"held-out score {score:.3f} vs all-empty {all_empty:.3f}")
    assert score > all_empty + 0.1


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.generate(out, n_train=3, n_test=1)
    assert _files(out) == {"keep.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no half-built leftovers

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        synthetic.generate(afile, n_train=3, n_test=1)


def test_fills_an_existing_empty_folder_and_leaves_no_temporaries(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    assert synthetic.generate(out, n_train=3, n_test=2, seed=0) == out
    assert len(data.load_train(out).ids) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"n_test": -1}, {"seed": -1}, {"n_train": 2.5}])
def test_rejects_bad_arguments_before_writing(tmp_path, kwargs):
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path / "set", **kwargs)
    assert not any(tmp_path.iterdir())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "salt_tf.tiles.synthetic", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_cli_writes_the_same_layout_as_the_library(tmp_path):
    out = tmp_path / "cli"
    run = _cli(str(out), "--n-train", "12", "--n-test", "4", "--seed", "3")
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.strip().splitlines()) == 1 and str(out) in run.stdout
    assert _files(out) == _files(synthetic.generate(tmp_path / "lib", n_train=12, n_test=4, seed=3))
    assert len(data.load_test(out).ids) == 4


def test_cli_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main([str(tmp_path / "set"), "--n-train", "12"])
    assert exit_info.value.code == 2 and "not empty" in capsys.readouterr().err


def test_cli_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("OUT_DIR", "--n-train", "--n-test", "--seed"):
        assert flag in out
