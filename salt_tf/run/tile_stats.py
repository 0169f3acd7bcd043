"""The grey levels of a run's training tiles (``tile_stats.json``): written by training, read by
segmentation to map a survey's amplitudes onto them and to check that the survey looks like them;
and the coarse grey-level histograms both compare. Pure NumPy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from salt_tf.common.atomic import write_text
from salt_tf.common.errors import SectionError

# Percentiles of |grey - median| recorded for the amplitude mapping; --amp-percentile must lie in
# their range (values between them are interpolated).
ABS_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 98.0, 99.0, 99.5, 99.9)

# Fallback when a run folder has no tile_stats.json (runs trained before it existed): the grey-level
# statistics of the 3,200 real TGS training tiles (tile_stats on them).
DEFAULT_TILE_STATS = {
    "source": "real TGS training tiles (3,200), built into salt_tf.run.tile_stats",
    "median": 120.0,
    "abs_dev_percentiles": {"50.0": 26.0, "75.0": 44.0, "90.0": 65.0, "95.0": 84.0, "98.0": 120.0,
                            "99.0": 120.0, "99.5": 120.0, "99.9": 126.0},
}
BINS = 32  # coarse bins of 8 grey levels each: 0-7, 8-15, ..., 248-255
BIN_WIDTH = 256 // BINS


def grey_histogram(grey: np.ndarray) -> np.ndarray:
    """Counts (256,) int64 of the uint8 grey levels in ``grey``."""
    grey = np.asarray(grey)
    if grey.dtype != np.uint8:
        raise ValueError(f"expected uint8 grey levels, got {grey.dtype}")
    return np.bincount(grey.ravel(), minlength=256).astype(np.int64)


def coarse(histogram) -> np.ndarray:
    """Shares (BINS,) summing to 1 (zeros if empty) of a histogram given as 256 counts or BINS values."""
    h = np.asarray(histogram, dtype=np.float64)
    if h.shape == (256,):
        h = h.reshape(BINS, BIN_WIDTH).sum(axis=1)
    if h.shape != (BINS,) or (h < 0).any():
        raise ValueError(f"expected a histogram of 256 or {BINS} non-negative values, got shape {h.shape}")
    total = h.sum()
    return h / total if total > 0 else h


def tile_histogram(images: np.ndarray) -> list[float]:
    """Grey-level shares of training tiles in BINS bins, for tile_stats.json (``grey_histogram``)."""
    return [round(float(v), 6) for v in coarse(grey_histogram(np.asarray(images, dtype=np.uint8)))]


# --- the training tiles' grey levels, recorded by training -------------------------------------

# A run's tiles count as each stretched on its own when at least this share spans exactly 0..255
# (the competition's: 87.9% of the 3,200 train tiles; the rest are mostly all black or nearly).
STRETCHED_SHARE = 0.5


def window_norm(images: np.ndarray) -> tuple[str, float]:
    """How the tiles were framed, so that segment.py frames its windows the same way: "minmax" if
    at least STRETCHED_SHARE of them span exactly 0..255 (each stretched on its own), else "global";
    and that share."""
    images = np.asarray(images)
    share = float(np.mean((images.min(axis=(1, 2)) == 0) & (images.max(axis=(1, 2)) == 255))) if len(images) else 0.0
    return ("minmax" if share >= STRETCHED_SHARE else "global"), share


def tile_stats(images: np.ndarray) -> dict:
    """Median grey level of the tiles, percentiles of |grey - median| over all their pixels, their
    grey-level histogram (``tile_histogram``, for segment.py's domain check) and how they were framed
    (``window_norm``)."""
    grey = np.asarray(images, dtype=np.float32).ravel()
    median = float(np.median(grey))
    dev = np.percentile(np.abs(grey - median), ABS_PERCENTILES)
    norm, share = window_norm(images)
    return {"source": "training tiles", "n_tiles": int(len(images)), "median": median,
            "abs_dev_percentiles": {str(float(q)): float(v) for q, v in zip(ABS_PERCENTILES, dev)},
            "histogram": tile_histogram(images), "window_norm": norm, "stretched_share": share}


def write_tile_stats(run_dir: str | Path, images: np.ndarray) -> None:
    write_text(Path(run_dir) / "tile_stats.json", json.dumps(tile_stats(images), indent=1))


def read_tile_stats(run_dir: str | Path, log=print) -> dict:
    path = Path(run_dir) / "tile_stats.json"
    if not path.exists():
        log(f"{path}: not found (run trained before tile statistics were recorded); mapping amplitudes "
            f"onto the grey levels of the real TGS training tiles instead (median {DEFAULT_TILE_STATS['median']:.0f})")
        return DEFAULT_TILE_STATS
    stats = json.loads(path.read_text())
    if "median" not in stats or "abs_dev_percentiles" not in stats:
        raise SectionError(f"{path}: expected 'median' and 'abs_dev_percentiles', found {sorted(stats)}")
    return stats
