"""Inference: the fold ensemble of exported models, flip TTA, tuned post-processing, submission.

On TensorFlow the folds' SavedModels (``fold*/saved_model``), with a traced TTA step. On JAX and
PyTorch, and on TensorFlow for a run trained elsewhere (no SavedModel), the folds' ``model.keras``
files, loaded by Keras on the backend at hand, the same TTA in NumPy around ``predict_on_batch``.

Every input is checked before any output is written: the run folder must hold at least one
fold's model, all models must take the same input size, and every tile must read as
101x101. Outputs are written atomically; the submission is decoded again after writing and
compared with the masks it should hold.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from salt_tf.common import figures
from salt_tf.common.atomic import atomic_path
from salt_tf.run.report import read_report
from salt_tf.tiles import pipeline, rle
from salt_tf.tiles.data import DataError, load_images, read_csv, read_mask
from salt_tf.tiles.metrics import image_scores, remove_small


class RunError(ValueError):
    """A run folder that cannot be used for inference."""


@dataclass
class Ensemble:
    folds: list[int]
    models: list  # tf.saved_model.load(...) objects with a `serve` endpoint, or Keras models
    size: int
    steps: dict = field(default_factory=dict, repr=False)  # traced predict steps by TTA setting
    kind: str = "saved_model"  # or "keras": models are keras.Model (any backend)
    context: dict | None = None  # report.json's "context": windows read with a margin (``context_of``)

    def input_size(self, side: int) -> int:
        """The model's input side for windows of ``side`` pixels: ``size`` for a tile; for a window
        with context (101 + 2 x its margin), the size the run's context was learned at."""
        if side == pipeline.TILE:
            return self.size
        wide = None if self.context is None else pipeline.TILE + 2 * self.context["margin"]
        if side != wide:
            learned = "" if wide is None else f" or {wide}x{wide} (a tile with {self.context['margin']} px of context)"
            raise RunError(f"windows of {side}x{side} pixels: this run reads {pipeline.TILE}x{pipeline.TILE}{learned}")
        if self.kind != "keras":
            raise RunError("windows with context need the folds' model.keras (a SavedModel takes one input size)")
        return int(self.context["size"])

    def __call__(self, batch):
        """Mean sigmoid probability over the folds for a batch (B, S, S, 1) (SavedModels, a tf.Tensor)."""
        import tensorflow as tf

        total = None
        for model in self.models:
            probs = tf.sigmoid(tf.cast(model.serve(batch), tf.float32))
            total = probs if total is None else total + probs
        return total / len(self.models)


def exported_kind(run_dir: Path) -> tuple[str, str]:
    """Which models of the folds to load: ("saved_model", "saved_model/saved_model.pb") on TensorFlow
    where the run has SavedModels, else ("keras", "model.keras")."""
    if keras.backend.backend() == "tensorflow" and any(run_dir.glob("fold*/saved_model/saved_model.pb")):
        return "saved_model", "saved_model/saved_model.pb"
    return "keras", "model.keras"


def load_saved_model(path: Path):
    import tensorflow as tf

    model = tf.saved_model.load(str(path.parent))
    if not hasattr(model, "serve"):
        raise RunError(f"{path.parent}: SavedModel has no 'serve' endpoint (not exported by salt_tf)")
    spec = model.serve.input_signature[0] if model.serve.input_signature else None
    return model, tuple(spec.shape) if spec is not None else ()


def load_keras_model(path: Path):
    import salt_tf.model.layers  # noqa: F401  (registers the custom layers the file names)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many kinds for a file it cannot read
        first = str(err).splitlines()[0] if str(err) else ""
        raise RunError(f"{path}: cannot load the fold's model ({type(err).__name__}: {first})") from err
    return model, tuple(model.input_shape)


def load_ensemble(run_dir: str | Path, folds: list[int] | None = None) -> Ensemble:
    """The run's fold models: those of ``folds``, else those its report covers, else all there are."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run folder not found")
    kind, file = exported_kind(run_dir)
    exported = sorted(run_dir.glob(f"fold*/{file}"))
    report = run_dir / "report.json"
    # Exactly the folds the report (and its tuned threshold) covers: other --fold processes
    # may still be training, or have exported a model the report does not know yet.
    done = read_report(run_dir).get("folds_done") if folds is None else folds
    if done is not None:
        exported = [run_dir / f"fold{k}" / file for k in done]
        missing = [p.parent if kind == "saved_model" else p for p in exported if not p.is_file()]
        if missing:
            raise RunError(f"{report}: lists fold models that are missing: {', '.join(map(str, missing))}")
    if not exported:
        wanted = "fold*/saved_model" if keras.backend.backend() == "tensorflow" else "fold*/model.keras"
        raise RunError(f"{run_dir}: no {wanted} in this run folder; train first (python train.py)")
    folds, models, sizes = [], [], {}
    for path in exported:
        model, shape = load_saved_model(path) if kind == "saved_model" else load_keras_model(path)
        where = path.parent if kind == "saved_model" else path
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1:
            raise RunError(f"{where}: expected a model of (batch, size, size, 1) tiles, got input {shape}")
        sizes[where] = shape[1]
        fold_dir = path.parent.parent if kind == "saved_model" else path.parent
        folds.append(int(fold_dir.name[len("fold"):]))
        models.append(model)
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{p.parent.name}: {s}" for p, s in sizes.items())
        raise RunError(f"{run_dir}: the folds' models expect different input sizes ({listing})")
    size = next(iter(sizes.values()))
    config = run_dir / "config.json"
    if config.exists():
        settings = json.loads(config.read_text())
        configured = settings.get("size")
        if settings.get("fit") == "pad":  # the models pad the 101x101 tiles themselves
            configured = pipeline.TILE
        if size is None:  # models of any input size (a fine-tune's, section_context.py): the run's tiles'
            size = configured
        if configured is not None and configured != size:
            raise RunError(f"{run_dir}: models expect {size}x{size} tiles but config.json says size {configured}")
    if size is None:
        raise RunError(f"{run_dir}: the models take any input size and no config.json says which")
    return Ensemble(folds, models, size, kind=kind, context=context_of(run_dir))


def context_of(run_dir: Path) -> dict | None:
    """report.json's ``context`` (a run fine-tuned to read each window with ``margin`` pixels of its
    section around it, ``benchmarks/section_context.py``), checked: its margin, the input ``size`` such
    a window is read at, and the ``threshold`` and ``min_area`` tuned on windows read so; None for a
    run that reads tiles alone."""
    context = read_report(run_dir).get("context")
    if context is None:
        return None
    wanted = {"margin": int, "size": int, "threshold": float, "min_area": int}
    bad = not isinstance(context, dict) or any(not isinstance(context.get(k), (int, float)) or kind(context[k]) != context[k]
                                               for k, kind in wanted.items())
    if bad or context["margin"] < 1 or context["size"] < 32 or not 0 <= context["threshold"] < 1:
        raise RunError(f"{run_dir / 'report.json'}: context must give a margin >= 1, a size >= 32, a threshold "
                       f"in [0, 1) and a min_area; got {context}")
    return context


def postprocessing(run_dir: Path, threshold: float | None) -> tuple[float, int]:
    """Threshold and minimum salt area: tuned out of fold by training (report.json), or given."""
    tuned = read_report(run_dir)
    if threshold is not None:
        return float(threshold), 0
    return float(tuned.get("threshold", 0.5)), int(tuned.get("min_area", 0))


def _sigmoid(logits) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float32)))  # the logistic, without exp's overflow


def _keras_members(ensemble: Ensemble, x: np.ndarray, tta: bool) -> list[np.ndarray]:
    """Each Keras model's probabilities for a batch (and, with ``tta``, for its mirror image, un-flipped)."""
    both = np.concatenate([x, x[:, :, ::-1]]) if tta else x
    members = []
    for model in ensemble.models:
        probs = _sigmoid(model.predict_on_batch(both))
        members += [probs[: len(x)], probs[len(x):, :, ::-1]] if tta else [probs]
    return members


def _step(ensemble: Ensemble, tta: bool):
    """The forward pass, kept on the ensemble: segment.py calls predict_probs once per line,
    and tracing it again each call would cost more than the line's windows. SavedModels: a traced
    tf.function from float32 arrays to probabilities; Keras models: NumPy around ``predict_on_batch``
    (Keras traces and keeps its own predict function per model)."""
    if ensemble.kind == "keras":
        return lambda x: np.mean(_keras_members(ensemble, x, tta), axis=0)
    if tta not in ensemble.steps:
        import tensorflow as tf

        size = ensemble.size

        # One trace for every batch size (the last batch is usually smaller).
        @tf.function(input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32)])
        def step(x):
            if not tta:
                return ensemble(x)
            # One forward pass over the tiles and their mirror images; un-flip, then average.
            both = ensemble(tf.concat([x, tf.reverse(x, axis=[2])], axis=0))
            plain, mirrored = tf.split(both, 2, axis=0)
            return 0.5 * (plain + tf.reverse(mirrored, axis=[2]))

        ensemble.steps[tta] = lambda x: step(tf.constant(x)).numpy()
    return ensemble.steps[tta]


def predict_probs(ensemble: Ensemble, images: np.ndarray, batch_size: int = 32, tta: bool = True,
                  progress: bool = True) -> np.ndarray:
    """Ensemble probabilities at 101x101 for uint8 tiles (N, 101, 101), with flip TTA; for a run that
    reads with context, also for its windows (N, S, S) (``Ensemble.input_size``), at their side."""
    side = images.shape[1] if len(images) else pipeline.TILE
    size = ensemble.input_size(side)
    step = _step(ensemble, tta)
    bar = keras.utils.Progbar(len(images), unit_name="tile") if progress else None
    out = []
    # A plain loop, no tf.data: resizing a batch takes about a millisecond against seconds of
    # forward passes, so there is nothing to overlap; and deleting the autotuned tf.data iterator
    # after the last batch sat idle for 0 to 40 s (TF 2.21, 2-core CPU; benchmarks/predict_speed.py).
    for first in range(0, len(images), batch_size):
        batch = images[first : first + batch_size]
        out.append(pipeline.to_tile(step(pipeline.to_input(batch, size)), side))
        if bar:
            bar.add(len(batch))
    return np.concatenate(out) if out else np.zeros((0, side, side), np.float32)


def _member_step(ensemble: Ensemble, tta: bool):
    """The traced forward pass that keeps the members apart: (folds x flips, B, S, S, 1)."""
    if ensemble.kind == "keras":
        return lambda x: np.stack(_keras_members(ensemble, x, tta))
    key = ("members", tta)
    if key not in ensemble.steps:
        import tensorflow as tf

        size = ensemble.size

        @tf.function(input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32)])
        def step(x):
            both = tf.concat([x, tf.reverse(x, axis=[2])], axis=0) if tta else x
            members = []
            for model in ensemble.models:
                probs = tf.sigmoid(tf.cast(model.serve(both), tf.float32))
                if tta:
                    plain, mirrored = tf.split(probs, 2, axis=0)
                    members += [plain, tf.reverse(mirrored, axis=[2])]
                else:
                    members.append(probs)
            return tf.stack(members)

        ensemble.steps[key] = lambda x: step(tf.constant(x)).numpy()
    return ensemble.steps[key]


def predict_members(ensemble: Ensemble, images: np.ndarray, batch_size: int = 32, tta: bool = True) -> np.ndarray:
    """Each member's probabilities at 101x101, (folds x flips, N, 101, 101), for uint8 tiles
    (N, 101, 101) (or a context run's windows, as ``predict_probs``): their mean is ``predict_probs``,
    their spread the ensemble's uncertainty."""
    side = images.shape[1] if len(images) else pipeline.TILE
    size = ensemble.input_size(side)
    step = _member_step(ensemble, tta)
    out = []
    for first in range(0, len(images), batch_size):
        batch = images[first : first + batch_size]
        members = step(pipeline.to_input(batch, size))
        m, b = members.shape[:2]
        out.append(pipeline.to_tile(members.reshape((m * b,) + members.shape[2:]), side).reshape(m, b, side, side))
    if not out:
        return np.zeros((len(ensemble.models) * (2 if tta else 1), 0, side, side), np.float32)
    return np.concatenate(out, axis=1)


def masks_from_probs(probs: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    return remove_small(probs > threshold, min_area).astype(np.uint8)


def write_submission(path: str | Path, ids, masks: np.ndarray) -> None:
    """Write ``id,rle_mask`` atomically, then decode it again and compare with ``masks``."""
    table = pd.DataFrame({"id": list(ids), "rle_mask": [rle.encode(m) for m in masks]})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
        back = pd.read_csv(tmp, dtype=str, keep_default_na=False)
        if list(back["id"]) != list(ids) or back["id"].duplicated().any():
            raise RuntimeError(f"{path}: ids changed on the way to disk")
        for tile_id, text, mask in zip(back["id"], back["rle_mask"], masks):
            if not np.array_equal(rle.decode(text, mask.shape), mask):
                raise RuntimeError(f"{path}: mask of {tile_id} does not decode back to the prediction")


def write_overlays(path: str | Path, ids, images: np.ndarray, masks: np.ndarray, truth=None) -> None:
    """One PNG grid of tiles, each with its id, the predicted outline (red), the true one (green)
    and its competition score if the truth is known (else its predicted salt share)."""
    scores = image_scores(truth, masks) if truth is not None else None
    figures.tile_grid(path, list(ids), images, masks, truth, scores)


def read_ids(path: str | Path) -> list[str]:
    return list(read_csv(Path(path), ("id",))["id"])


def run(run_dir, images_dir, out, ids_csv=None, tta=True, threshold=None, probs_path=None,
        overlays=None, n_overlays=16, masks_dir=None, batch_size=32, log=print) -> dict:
    """Predict every tile of ``images_dir`` (or the ids of ``ids_csv``) and write the submission."""
    run_dir = Path(run_dir)
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise ValueError(f"--threshold {threshold}: must be a probability in [0, 1) (a pixel is salt above it)")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: must be at least 1")
    ensemble = load_ensemble(run_dir)
    ids = read_ids(ids_csv) if ids_csv else None
    if ids is not None and not ids:
        raise DataError(f"{ids_csv}: no ids listed (expected an id column with one row per tile)")
    try:
        ids, images = load_images(images_dir, ids)
    except DataError as err:
        if ids_csv and "file not found" in str(err):
            raise DataError(f"{err} (listed in {ids_csv})") from None
        raise
    n = min(n_overlays, len(ids)) if overlays else 0
    truth = np.stack([read_mask(Path(masks_dir) / f"{i}.png") for i in ids[:n]]) if masks_dir and n else None
    cut, min_area = postprocessing(run_dir, threshold)
    log(f"predicting {len(ids)} tiles with folds {ensemble.folds} at {ensemble.size}x{ensemble.size}"
        f"{' with flip TTA' if tta else ''}; threshold {cut:.3f}, minimum salt area {min_area} px")
    started = time.perf_counter()
    probs = predict_probs(ensemble, images, batch_size=batch_size, tta=tta)
    seconds = time.perf_counter() - started
    # The --probs file stores float16 (as do the out-of-fold probabilities the threshold was tuned
    # on): threshold those same rounded values, so that the file reproduces the submission exactly.
    probs = probs.astype(np.float16).astype(np.float32)
    masks = masks_from_probs(probs, cut, min_area)
    write_submission(out, ids, masks)
    if probs_path:
        with atomic_path(probs_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, ids=np.asarray(ids, dtype=str), probs=probs.astype(np.float16))
    if overlays:
        write_overlays(overlays, ids[:n], images[:n], masks[:n], truth)
    rate = len(ids) / seconds
    log(f"wrote {out}: {len(ids)} tiles, {int((masks.reshape(len(masks), -1).max(1) > 0).sum())} with salt; "
        f"{rate:.1f} tiles/s ({len(ensemble.models)} folds x {2 if tta else 1} passes)")
    return {"ids": ids, "probs": probs, "masks": masks, "tiles_per_second": rate}
