"""The project on JAX, with TensorFlow made unimportable (issue 40): one process of
tests/backend_job.py imports the model, losses and data path, loads a model TensorFlow saved, and
runs train.py, predict.py and segment.py; the tests here read what it left and compare it with
TensorFlow's own results in this process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from salt_tf.inference.predict import load_ensemble, predict_probs
from salt_tf.model.unet import build_unet
from salt_tf.tiles import rle
from salt_tf.tiles.data import load_images

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def job(tiny_data, tmp_path_factory) -> tuple[Path, dict]:
    """(its folder, job.json): the job on JAX, given a U-Net that TensorFlow saved here."""
    work = tmp_path_factory.mktemp("jax")
    keras.utils.set_random_seed(3)
    model = build_unet("resnet18", 64, scse=True)
    rng = np.random.default_rng(0)
    for layer in model.get_layer("resnet18_encoder").layers:  # statistics that show if they are lost
        if isinstance(layer, keras.layers.BatchNormalization) and layer.moving_variance is not None:
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape))
    model.save(work / "tf_model.keras")
    x = rng.uniform(0, 1, (3, 64, 64, 1)).astype(np.float32)
    np.savez(work / "tf_io.npz", x=x, y=np.asarray(model.predict_on_batch(x)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "backend_job.py"), str(work), str(tiny_data)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=work)
    if not (work / "job.json").is_file():
        pytest.fail(f"the JAX job did not finish (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return work, json.loads((work / "job.json").read_text())


def result(job, step: str):
    found = job[1]["steps"][step]
    assert "error" not in found, found.get("error")
    return found["result"]


def test_model_losses_and_data_import_without_tensorflow(job):
    imported = result(job, "imports")
    assert imported["keras_backend"] == "jax" and imported["tensorflow_blocked"]
    assert imported["model_outputs"] == [None, 64, 64, 1]
    assert imported["sequence"] == "TileSequence" and imported["batch_shape"] == [4, 64, 64, 1]
    assert job[1]["tensorflow_modules"] == []  # nothing of TensorFlow or segmentation-models was loaded


def test_a_model_saved_on_tensorflow_gives_the_same_outputs_on_jax(job):
    result(job, "tf_model")
    expected = np.load(job[0] / "tf_io.npz")["y"]
    there = np.load(job[0] / "tf_model_here.npy")
    # Float32 on two kernels libraries (oneDNN, XLA): nearly every logit to 1e-4 of the scale, a few
    # (at ReLU and max-pool ties, amplified through 30 layers) to 1e-3; wrong weights are off by O(1).
    scale = np.abs(expected).max()
    assert np.mean(np.abs(there - expected) < 1e-4 * scale) > 0.99
    np.testing.assert_allclose(there, expected, atol=2e-3 * scale)


def test_train_py_trains_a_fold_on_jax(job):
    result(job, "train")
    run = job[0] / "run"
    fold = run / "fold0"
    assert (fold / "model.keras").is_file() and (fold / "result.json").is_file() and (fold / "oof.npz").is_file()
    assert not (fold / "saved_model").exists() and not (fold / "logs").exists()  # TensorFlow's formats
    history = pd.read_csv(fold / "history.csv")
    assert list(history["phase"]) == [1, 2] and np.isfinite(history["loss"]).all()
    assert json.loads((run / "report.json").read_text())["folds_done"] == [0]


def test_a_model_trained_on_jax_predicts_the_same_on_tensorflow(job, tiny_data):
    """predict.py on JAX wrote its probabilities; the same fold's model.keras, loaded here by
    TensorFlow, gives them again (float16 as the file stores them)."""
    result(job, "predict")
    saved = np.load(job[0] / "probs.npz")
    ids, images = load_images(tiny_data / "test" / "images", list(saved["ids"]))
    ensemble = load_ensemble(job[0] / "run")
    assert ensemble.kind == "keras"
    here = predict_probs(ensemble, images, progress=False)
    np.testing.assert_allclose(here, saved["probs"].astype(np.float32), atol=2e-3)
    table = pd.read_csv(job[0] / "submission.csv", dtype=str, keep_default_na=False)
    assert list(table["id"]) == list(ids) and len(ids) == 12
    assert all(rle.decode(text, (101, 101)).shape == (101, 101) for text in table["rle_mask"])


def test_segment_py_segments_a_volume_on_jax(job):
    result(job, "segment")
    out = job[0] / "segmented"
    probability = np.load(out / "probability.npy")
    assert probability.shape == (2, 70, 90) and np.isfinite(probability.astype(np.float32)).all()
    summary = json.loads((out / "segment.json").read_text())
    assert summary["threshold_source"]
