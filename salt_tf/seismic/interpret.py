"""What interpreters take away from a salt mask: top and base of salt per trace, connected salt
bodies, a check that the input's grey levels look like the training tiles', and the inline versus
crossline disagreement.

Pure NumPy + scipy.ndimage, no TensorFlow. Everything streams one line at a time, so that memory
stays flat in the number of lines: a volume is a stack of lines, a line an array (traces, samples)
with the sample (time/depth) axis last, as ``seisio`` reads it; a 2-D section is one line.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

# --- top and base of salt -----------------------------------------------------------------------


def trace_surfaces(mask_line: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trace of a mask (traces, samples): the first and last salt sample index (int32, -1 where
    the trace holds no salt) and the number of separate salt intervals (int32; more than one marks
    an overhang or a second body below the first)."""
    mask = np.asarray(mask_line).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a mask line (traces, samples), got shape {mask.shape}")
    salty = mask.any(axis=1)
    top = np.where(salty, np.argmax(mask, axis=1), -1).astype(np.int32)
    base = np.where(salty, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1), -1).astype(np.int32)
    starts = mask[:, :1].sum(axis=1) + (mask[:, 1:] & ~mask[:, :-1]).sum(axis=1)
    return top, base, starts.astype(np.int32)


def label_patches(mask_line: np.ndarray, min_area: int = 1) -> tuple[np.ndarray, int]:
    """A line's salt patches (``scipy.ndimage.label``: 4-connectivity, as bodies within a line) numbered
    1..n, those of fewer than ``min_area`` pixels left out (0), and n."""
    local, n = ndimage.label(np.asarray(mask_line).astype(bool))
    if min_area > 1 and n:
        keep = np.bincount(local.ravel(), minlength=n + 1) >= min_area
        keep[0] = False
        renumber = np.zeros(n + 1, local.dtype)
        renumber[keep] = np.arange(1, int(keep.sum()) + 1)
        local, n = renumber[local], int(keep.sum())
    return local, n


def drop_small_patches(mask_line: np.ndarray, min_area: int) -> np.ndarray:
    """A line's mask (traces, samples) without its salt patches of fewer than ``min_area`` pixels
    (``label_patches``). The section's counterpart of ``predict.py``'s minimum salt area, which
    empties a tile whose mask is that small."""
    if min_area <= 1:
        return np.asarray(mask_line).astype(bool)
    return label_patches(mask_line, min_area)[0] > 0


def top_dip(top: np.ndarray) -> np.ndarray:
    """Per trace, how steeply the top of salt (``trace_surfaces``' first output, -1 for no salt)
    dips along the line: the largest change in samples to a neighbouring trace that also has salt
    (float32; inf for a salty trace with no salty neighbour, NaN for a trace without salt).

    On a flank dipping d samples per trace, a boundary placed one trace aside moves the top by d
    samples, so a top-of-salt error is read against it."""
    top = np.asarray(top, dtype=np.float64)
    top = np.where(top >= 0, top, np.nan)
    step = np.abs(np.diff(top))  # NaN where either trace lacks salt
    dip = np.fmax(np.concatenate([[np.nan], step]), np.concatenate([step, [np.nan]]))  # before, after
    return np.where(np.isnan(top), np.nan, np.where(np.isnan(dip), np.inf, dip)).astype(np.float32)


POLARITIES = ("peak", "trough")
# How a reflection near the mask's top is weighed (``snap_top``), chosen on two validation volumes
# (synthetic seeds 1 and 2, not the README's seed 0) with the five-fold demo run's masks and
# probabilities, a broad plateau (benchmarks/RESULTS.md, issue 18): a reflection one sample further
# from the mask's top must be SNAP_PENALTY stronger, in units of the amplitudes' scale (their 95th
# percentile of |amplitude - centre|); and it gains SNAP_SUPPORT times the rise of the salt
# probability across it (the mean over the SNAP_SPAN samples below less that over the SNAP_SPAN
# above), since salt lies below the top of salt and not above it.
SNAP_PENALTY = 0.04
SNAP_SUPPORT = 2.0
SNAP_SPAN = 4


def snap_top(top: np.ndarray, amplitudes: np.ndarray, window: int, polarity: str = "peak",
             centre: float = 0.0, scale: float = 1.0, probability: np.ndarray | None = None,
             base: np.ndarray | None = None, penalty: float = SNAP_PENALTY,
             support: float = SNAP_SUPPORT) -> np.ndarray:
    """Per trace, move the top of salt (``trace_surfaces``' first output, -1 for no salt) onto the
    strongest reflection within ``window`` samples of it, as an interpreter snaps a pick to the
    top-salt event. A reflection is a peak of the amplitudes (``polarity`` "peak") or of their
    negatives ("trough") in the trace's ``amplitudes`` (traces, samples), measured from
    ``centre``: above it, rising from the sample above and not falling to the one below (a
    plateau counts once, at its top). Its strength is its amplitude over ``scale``, less
    ``penalty`` per sample from the mask's top, plus ``support`` times the rise of the salt
    ``probability`` (traces, samples; if given) across it: so a bright sediment event further
    away, or with no salt below it, does not win over the salt's own. A reflection below ``base``
    (per trace: its last salt sample, if given) is not taken; a trace without a reflection in
    reach keeps its top.

    A salt top is a large impedance contrast, usually a strong reflection, and sharp on every
    trace; the mask places the boundary only to about a trace, which on a flank dipping d samples
    per trace is d samples off."""
    if polarity not in POLARITIES:
        raise ValueError(f"polarity {polarity!r}: expected one of {', '.join(POLARITIES)}")
    top = np.asarray(top, dtype=np.int64)
    a = (np.asarray(amplitudes, dtype=np.float32) - np.float32(centre)) * (1.0 if polarity == "peak" else -1.0)
    n_traces, n_samples = a.shape
    if window <= 0 or n_samples < 3:
        return top.astype(np.int32)
    offsets = np.arange(-window, window + 1)
    at = top[:, None] + offsets  # (traces, 2 window + 1) samples searched
    inside = (top[:, None] >= 0) & (at >= 1) & (at <= n_samples - 2)
    at = np.clip(at, 1, n_samples - 2)
    rows = np.arange(n_traces)[:, None]
    here = a[rows, at]
    reflection = inside & (here > 0) & (here > a[rows, at - 1]) & (here >= a[rows, at + 1])
    if base is not None:
        reflection &= at <= np.asarray(base)[:, None]
    strength = here / np.float32(scale) - np.float32(penalty) * np.abs(offsets)
    if probability is not None:
        strength = strength + np.float32(support) * _rise(probability, at)
    strength = np.where(reflection, strength, -np.inf)
    best = np.argmax(strength, axis=1)  # ties: the shallowest
    found = np.isfinite(strength[np.arange(n_traces), best])
    return np.where(found, at[np.arange(n_traces), best], top).astype(np.int32)


def _rise(probability: np.ndarray, at: np.ndarray, span: int = SNAP_SPAN) -> np.ndarray:
    """Per trace and sample ``at`` (traces, k): the mean probability over the ``span`` samples below
    it less the mean over the ``span`` above (fewer at the trace's ends; NaN counts as 0)."""
    p = np.nan_to_num(np.asarray(probability, dtype=np.float64))
    n_traces, n_samples = p.shape
    total = np.concatenate([np.zeros((n_traces, 1)), np.cumsum(p, axis=1)], axis=1)
    rows = np.arange(n_traces)[:, None]

    def mean(lo, hi):
        lo, hi = np.clip(lo, 0, n_samples), np.clip(hi, 0, n_samples)
        return (total[rows, hi] - total[rows, lo]) / np.maximum(hi - lo, 1)

    return (mean(at + 1, at + 1 + span) - mean(at - span, at)).astype(np.float32)


# --- salt bodies ----------------------------------------------------------------------------------

BODY_COLUMNS = ("id", "voxels", "line_min", "line_max", "trace_min", "trace_max", "sample_min", "sample_max")


class BodyLabeller:
    """Connected salt bodies in 3-D over a stack of lines fed one at a time.

    Pass 1: ``add(mask_line)`` labels the line in 2-D (4-connectivity, ``scipy.ndimage.label``'s
    default cross) with provisional ids unique over the volume, and joins them to the previous
    line's where the same trace and sample are salt in both (face connectivity across lines: the
    6-connectivity of the whole 3-D array). The joins go into a union-find over provisional ids, so
    only the previous line is held; what grows is a few numbers per provisional component.
    ``finish(min_voxels)`` then numbers the bodies 1..n by size, largest first (ties: the body met
    first in line, trace, sample order, as ``ndimage.label`` would number them), dropping those
    smaller than ``min_voxels``. Pass 2: ``relabel(provisional_line)`` turns each stored line of
    provisional ids into final ids (0: no salt or a dropped body).
    """

    def __init__(self):
        self._parent = np.zeros(1, dtype=np.int64)  # union-find over provisional ids; 0 = no salt
        self._stats: list[np.ndarray] = []  # per line: (voxels, line, trace_min/max, sample_min/max) per id
        self._count = 0  # provisional ids used so far
        self._previous: np.ndarray | None = None
        self._lines = 0
        self._final: np.ndarray | None = None

    def add(self, mask_line: np.ndarray, min_area: int = 1) -> np.ndarray:
        """Provisional int32 labels (traces, samples) of the next line; 0 = no salt, and the line's
        patches of fewer than ``min_area`` pixels (``label_patches``), so that
        ``labels > 0`` is the line's mask without them."""
        if self._final is not None:
            raise RuntimeError("BodyLabeller.add after finish: bodies are already numbered")
        mask = np.asarray(mask_line).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f"expected a mask line (traces, samples), got shape {mask.shape}")
        if self._previous is not None and mask.shape != self._previous.shape:
            raise ValueError(f"line {self._lines}: shape {mask.shape}, the previous lines were {self._previous.shape}")
        local, n = label_patches(mask, min_area)
        if self._count + n > np.iinfo(np.int32).max:
            raise OverflowError(f"line {self._lines}: more than 2**31 provisional salt components")
        labels = np.where(local > 0, local + self._count, 0).astype(np.int32)
        boxes = ndimage.find_objects(local)
        stats = np.empty((n, 6), dtype=np.int64)
        stats[:, 0] = np.bincount(local.ravel(), minlength=n + 1)[1:]
        stats[:, 1] = self._lines
        stats[:, 2:] = [(t.start, t.stop - 1, s.start, s.stop - 1) for t, s in boxes] if n else np.empty((0, 4))
        self._stats.append(stats)
        self._grow(self._count + n + 1)
        self._parent[self._count + 1 : self._count + n + 1] = np.arange(self._count + 1, self._count + n + 1)
        if self._previous is not None:
            touching = (self._previous > 0) & (labels > 0)
            # each (previous id, id) pair once, packed into one int64 so that unique sorts a flat array
            pairs = np.unique(self._previous[touching].astype(np.int64) << 32 | labels[touching])
            for a, b in zip((pairs >> 32).tolist(), (pairs & 0xFFFFFFFF).tolist()):
                self._union(a, b)
        self._count += n
        self._previous = labels
        self._lines += 1
        return labels

    def finish(self, min_voxels: int = 1) -> dict[str, np.ndarray]:
        """Number the bodies and return their table: a dict of int64 columns ``BODY_COLUMNS`` (id,
        voxels, line_min, line_max, trace_min, trace_max, sample_min, sample_max; 0-based line,
        trace and sample indices), one row per body of at least ``min_voxels`` voxels, id 1..n."""
        parent = self._parent[: self._count + 1].copy()
        while True:  # pointer jumping: every id straight to its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        stats = np.concatenate(self._stats) if self._stats else np.empty((0, 6), np.int64)
        roots = parent[1:]
        order_ids, body = np.unique(roots, return_inverse=True)  # roots ascending = first met first
        n = len(order_ids)
        voxels = np.bincount(body, weights=stats[:, 0], minlength=n).astype(np.int64)
        lo = np.full((n, 3), np.iinfo(np.int64).max)
        hi = np.full((n, 3), -1, dtype=np.int64)
        for k, (a, b) in enumerate(((1, 1), (2, 3), (4, 5))):
            np.minimum.at(lo[:, k], body, stats[:, a])
            np.maximum.at(hi[:, k], body, stats[:, b])
        # Roots are the smallest provisional id of their component (see _union), and provisional ids
        # follow line, then ndimage's raster order within the line: sorting by root is first appearance.
        rank = np.lexsort((order_ids, -voxels))
        kept = rank[voxels[rank] >= min_voxels]
        final_of_body = np.zeros(n, dtype=np.int32)
        final_of_body[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
        self._final = np.concatenate([[0], final_of_body[body]]).astype(np.int32)
        self._previous = None
        return {"id": np.arange(1, len(kept) + 1, dtype=np.int64), "voxels": voxels[kept],
                "line_min": lo[kept, 0], "line_max": hi[kept, 0], "trace_min": lo[kept, 1],
                "trace_max": hi[kept, 1], "sample_min": lo[kept, 2], "sample_max": hi[kept, 2]}

    def relabel(self, provisional_line: np.ndarray) -> np.ndarray:
        """Final int32 body ids of a line of provisional ids from ``add`` (after ``finish``)."""
        if self._final is None:
            raise RuntimeError("BodyLabeller.relabel before finish: bodies are not numbered yet")
        return self._final[np.asarray(provisional_line)]

    def _grow(self, size: int) -> None:
        if size > len(self._parent):
            grown = np.zeros(max(size, 2 * len(self._parent)), dtype=np.int64)
            grown[: len(self._parent)] = self._parent
            self._parent = grown

    def _find(self, a: int) -> int:
        parent = self._parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = int(parent[a])
        return a

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:  # the smaller id becomes the root: a component's root is its first-met id
            self._parent[max(ra, rb)] = min(ra, rb)
