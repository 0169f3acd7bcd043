"""A training set of windows cut from a user's survey (``python -m salt_tf.seismic.survey_tiles``),
read for ``train.py --survey DIR``: the windows as tiles, their labels (0, 1, ``UNLABELLED``) as
masks, their line numbers where the tiles keep depths, and fixed folds of whole lines.

``training_rows`` keeps out of a fold's training every window whose line lies within ``gap`` lines
of one of the fold's validation lines, so that no training window overlaps or nearly duplicates a
validation one (microsoft/seismic-deeplearning's issue 233: without it, every score was inflated).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from salt_tf.tiles.data import DataError, TrainData
from salt_tf.tiles.metrics import LABEL_VALUES, UNLABELLED

TILE = 101


def load(folder: str | os.PathLike) -> tuple[TrainData, pd.DataFrame, dict]:
    """(windows as TrainData with lines as depths, folds (id, fold, line), survey.json) of a folder."""
    folder = Path(folder)
    for name in ("windows.npz", "folds.csv", "survey.json"):
        if not (folder / name).is_file():
            raise DataError(f"{folder}: no {name}; make the folder with python -m salt_tf.seismic.survey_tiles")
    with np.load(folder / "windows.npz", allow_pickle=False) as z:
        ids, images, labels, lines = (z[k] for k in ("ids", "images", "labels", "lines"))
    n = len(ids)
    if images.shape != (n, TILE, TILE) or labels.shape != images.shape or lines.shape != (n,):
        raise DataError(f"{folder / 'windows.npz'}: expected {n} windows of {TILE}x{TILE} with labels and lines, "
                        f"got images {images.shape}, labels {labels.shape}, lines {lines.shape}")
    odd = ~np.isin(labels, LABEL_VALUES)
    if odd.any():
        raise DataError(f"{folder / 'windows.npz'}: {int(odd.sum())} labels other than 0, 1, {UNLABELLED}")
    folds = pd.read_csv(folder / "folds.csv", dtype={"id": str})
    if list(folds.columns) != ["id", "fold", "line"] or not np.array_equal(folds["id"].to_numpy(str), ids.astype(str)):
        raise DataError(f"{folder / 'folds.csv'}: expected columns id,fold,line for the windows of windows.npz, in order")
    train = TrainData(ids=ids.astype(str), images=images.astype(np.uint8), masks=labels.astype(np.uint8),
                      depths=lines.astype(np.float32))
    return train, folds, json.loads((folder / "survey.json").read_text())


def training_rows(lines: np.ndarray, in_val: np.ndarray, gap: int) -> np.ndarray:
    """Indices of the windows a fold trains on: not validated, and on a line more than ``gap`` lines
    from every one of the fold's validation lines."""
    lines = np.asarray(lines, dtype=np.int64)
    val_lines = np.unique(lines[in_val])
    if not len(val_lines):
        return np.flatnonzero(~in_val)
    distance = np.abs(lines[:, None] - val_lines[None, :]).min(axis=1)
    return np.flatnonzero(~in_val & (distance > gap))


def load_for_training(folder: str | os.PathLike, folds: int, gap: int) -> tuple[TrainData, pd.DataFrame]:
    """(windows, folds (id, fold)) of a folder for ``train.py --survey``, refused (ValueError) if it was
    made with other folds, or if a fold has no line to train on with ``gap``."""
    train, fold_table, survey = load(folder)
    if survey["folds"] != folds:
        raise ValueError(f"--survey {folder}: made with {survey['folds']} folds of whole lines; "
                         f"give --folds {survey['folds']}")
    fold_table = fold_table[["id", "fold"]]
    for fold in range(folds):
        if not len(training_rows(train.depths, fold_table["fold"].to_numpy() == fold, gap)):
            raise ValueError(f"--survey {folder}: fold {fold} has no line to train on: every other labelled "
                             f"line lies within --gap {gap} of its validation lines")
    return train, fold_table
