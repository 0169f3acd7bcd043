"""Step 4 of segment.py: what interpreters take away, streamed line by line from the memory-mapped
probability and uncertainty: the mask, top and base of salt per trace (``salt_surfaces.csv``), salt
bodies (``bodies.npy``, ``bodies.csv``), the domain check, the agreement with a true mask, the SEG-Y
copies with the input's headers, and the figures."""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from salt_tf.common import figures
from salt_tf.seismic import interpret, qc, sections
from salt_tf.seismic.seiswrite import write_segy_like
from salt_tf.seismic.volumes import Input, Volumes

SURFACE_COLUMNS = ("inline", "crossline", "cdp_x", "cdp_y", "top_sample", "base_sample", "top_z", "base_z", "intervals")
# Against a truth, tops are also scored where the true top dips at most this many samples per trace:
# on steeper flanks a boundary one trace aside already misses the top by more than 3 samples.
GENTLE_DIP = 3

BODY_COLUMNS = ("id", "voxels", "inline_min", "inline_max", "crossline_min", "crossline_max", "sample_min", "sample_max")


class LineOutputs:
    """The mask, surfaces, provisional bodies and domain statistics, one line at a time."""

    def __init__(self, inp: Input, vol: Volumes, amap, cut: float, stats: dict, surfaces_csv, snap=(0, "peak"),
                 min_area: int = 0):
        self.inp, self.vol, self.amap, self.cut, self.min_area = inp, vol, amap, cut, min_area
        self.snap = snap  # (samples, polarity): the top moved onto the strongest reflection that near; 0: the mask's
        self.amplitude_scale = sections.amplitude_scale(stats, amap.gain)  # snap_top's unit of strength
        self.bodies = interpret.BodyLabeller()
        self.domain = qc.DomainCheck(stats.get("histogram", qc.DEFAULT_TRAINING_HISTOGRAM))
        self.top = np.full((len(inp.chosen), inp.src.shape[1]), np.nan, np.float32)
        self.writer = csv.writer(surfaces_csv)
        self.writer.writerow(SURFACE_COLUMNS)
        self.traces_with_salt = self.several_intervals = 0
        counts = ("intersection", "union", "traces_both_salt", "top_within_3", "top_abs_sum", "top_signed_sum",
                  "traces_gentle", "top_within_3_gentle", "top_within_3_near", "mask_top_within_3",
                  "traces_salt_only_predicted", "traces_salt_only_true")
        self.truth = dict.fromkeys(counts, 0) if inp.truth is not None else None
        self.true_tops: dict[int, np.ndarray] = {}
        self.seconds = {"mask_and_domain": 0.0, "surfaces": 0.0, "bodies": 0.0}

    def add(self, i: int) -> None:
        src, k = self.inp.src, self.inp.chosen[i]
        clock = time.perf_counter()
        prob, live, amplitudes = self.vol["probability"][i].astype(np.float32), src.live(k), src.line(k)
        data = ~self.amap.no_data(amplitudes, live)
        self.seconds["mask_and_domain"] += time.perf_counter() - clock
        clock = time.perf_counter()
        # the line's salt patches labelled once: those under the minimum area out of the mask and the bodies
        self.vol["bodies"][i] = labels = self.bodies.add((prob > self.cut) & data, self.min_area)
        self.seconds["bodies"] += time.perf_counter() - clock
        clock = time.perf_counter()
        mask = labels > 0
        self.vol["mask"][i] = mask
        grey = self.amap(self.amap.filled(amplitudes, live))
        self.domain.add_line(grey, data, line_number=src.line_numbers[k])
        self.domain.record(src.line_numbers[k], float(np.nanmean(prob)) if data.any() else float("nan"),
                           float(np.nanmean(self.vol["uncertainty"][i].astype(np.float32))) if data.any() else float("nan"))
        self.seconds["mask_and_domain"] += time.perf_counter() - clock
        clock = time.perf_counter()
        self._surfaces(i, k, mask, amplitudes, prob)
        self.seconds["surfaces"] += time.perf_counter() - clock

    def _surfaces(self, i: int, k: int, mask: np.ndarray, amplitudes: np.ndarray, prob: np.ndarray) -> None:
        src = self.inp.src
        mask_top, base, intervals = interpret.trace_surfaces(mask)
        top = mask_top
        if self.snap[0]:
            top = interpret.snap_top(mask_top, amplitudes, *self.snap, centre=self.amap.centre,
                                     scale=self.amplitude_scale, probability=prob, base=base)
        if self.truth is not None:
            self._against_truth(k, mask, top, mask_top)
        salty = np.flatnonzero(intervals > 0)
        self.top[i, salty] = src.samples[top[salty]]
        self.traces_with_salt += len(salty)
        self.several_intervals += int(np.count_nonzero(intervals > 1))
        x, y = src.coordinates(k)
        inline = src.line_numbers[k] if src.kind != "segy-2d" else src.geometry.line_numbers[0]
        for j in salty:
            self.writer.writerow((int(inline), int(src.trace_numbers[j]), _number(x[j]), _number(y[j]), int(top[j]),
                                  int(base[j]), _number(src.samples[top[j]]), _number(src.samples[base[j]]), int(intervals[j])))

    def _true(self, k: int) -> np.ndarray:
        """Line ``k``'s true mask, live traces only."""
        return np.asarray(self.inp.truth[k]).astype(bool) & self.inp.src.live(k)[:, None]

    def _true_top(self, k: int) -> np.ndarray:
        """Line ``k``'s true top of salt (-1: none), kept for the lines on either side."""
        if k not in self.true_tops:
            self.true_tops[k] = interpret.trace_surfaces(self._true(k))[0]
        for line in [line for line in self.true_tops if abs(line - k) > 2]:
            del self.true_tops[line]
        return self.true_tops[k]

    def _near_true_top(self, k: int, top: np.ndarray) -> np.ndarray:
        """Per trace: whether ``top`` is within 3 samples of the true top at that trace or at a
        trace next to it (on this line or the lines on either side, diagonals included). On a flank
        that steps more than 3 samples a trace, a boundary at most one trace aside passes here and
        fails the strict count."""
        near = np.zeros(top.shape, bool)
        for line in range(max(k - 1, 0), min(k + 2, len(self.inp.truth))):
            padded = np.pad(self._true_top(line), 1, constant_values=-1)  # -1: no salt beyond the ends
            for start in (0, 1, 2):  # the trace before, the trace itself, the trace after
                neighbour = padded[start:start + len(top)]
                near |= (neighbour >= 0) & (np.abs(top - neighbour) <= 3)
        return near

    def _against_truth(self, k: int, mask: np.ndarray, top: np.ndarray, mask_top: np.ndarray) -> None:
        """Voxel IoU and agreement of the delivered top of salt (``top``) with the true mask (live
        traces only); with snapping, also of the mask's own top (``mask_top``)."""
        live = self.inp.src.live(k)
        true = self._true(k)
        true_top = self._true_top(k)
        both = (top >= 0) & (true_top >= 0)
        signed = top[both] - true_top[both]
        error = np.abs(signed)
        gentle = interpret.top_dip(true_top)[both] <= GENTLE_DIP
        t = self.truth
        t["intersection"] += int(np.count_nonzero(mask & true))
        t["union"] += int(np.count_nonzero(mask | true))
        t["traces_both_salt"] += int(both.sum())
        t["top_within_3"] += int(np.count_nonzero(error <= 3))
        t["top_abs_sum"] += int(error.sum())
        t["top_signed_sum"] += int(signed.sum())
        t["traces_gentle"] += int(gentle.sum())
        t["top_within_3_gentle"] += int(np.count_nonzero(error[gentle] <= 3))
        t["top_within_3_near"] += int(np.count_nonzero(self._near_true_top(k, top)[both]))
        t["mask_top_within_3"] += int(np.count_nonzero(np.abs(mask_top[both] - true_top[both]) <= 3))
        t["traces_salt_only_predicted"] += int(np.count_nonzero((top >= 0) & (true_top < 0) & live))
        t["traces_salt_only_true"] += int(np.count_nonzero((top < 0) & (true_top >= 0)))

    def truth_summary(self) -> dict | None:
        t = self.truth
        if t is None:
            return None
        both = max(t["traces_both_salt"], 1)
        return {"voxel_iou": t["intersection"] / max(t["union"], 1), "traces_both_salt": t["traces_both_salt"],
                "top_within_3_samples": t["top_within_3"] / both, "top_mean_abs_samples": t["top_abs_sum"] / both,
                "top_mean_signed_samples": t["top_signed_sum"] / both,
                "traces_gentle_top": t["traces_gentle"],
                "top_within_3_samples_gentle": t["top_within_3_gentle"] / max(t["traces_gentle"], 1),
                "top_within_3_samples_1_trace": t["top_within_3_near"] / both,
                "mask_top_within_3_samples": t["mask_top_within_3"] / both,
                "traces_salt_only_predicted": t["traces_salt_only_predicted"],
                "traces_salt_only_true": t["traces_salt_only_true"]}

    def finish_bodies(self, min_body: int, bodies_csv) -> dict:
        """Number the bodies (the second pass over the provisional labels), write their table and
        return it (``interpret.BodyLabeller.finish``'s columns)."""
        clock = time.perf_counter()
        table = self.bodies.finish(min_body)
        for i in range(len(self.inp.chosen)):
            self.vol["bodies"][i] = self.bodies.relabel(self.vol["bodies"][i])
            self.vol.release()
        lines, traces = self.inp.src.line_numbers[self.inp.chosen], self.inp.src.trace_numbers
        writer = csv.writer(bodies_csv)
        writer.writerow(BODY_COLUMNS)
        for row in zip(*(table[c] for c in interpret.BODY_COLUMNS)):
            body, voxels, line_min, line_max, trace_min, trace_max, sample_min, sample_max = map(int, row)
            writer.writerow((body, voxels, int(lines[line_min]), int(lines[line_max]), int(traces[trace_min]),
                             int(traces[trace_max]), sample_min, sample_max))
        self.seconds["bodies"] += time.perf_counter() - clock
        return table


def _number(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.10g}"


def write_outputs(tmp: Path, inp: Input, vol: Volumes, amap, cut: float, stats: dict, min_body: int,
                  n_figures: int, disagreement, snap=(0, "peak"), min_area: int = 0) -> dict:
    """Mask, surfaces, bodies and domain check (streamed line by line), SEG-Y copies and figures;
    returns their figures for segment.json. ``snap`` (samples, polarity): the top of salt moved
    onto the strongest reflection within that many samples of the mask's (``interpret.snap_top``).
    The mask leaves out each line's salt patches of fewer than ``min_area`` pixels."""
    with open(tmp / "salt_surfaces.csv", "w", newline="") as surfaces_csv:
        lines = LineOutputs(inp, vol, amap, cut, stats, surfaces_csv, snap, min_area)
        for i in range(len(inp.chosen)):
            lines.add(i)
            vol.release()
            inp.src.release()
    with open(tmp / "bodies.csv", "w", newline="") as bodies_csv:
        table = lines.finish_bodies(min_body, bodies_csv)
    clock = time.perf_counter()
    if inp.src.kind.startswith("segy"):
        chosen = inp.chosen if inp.src.kind == "segy-3d" else None
        for name in ("probability", "uncertainty"):
            write_segy_like(inp.src, tmp / f"{name}.sgy", vol[name], lines=chosen, mapped=vol.files[name])
    segy_seconds = time.perf_counter() - clock
    domain = lines.domain.summary()
    _figures(tmp / "figures", inp, vol, amap, cut, n_figures, lines.top, domain, disagreement)
    return {"domain_check": domain,
            "surfaces": {"traces_with_salt": lines.traces_with_salt,
                         "traces_with_several_intervals": lines.several_intervals,
                         "top": (f"the strongest {snap[1]} within {snap[0]} samples of the mask's first salt sample"
                                 if snap[0] else "the mask's first salt sample")},
            "against_truth": lines.truth_summary(),
            "bodies": {"count": len(table["id"]), "min_voxels": min_body,
                       "largest_voxels": [int(v) for v in table["voxels"][:20]]},
            "output_seconds": dict(lines.seconds, segy=segy_seconds)}


def _figures(folder: Path, inp: Input, vol: Volumes, amap, cut: float, n_figures: int, top, domain, disagreement) -> None:
    src, chosen = inp.src, inp.chosen
    picks = np.unique(np.linspace(0, len(chosen) - 1, min(n_figures, len(chosen))).round().astype(int)) if n_figures else []
    for i in picks:
        k = chosen[i]
        label = f"inline_{src.line_numbers[k]}" if src.shape[0] > 1 else "section"
        truth = None if inp.truth is None else np.asarray(inp.truth[k]).T
        grey = amap(amap.filled(src.line(k), src.live(k)).T)
        figures.section_figure(folder / f"{label}.png", grey, np.asarray(vol["mask"][i]).T, truth,
                               title=f"{Path(inp.name).name} {label.replace('_', ' ')}: salt probability > {cut:.2f}",
                               uncertainty=np.asarray(vol["uncertainty"][i], np.float32).T)
    numbers = src.line_numbers[chosen]
    figures.top_of_salt_map(folder / "top_of_salt.png", top, numbers, src.trace_numbers, src.z_unit,
                            title=f"{Path(inp.name).name}: top of salt")
    figures.domain_figure(folder / "domain_check.png", domain)
    if disagreement is not None:
        figures.disagreement_figure(folder / "disagreement.png", numbers, disagreement)
