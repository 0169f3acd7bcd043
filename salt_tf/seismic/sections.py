"""Whole sections, not tiles: amplitudes -> 8-bit grey levels -> overlapping 101x101 windows ->
any tile model -> probabilities blended back into the section.

Pure NumPy, no TensorFlow: the model is any callable mapping uint8 windows (N, 101, 101) to
probabilities (N, 101, 101), or, for a model that reads each window with pixels of its section around
it (``context``), windows of 101 + 2 x that margin to probabilities of the same side, whose centres
are blended (``salt_tf.seismic.segment`` passes the fold ensemble through
``salt_tf.inference.predict.predict_probs``; tests pass a stand-in). The shape follows MONAI's
``sliding_window_inference``: windows on a regular grid over the reflection-padded section,
predicted in batches, each weighted by a smooth window and divided by the summed weights.

A section here is (samples, traces): the sample (time/depth) axis vertical, as in the tiles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy import ndimage

from salt_tf.common.errors import SectionError

TILE = 101
DEFAULT_STRIDE = 50  # about half a tile: every pixel is seen by ~4 windows, away from their edges
MIN_SIDE = 11  # below this a window would be >90% mirror image in that direction; refused

# How each window is turned into a tile's grey levels: "minmax", each window stretched on its own
# to 0..255 as the competition's tiles were; "global", one amplitude map for the whole input.
WINDOW_NORMS = ("minmax", "global")

# The default percentile of the mapping: 95, because above it the real tiles saturate (2% of their
# pixels sit at 0 or 255, so the 98th-99.5th percentiles all read 120 grey levels).
DEFAULT_PERCENTILE = 95.0


# --- amplitudes -> grey levels ------------------------------------------------------------------

@dataclass(frozen=True)
class AmplitudeMap:
    """grey = clip(median_tiles + gain * (amplitude - centre), 0, 255), rounded to uint8.

    The rule: the ``percentile``-th percentile of |amplitude - centre| over the input (``centre``
    its median, sampled for big volumes) lands on the same percentile of |grey - median| of the
    training tiles, so the input's spread of amplitudes matches what the model saw.

    ``windows`` says how the model's windows are made (WINDOW_NORMS): from this map's grey levels
    ("global"), or each window of amplitudes stretched on its own (``tiles.framing.stretch``: "minmax"); the map
    itself still serves the domain check and the snapping of the top of salt. ``scales``: the factors
    by which each section is resampled before its windows are cut (``segment_sections``). ``mutes``:
    whether each trace's leading and trailing zeros are a mute, no data (``no_data``): True for
    amplitudes, False for a grey image, whose 0 is black. ``context``: the pixels of its section around
    each window that a run fine-tuned with context reads (report.json's ``context``; 0: the window alone).
    """
    centre: float
    gain: float
    median: float
    windows: str = "global"
    scales: tuple[float, ...] = (1.0,)
    mutes: bool = True
    context: int = 0

    def __call__(self, amplitudes: np.ndarray) -> np.ndarray:
        grey = self.median + self.gain * (np.asarray(amplitudes, dtype=np.float32) - self.centre)
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)

    def filled(self, amplitudes: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Amplitudes (traces, samples) with the traces that hold no data (``live`` false) set to the
        centre, which maps to the training tiles' median grey: neutral where the windows need a value."""
        return np.where(np.asarray(live)[:, None], amplitudes, self.centre)

    def no_data(self, amplitudes: np.ndarray, live: np.ndarray) -> np.ndarray:
        return no_data(amplitudes, live, self.mutes)


def no_data(amplitudes: np.ndarray, live: np.ndarray, mutes: bool = True) -> np.ndarray:
    """bool (traces, samples): where a line (traces, samples) holds no data. That is every sample of an
    absent trace (``live`` false), and with ``mutes`` every sample of a trace before its first and after
    its last nonzero amplitude: a mute or padding (recorded seismic is never exactly 0 for a run of
    samples; the real SEG-Y files of ../shared/realdata start with 12-176 such samples). A trace of
    zeros is then no data throughout. Zeros between the first and last nonzero sample are data."""
    live = np.asarray(live, bool)
    if not mutes:
        return np.repeat(~live[:, None], np.shape(amplitudes)[1], axis=1)
    has, first, last = _data_span(np.where(live[:, None], np.asarray(amplitudes) != 0, False))
    i = np.arange(np.shape(amplitudes)[1])
    return ~has[:, None] | (i < first[:, None]) | (i > last[:, None])


def _data_span(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trace of ``data`` (bool (traces, samples)): whether it has any, and its first and last
    sample with data (0 and the last sample for a trace without)."""
    has, n = data.any(axis=1), data.shape[1]
    return has, np.where(has, data.argmax(axis=1), 0), np.where(has, n - 1 - data[:, ::-1].argmax(axis=1), n - 1)


def mirror_into_mutes(amplitudes: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """Amplitudes (traces, samples) with each trace's leading and trailing no-data samples (``empty``,
    from ``no_data``) replaced by its data mirrored across the mute's edge, as the section's own edges
    are padded, so that a window sees seismic go on rather than a flat band, which the model reads as
    salt (on the real SEG-Y files, benchmarks/RESULTS.md). Traces without data are left as they are."""
    a = np.asarray(amplitudes)
    _, first, last = _data_span(~np.asarray(empty, bool))
    first, last = first[:, None], last[:, None]
    i = np.arange(a.shape[1])[None, :]
    source = np.where(i < first, 2 * first - i, np.where(i > last, 2 * last - i, i))
    return np.take_along_axis(a, np.clip(source, first, last), axis=1)


def filled_for_windows(amplitudes: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """A line's amplitudes (traces, samples) as windows stretched on their own see them, ``empty`` its
    no data (``no_data``): each trace's mute filled with its data mirrored (``mirror_into_mutes``),
    each trace without data with the nearest trace with data (``nearest_live_traces``). segment.py's
    ``minmax`` windows and a survey's training windows (``survey_tiles``) are both cut from it."""
    traces = ~np.asarray(empty, bool).all(axis=1)
    kept = np.where(traces[:, None], amplitudes, 0.0)
    return nearest_live_traces(mirror_into_mutes(kept, empty), traces)


def nearest_live_traces(amplitudes: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Amplitudes (traces, samples) with each trace that holds no data (``live`` false) replaced by the
    nearest live trace (the earlier one on a tie), so that a window stretched on its own sees the
    seismic go on across a gap, not a flat grey band that reads like salt (on real sections with unknown
    cells, benchmarks/RESULTS.md). A line with no live trace comes back as NaN."""
    live = np.asarray(live, bool)
    if not live.any():
        return np.full(np.shape(amplitudes), np.nan, np.float32)
    nearest = ndimage.distance_transform_edt(~live, return_distances=False, return_indices=True)[0]
    return np.asarray(amplitudes)[nearest]


def training_spread(stats: dict, percentile: float) -> float:
    table = {float(q): float(v) for q, v in stats["abs_dev_percentiles"].items()}
    qs = np.array(sorted(table))
    if not qs[0] <= percentile <= qs[-1]:
        raise SectionError(f"amplitude percentile {percentile}: must lie within {qs[0]}..{qs[-1]}, "
                           f"the percentiles recorded from the training tiles")
    return float(np.interp(percentile, qs, [table[q] for q in qs]))


def amplitude_scale(stats: dict, gain: float, percentile: float = 95.0) -> float:
    """The amplitude (from the centre) that a map of ``gain`` puts on the training tiles'
    ``percentile`` of |grey - median|: under the default mapping, the input's own 95th percentile
    of |amplitude - centre|, whatever ``--amp-percentile`` chose."""
    return training_spread(stats, percentile) / gain


def amplitude_map(sample: np.ndarray, stats: dict, percentile: float = DEFAULT_PERCENTILE, name: str = "input",
                  clip: float | None = None, centre: float | None = None, windows: str = "global") -> AmplitudeMap:
    """The map for an input from a sample of its amplitudes (or a given ``clip`` / ``centre``)."""
    sample = np.asarray(sample, dtype=np.float64).ravel()
    if not sample.size:
        raise SectionError(f"{name}: no data: every trace is absent or all zeros; nothing to segment")
    if centre is None:
        centre = float(np.median(sample))
    if clip is None:
        clip = float(np.percentile(np.abs(sample - centre), percentile))
    if not clip > 0:
        raise SectionError(f"{name}: amplitudes are constant (all {centre:g}); nothing to segment")
    return AmplitudeMap(centre=float(centre), gain=training_spread(stats, percentile) / clip,
                        median=float(stats["median"]), windows=windows)


# --- windows and blending -----------------------------------------------------------------------

def starts(length: int, stride: int, tile: int = TILE) -> tuple[np.ndarray, int, int]:
    """Window starts over a padded axis and its padding (before, after).

    The axis is padded by ``(tile - stride) // 2`` before, so that its first pixel sits inside a
    window rather than at its low-weight edge, and after until the last window fits.
    """
    before = (tile - stride) // 2
    n = max(1, int(np.ceil((length + 2 * before - tile) / stride)) + 1)
    after = (n - 1) * stride + tile - length - before
    return np.arange(n) * stride, before, after


def weight_window(tile: int = TILE, floor: float = 0.02) -> np.ndarray:
    """A 2-D Hann window with a floor: smooth towards the edges so that seams fade out, and positive
    everywhere so that every pixel's summed weight is > 0 and an identity model blends exactly."""
    i = np.arange(tile, dtype=np.float64)
    hann = np.sin(np.pi * (i + 0.5) / tile) ** 2
    w1 = floor + (1.0 - floor) * hann
    return np.outer(w1, w1).astype(np.float32)


def check_stride(stride: int) -> None:
    if not 1 <= stride <= TILE:
        raise SectionError(f"--stride {stride}: must be within 1..{TILE} so that windows cover the section")


def check_side(size: int, what: str, name) -> None:
    """A section must have MIN_SIDE samples and traces at least, to be padded to a tile."""
    if size < MIN_SIDE:
        raise SectionError(f"{name}: {size} {what} is too few; padding a section to a {TILE}x{TILE} "
                           f"tile needs at least {MIN_SIDE}")


def check_finite(values: np.ndarray, name, axes: tuple[str, ...] = ("sample", "trace")) -> None:
    """Refuse NaN or infinite amplitudes, naming how many and where the first one is."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = ", ".join(f"{axis} {i}" for axis, i in zip(axes, np.argwhere(bad)[0]))
        raise SectionError(f"{name}: NaN or infinite amplitudes ({int(bad.sum())} values, first at {first})")


def check_section(section: np.ndarray, name) -> None:
    if section.ndim != 2:
        raise SectionError(f"{name}: expected a 2-D section, got shape {section.shape}")
    check_side(section.shape[0], "samples", name)
    check_side(section.shape[1], "traces", name)
    check_finite(section, name)


def count_windows(length_a: int, length_b: int, stride: int, scales: tuple[float, ...] = (1.0,)) -> int:
    """How many windows ``windows`` cuts from a section of ``length_a`` x ``length_b`` at ``stride``,
    over its ``scales`` (``rescale``)."""
    def at(length, scale):
        return len(starts(scaled_length(length, scale), stride)[0])
    return sum(at(length_a, s) * at(length_b, s) for s in scales)


def scaled_length(length: int, scale: float) -> int:
    """An axis of ``length`` pixels resampled by ``scale`` (``rescale``): never below MIN_SIDE."""
    return length if scale == 1.0 else max(MIN_SIDE, round(length * scale))


def windows(grey: np.ndarray, stride: int = DEFAULT_STRIDE, margin: int = 0) -> tuple[np.ndarray, tuple]:
    """All windows (N, 101, 101) of a section (H, W) and the layout to blend them back; with
    ``margin``, each window (N, 101 + 2 x margin, ...) holds that many pixels of the section around
    the same 101x101 centre (reflected beyond its edges), for a model that reads with context."""
    check_stride(stride)
    ys, top, bottom = starts(grey.shape[0], stride)
    xs, left, right = starts(grey.shape[1], stride)
    side = TILE + 2 * margin
    padded = np.pad(grey, ((top + margin, bottom + margin), (left + margin, right + margin)), mode="reflect")
    view = np.lib.stride_tricks.sliding_window_view(padded, (side, side))[::stride, ::stride]
    out = np.ascontiguousarray(view[: len(ys), : len(xs)]).reshape(-1, side, side)
    centres = (padded.shape[0] - 2 * margin, padded.shape[1] - 2 * margin)
    return out, (grey.shape, centres, ys, xs, top, left)


def blend(probs: np.ndarray, layout: tuple, weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted average of overlapping window probabilities, cropped back to the section.

    ``probs`` (N, 101, 101) gives (H, W); members' windows (M, N, 101, 101) give (M, H, W), each
    member blended on its own."""
    shape, padded_shape, ys, xs, top, left = layout
    weight = weight_window() if weight is None else weight
    members = probs if probs.ndim == 4 else probs[None]
    acc = np.zeros((len(members),) + padded_shape, dtype=np.float64)
    total = np.zeros(padded_shape, dtype=np.float64)
    k = 0
    for y in ys:
        for x in xs:
            acc[:, y : y + TILE, x : x + TILE] += weight * members[:, k]
            total[y : y + TILE, x : x + TILE] += weight
            k += 1
    out = (acc / total)[:, top : top + shape[0], left : left + shape[1]].astype(np.float32)
    return out if probs.ndim == 4 else out[0]


Model = Callable[[np.ndarray], np.ndarray]


def rescale(section: np.ndarray, scale: float) -> np.ndarray:
    """A section (H, W) resampled by ``scale`` along both axes (area averaging when shrinking), NaN
    (absent traces) kept where most of a new pixel's source is NaN; uint8 stays uint8."""
    if scale == 1.0:
        return section
    h, w = section.shape
    size = (scaled_length(w, scale), scaled_length(h, scale))  # cv2: (width, height)
    how = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    values = section.astype(np.float32)
    live = np.isfinite(values)
    out = cv2.resize(np.where(live, values, 0.0), size, interpolation=how)
    if not live.all():
        share = cv2.resize(live.astype(np.float32), size, interpolation=how)
        out = np.where(share >= 0.5, out / np.maximum(share, 1e-6), np.nan)  # the live pixels' own mean
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if section.dtype == np.uint8 else out


def check_scales(scales) -> tuple[float, ...]:
    """``--scale``'s factors (a sequence, or text "1,0.5") as a tuple, or a SectionError."""
    text = scales if isinstance(scales, str) else ",".join(str(s) for s in scales)
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise SectionError(f"--scale {text}: expected factors separated by commas, e.g. 1,0.5") from None
    if not scales or not all(0.1 <= s <= 4.0 for s in scales) or len(set(scales)) != len(scales):
        raise SectionError(f"--scale {','.join(f'{s:g}' for s in scales)}: expected distinct factors within "
                           f"0.1..4 (0.5: a body twice a window's size fits in one)")
    return scales


def segment_sections(greys: list[np.ndarray], model: Model, stride: int = DEFAULT_STRIDE, prepare=None,
                     scales: tuple[float, ...] = (1.0,), margin: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Salt probability and its uncertainty (each (H, W)) of each uint8 section (H, W), or of each
    section of amplitudes with ``prepare`` making its windows uint8 (``tiles.framing.stretch``).

    ``model`` maps windows (N, 101, 101) to probabilities (N, 101, 101), or to its members'
    probabilities (M, N, 101, 101) (the folds x flips of an ensemble). Each member is blended over
    the windows; the probability is the members' mean, the uncertainty their standard deviation
    (0 for a single member). With ``scales``, each section is also resampled by each factor
    (``rescale``) before its windows are cut, and each scale's blended members, resampled back, are
    more members: their mean is the probability, their spread includes the scales' disagreement.
    With ``margin``, the windows hold that many pixels of context around their 101x101 centres
    (``windows``) and the model maps them to probabilities of the same side, of which the centres are
    blended. The windows of all the sections go to the model in one call, so that short lines still
    fill its batches."""
    cut = [(grey.shape, windows(rescale(grey, scale), stride, margin)) for grey in greys for scale in scales]
    tiles = np.concatenate([c[1][0] for c in cut])
    if prepare is not None:
        tiles = prepare(tiles)
    probs = np.asarray(model(tiles), dtype=np.float32)
    if probs.shape == tiles.shape:
        probs = probs[None]
    if probs.ndim != 4 or probs.shape[1:] != tiles.shape:
        raise ValueError(f"the model returned {probs.shape} for windows {tiles.shape}")
    probs = probs[:, :, margin : margin + TILE, margin : margin + TILE]
    ends = np.cumsum([len(c[1][0]) for c in cut])
    blended = []
    for p, (shape, (_, layout)) in zip(np.split(probs, ends[:-1], axis=1), cut):
        members = blend(p, layout)
        if members.shape[1:] != shape:
            members = np.stack([cv2.resize(m, shape[::-1], interpolation=cv2.INTER_LINEAR) for m in members])
        blended.append(members)
    out = []
    for k in range(len(greys)):
        members = np.concatenate(blended[k * len(scales) : (k + 1) * len(scales)])
        out.append((members.mean(axis=0), members.std(axis=0)))
    return out


def segment_section(grey: np.ndarray, model: Model, stride: int = DEFAULT_STRIDE, prepare=None,
                    scales: tuple[float, ...] = (1.0,), margin: int = 0) -> np.ndarray:
    """Salt probability (H, W) of a uint8 section (H, W) from a tile model, blended over windows
    (``prepare``, ``scales``, ``margin``: as in ``segment_sections``)."""
    return segment_sections([grey], model, stride, prepare, scales, margin)[0][0]
