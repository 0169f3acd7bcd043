"""K-fold assignment stratified by depth (the original solution's choice) or by salt coverage."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from salt_tf.common.atomic import atomic_path

STRATIFY_BY = ("depth", "coverage")


def _strata(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantile bins of ``values``: each bin holds about the same number of tiles."""
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return (ranks * n_bins // len(values)).astype(np.int64)


def assign_folds(
    table: pd.DataFrame, n_folds: int = 5, seed: int = 0, by: str = "depth", n_bins: int = 10
) -> pd.DataFrame:
    """Return a DataFrame ``id, fold`` (folds 0..n_folds-1), stratified on ``by``.

    ``table`` needs a column ``id`` and, for ``by="depth"``, ``z``; for ``by="coverage"``,
    ``coverage``. Deterministic for a seed. Each id lands in exactly one validation fold.
    """
    if by not in STRATIFY_BY:
        raise ValueError(f"stratify by one of {STRATIFY_BY}, not {by!r}")
    column = "z" if by == "depth" else "coverage"
    if column not in table:
        raise ValueError(f"stratifying by {by} needs a column {column!r}; got {list(table.columns)}")
    n = len(table)
    if n_folds < 2 or n_folds > n:
        raise ValueError(f"n_folds must be between 2 and the number of tiles ({n}), got {n_folds}")
    values = table[column].to_numpy(dtype=np.float64)
    if by == "coverage":
        # Empty tiles are their own stratum (39% of the real data); the rest in coverage quantiles.
        strata = np.zeros(n, dtype=np.int64)
        salty = values > 0
        if salty.any():
            strata[salty] = 1 + _strata(values[salty], max(1, n_bins - 1))
    else:
        strata = _strata(values, n_bins)
    # A stratum needs at least n_folds members; merge the smallest into a neighbour until true.
    strata = _merge_small_strata(strata, n_folds)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.empty(n, dtype=np.int64)
    for k, (_, val) in enumerate(splitter.split(np.zeros(n), strata)):
        fold[val] = k
    return pd.DataFrame({"id": table["id"].to_numpy(), "fold": fold})


def _merge_small_strata(strata: np.ndarray, n_folds: int) -> np.ndarray:
    strata = strata.copy()
    while True:
        labels, counts = np.unique(strata, return_counts=True)
        if len(labels) == 1 or counts.min() >= n_folds:
            return strata
        small = labels[np.argmin(counts)]
        i = int(np.searchsorted(labels, small))
        neighbour = labels[i - 1] if i > 0 else labels[i + 1]
        strata[strata == small] = neighbour


def write_folds(folds: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        folds[["id", "fold"]].to_csv(tmp, index=False)


def read_folds(path: str | os.PathLike, ids=None) -> pd.DataFrame:
    """Read ``id,fold``; with ``ids``, check that it covers exactly those ids."""
    folds = pd.read_csv(path, dtype={"id": str})
    if list(folds.columns) != ["id", "fold"]:
        raise ValueError(f"{path}: expected columns id,fold, got {','.join(folds.columns)}")
    dup = folds["id"][folds["id"].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: id {dup.iloc[0]} appears more than once")
    if ids is not None:
        missing = sorted(set(ids) - set(folds["id"]))
        extra = sorted(set(folds["id"]) - set(ids))
        if missing or extra:
            raise ValueError(
                f"{path}: folds do not match the data set: {len(missing)} ids without a fold "
                f"(e.g. {missing[:3]}), {len(extra)} unknown ids (e.g. {extra[:3]})"
            )
    return folds
