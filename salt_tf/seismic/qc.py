"""How far to trust a segmentation: the domain check (the input's grey levels against the training
tiles') and the disagreement between the inline and crossline passes. Pure NumPy."""
from __future__ import annotations

import numpy as np

from salt_tf.run.tile_stats import BIN_WIDTH, BINS, coarse, grey_histogram

# --- the domain check -----------------------------------------------------------------------------

# Grey-level histogram (shares of pixels, BINS bins of BIN_WIDTH levels) of the 3,200 real TGS
# training tiles (../shared/tgs/train/images/*.png, channel 0, 32,643,200 pixels), measured once.
# In those tiles 2.107% of pixels are exactly 0 and 0.043% exactly 255; all of the zeros but 0.013
# points come from the 67 all-black tiles (2.1% of the tiles): real seismic tiles clip at either
# end on well under 0.1% of their pixels. That is why the first bin stands out.
DEFAULT_TRAINING_HISTOGRAM = (
    0.02154, 0.00100, 0.00173, 0.00309, 0.00443, 0.00695, 0.01209, 0.01804,
    0.02749, 0.03792, 0.05106, 0.06611, 0.07381, 0.08079, 0.08495, 0.08323,
    0.07787, 0.07011, 0.06244, 0.05375, 0.04417, 0.03510, 0.02677, 0.01898,
    0.01223, 0.00803, 0.00537, 0.00383, 0.00262, 0.00208, 0.00153, 0.00090,
)

# The warning's bounds, from measurement (grey levels after salt_tf.seismic.sections' amplitude map, TV =
# total variation distance over the BINS bins to DEFAULT_TRAINING_HISTOGRAM). Remeasured by
# `python benchmarks/domain_check_bounds.py` (benchmarks/RESULTS.md, "The domain check's bounds");
# the first measurement, 2026-11-30:
#   real tiles, by depth class (0-200, 200-400, ..., 800-1000 ft): TV 0.16, 0.10, 0.04, 0.10, 0.07;
#     random groups of 8 tiles (one 808-trace line's worth): TV median 0.16, 99th percentile 0.34,
#     max 0.43 over 400 groups; clipped share 0.0003 median (a group with a black tile: 0.125);
#   the real tiles taken as amplitudes (grey - 120) and mapped back by sections.amplitude_map: TV 0.00;
#   synthetic_sections.make_volume (3 seeds, 12 x 160 x 200) mapped: TV 0.16-0.25 (0.26 for the worst line),
#     clipped at 0: 0.1-1.3%, at 255: 0-0.6% (with the tiles' salt texture since 2026-12-01; before
#     it: TV 0.20-0.27, 0.29);
#   badly mapped, the real tiles with the gain times 2 / 3 / 10: clipped at 0 6.4% / 14% / 38%, at
#     255 4.5% / 13% / 37%, TV 0.32 / 0.48 / 0.79 (synthetic volumes x10: clipped 23-29% per end,
#     TV 0.60-0.65); the gain times 0.5 / 0.3 / 0.1: nothing clipped, TV 0.32 / 0.51 / 0.77.
# So: clipping at either end above 5% (twice the tiles' 2.1% at 0, all black tiles, and over 100
# times what their seismic clips) catches a gain twice too high; a distance above 0.45 (above every
# 8-tile group of real tiles and well above the synthetic volumes) catches a gain three times too low.
# What passes: a gain up to about twice too low (TV 0.32), and even grey levels spread evenly over
# 0..255 (TV 0.42): the distance is a coarse net, kept loose so that real and synthetic data pass.
CLIP_LIMIT = 0.05
DISTANCE_LIMIT = 0.45


def histogram_distance(a, b) -> float:
    """Total variation distance between two histograms (256 counts or BINS shares): 0 same, 1 disjoint."""
    return float(0.5 * np.abs(coarse(a) - coarse(b)).sum())


class DomainCheck:
    """Does the input, mapped to grey levels, look like the training tiles? Fed line by line.

    ``add_line`` counts the grey levels of a line's live samples (dead traces and mutes, no data, are left
    out); ``record`` keeps the line's mean salt probability and mean uncertainty; ``summary``
    gives the JSON-ready figures and one warning line, or None.

    The rule: warn when, over all live samples, the share at grey level 0 or the share at 255
    exceeds ``clip_limit`` (5%), or when the total variation distance between the input's and the
    training tiles' histograms (BINS bins) exceeds ``distance_limit`` (0.45). The first flags too
    much gain or amplitude spikes (the model never saw such clipped texture), the second too little
    gain or a differently shaped amplitude distribution. The measurements behind both bounds are
    in the comment above ``CLIP_LIMIT``.
    """

    def __init__(self, training_histogram=DEFAULT_TRAINING_HISTOGRAM, clip_limit: float = CLIP_LIMIT,
                 distance_limit: float = DISTANCE_LIMIT):
        self.training = coarse(training_histogram)
        if self.training.sum() == 0:
            raise ValueError("the training histogram is empty")
        self.clip_limit, self.distance_limit = float(clip_limit), float(distance_limit)
        self.counts = np.zeros(256, dtype=np.int64)
        self.lines: dict[int, dict] = {}

    def add_line(self, grey_line: np.ndarray, live: np.ndarray | None = None,
                 line_number: int | None = None) -> tuple[float, float]:
        """Count a uint8 line (traces, samples) over its live traces or samples (bool (traces,) or
        (traces, samples), None: all) and return its shares of live samples at grey level 0 and at 255
        (0.0 if none is live). They are kept for ``line_number`` (default: the number of lines added
        before, from 0)."""
        grey = np.asarray(grey_line)
        if grey.ndim != 2:
            raise ValueError(f"expected a grey line (traces, samples), got shape {grey.shape}")
        if live is not None:
            live = np.asarray(live, dtype=bool)
            if live.shape not in (grey.shape[:1], grey.shape):
                raise ValueError(f"live mask of shape {live.shape} for a line of shape {grey.shape}")
            grey = grey[live]
        counts = grey_histogram(grey)
        self.counts += counts
        n = counts.sum()
        low, high = (float(counts[0] / n), float(counts[255] / n)) if n else (0.0, 0.0)
        number = len(self.lines) if line_number is None else int(line_number)
        self.lines.setdefault(number, {}).update(clipped_low=low, clipped_high=high)
        return low, high

    def record(self, line_number: int, mean_probability: float, mean_uncertainty: float | None = None) -> None:
        """Keep a line's mean salt probability and mean uncertainty (None: no ensemble spread)."""
        self.lines.setdefault(int(line_number), {}).update(
            mean_probability=_number(mean_probability), mean_uncertainty=_number(mean_uncertainty))

    def summary(self) -> dict:
        """JSON-serialisable figures: both histograms (BINS shares of BIN_WIDTH grey levels), the
        input's shares at 0 and 255, their distance, per line figures (columns in line order) and
        ``warning`` (one line or None)."""
        n = int(self.counts.sum())
        low, high = (float(self.counts[0] / n), float(self.counts[255] / n)) if n else (0.0, 0.0)
        distance = histogram_distance(self.counts, self.training) if n else None
        numbers = sorted(self.lines)
        columns = ("clipped_low", "clipped_high", "mean_probability", "mean_uncertainty")
        per_line = {"line": numbers}
        per_line.update({c: [self.lines[k].get(c) for k in numbers] for c in columns})
        return {"bins": BINS, "bin_width": BIN_WIDTH, "samples": n,
                "input_histogram": [float(v) for v in coarse(self.counts)],
                "training_histogram": [float(v) for v in self.training],
                "clipped_low": low, "clipped_high": high, "distance": distance,
                "clip_limit": self.clip_limit, "distance_limit": self.distance_limit,
                "lines": per_line, "warning": self._warning(low, high, distance)}

    def _warning(self, low: float, high: float, distance: float | None) -> str | None:
        reasons = []
        if max(low, high) > self.clip_limit:
            reasons.append(f"{100 * low:.1f}% of live samples clipped at grey level 0 and {100 * high:.1f}% at 255 "
                           f"(limit {100 * self.clip_limit:.0f}% at either end)")
        if distance is not None and distance > self.distance_limit:
            reasons.append(f"grey-level histogram {distance:.2f} from the training tiles' "
                           f"(total variation, limit {self.distance_limit:.2f})")
        if not reasons:
            return None
        if max(low, high) > self.clip_limit:
            hint = "the amplitude gain looks too high, or the input has spikes"
        elif _spread(self.counts) < _spread(self.training):
            hint = "the amplitude gain looks too low"
        else:
            hint = "its amplitudes are distributed unlike the training tiles'"
        return f"input unlike the training tiles: {'; '.join(reasons)}; {hint}; treat the results with caution"


def _spread(histogram) -> float:
    """Standard deviation of grey levels of a histogram, from its BINS bin centres."""
    shares = coarse(histogram)
    centres = (np.arange(BINS) + 0.5) * BIN_WIDTH
    mean = (shares * centres).sum()
    return float(np.sqrt((shares * (centres - mean) ** 2).sum()))


def _number(value) -> float | None:
    """A float for JSON, None for None or NaN (JSON has no NaN)."""
    return None if value is None or not np.isfinite(value) else float(value)


# --- inline versus crossline --------------------------------------------------------------------


class Disagreement:
    """Mean |inline-pass - crossline-pass probability| per inline, gathered crossline by crossline.

    The crossline pass runs after the inline pass has filled the probability volume; for each
    crossline, ``add`` takes both passes' probabilities (lines, samples) of that crossline before
    they are combined, and adds each inline's summed difference. Memory: two numbers per inline.
    """

    def __init__(self, n_lines: int):
        self.sums = np.zeros(n_lines, dtype=np.float64)
        self.counts = np.zeros(n_lines, dtype=np.int64)

    def add(self, inline_probs: np.ndarray, crossline_probs: np.ndarray, live: np.ndarray | None = None) -> None:
        """One crossline: both (lines, samples); ``live`` bool (lines,) marks where it has traces. NaN
        samples (no data: a mute) are left out."""
        a = np.asarray(inline_probs, dtype=np.float32)
        b = np.asarray(crossline_probs, dtype=np.float32)
        if a.shape != b.shape or a.ndim != 2 or a.shape[0] != len(self.sums):
            raise ValueError(f"expected two (lines, samples) arrays with {len(self.sums)} lines, "
                             f"got {a.shape} and {b.shape}")
        diff = np.abs(a - b)
        valid = np.isfinite(diff)
        live = np.ones(len(self.sums), bool) if live is None else np.asarray(live, dtype=bool)
        self.sums[live] += np.where(valid, diff, 0.0).sum(axis=1, dtype=np.float64)[live]
        self.counts[live] += valid.sum(axis=1)[live]

    def per_line(self) -> np.ndarray:
        """Mean absolute difference per inline (float64 (lines,)); NaN where no live trace was added."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)


def label_next(per_line: dict, disagreement, labelled) -> list[dict]:
    """The lines nobody labelled, most uncertain first: which line an interpreter should label next.

    ``per_line`` is the domain check's per-line figures (``DomainCheck.summary()["lines"]``),
    ``disagreement`` the inline-versus-crossline disagreement per line (or None), ``labelled`` the
    line numbers already labelled. A line's score is its mean uncertainty (the ensemble's spread),
    plus its disagreement with ``--direction both``: where the folds, the flips or the two directions
    disagree, a label teaches the most (as active-learning studies choose lines)."""
    labelled = {int(n) for n in labelled}
    rows = []
    for i, number in enumerate(per_line["line"]):
        spread = per_line["mean_uncertainty"][i]
        if int(number) in labelled or spread is None:
            continue
        split = None if disagreement is None else float(disagreement[i])
        rows.append({"line": int(number), "mean_uncertainty": spread, "disagreement": split,
                     "score": spread + (split if split is not None and np.isfinite(split) else 0.0)})
    rows.sort(key=lambda r: -r["score"])
    return [{"rank": k + 1, **r} for k, r in enumerate(rows)]
