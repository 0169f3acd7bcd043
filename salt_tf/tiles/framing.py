"""How a window of a section is framed as the competition framed its tiles: each min-max stretched
to 0..255 on its own. Pure NumPy; used by training on sections (``mosaics.sample_windows``) and by
segmentation (``salt_tf.seismic.sections``), so that both see windows alike."""
from __future__ import annotations

import numpy as np


def stretch(values: np.ndarray) -> np.ndarray:
    """Windows (N, 101, 101) of amplitudes -> uint8, each min-max stretched to 0..255 on its own, as
    the competition's tiles were (so a window that is a released tile comes back unchanged). NaN
    (no data) pixels are left out of the stretch and set to mid-grey; a window with no spread is 0,
    like the competition's all-black tiles."""
    values = np.asarray(values, dtype=np.float32)
    live = np.isfinite(values)
    lo = np.where(live, values, np.inf).min(axis=(1, 2), keepdims=True)
    hi = np.where(live, values, -np.inf).max(axis=(1, 2), keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore"):
        grey = np.where(span > 0, (values - lo) * (255.0 / np.where(span > 0, span, 1.0)), 0.0)
    return np.rint(np.where(live, grey, 127.5)).astype(np.uint8)
