"""Segment a whole section or volume (SEG-Y, .npy, grayscale image) with a trained run.

Four steps, one function each: open and check the input (``volumes.open_input``); map its amplitudes onto
the training tiles' grey levels (``map_amplitudes``); segment its lines into salt probability and
uncertainty (``segment_lines``: overlapping windows through the run's fold ensemble with flip TTA,
each member blended on its own); and write what interpreters take away (``deliverables.write_outputs``). Lines
stream through one at a time into memory-mapped files of a temporary folder beside ``out``, which
is renamed at the end: on any error nothing is left behind.

Outputs in ``out/``, in the input's layout (the selected inlines only):
- ``probability.npy`` (float16): the members' mean salt probability.
- ``uncertainty.npy`` (float16): the members' standard deviation (folds x flips; with
  ``--direction both`` the members of both passes pooled).
- ``mask.npy`` (uint8): probability above the run's boundary threshold (``_threshold``), without each
  line's salt patches smaller than the run's minimum salt area (``_min_area``): predict.py's tile rule
  for a section, which has no tiles.
- ``bodies.npy`` (int32) and ``bodies.csv``: salt bodies, connected in 3-D (2-D for a line), of at
  least ``--min-body`` voxels, numbered from the largest; 0 elsewhere.
- ``salt_surfaces.csv``: top and base of salt and the number of salt intervals of every trace with salt
  (with ``snap_top``, the top moved onto the top-salt reflection: ``interpret.snap_top``).
- ``probability.sgy`` and ``uncertainty.sgy`` for SEG-Y input: the input's traces and headers.
- ``figures/*.png`` and ``segment.json`` (settings, geometry, amplitude map, domain check, speed).
Traces a SEG-Y lacks (dead corners, ragged edges), traces of zeros and each trace's mute (its samples
before the first and after the last nonzero one: ``sections.no_data``) are no data: NaN in
``probability.npy`` and ``uncertainty.npy``, 0 in the SEG-Y outputs, ``mask.npy`` and ``bodies.npy``,
left out of the statistics and tables.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from salt_tf.common.atomic import atomic_path
from salt_tf.common.errors import SectionError
from salt_tf.run import tile_stats
from salt_tf.run.report import read_report
from salt_tf.seismic import interpret, qc, sections
from salt_tf.seismic.deliverables import GENTLE_DIP, write_outputs
from salt_tf.seismic.sections import DEFAULT_PERCENTILE, DEFAULT_STRIDE, TILE
from salt_tf.seismic.seisio import Source
from salt_tf.seismic.volumes import Input, Volumes, open_input
from salt_tf.tiles.framing import stretch

DIRECTIONS = ("inline", "crossline", "both")
SAMPLE_LINES = 16  # lines read to estimate the amplitude spread of a volume
SAMPLE_VALUES = 1 << 16  # values kept per sampled line
DEFAULT_MIN_BODY = 1000  # voxels; smaller connected salt is left out of bodies.npy


class Progress:
    """One line on stderr: windows done, windows/s, time left."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = total, 0, enabled
        self.started = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        if self.enabled:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            end = "\n" if self.done >= self.total else ""
            print(f"\r{self.done}/{self.total} windows  {rate:.1f} windows/s  {left:.0f} s left ",
                  end=end, file=sys.stderr, flush=True)


# --- step 1: open and check the input -----------------------------------------------------------

def parse_lines(text: str | None) -> tuple[int, int] | None:
    """'A:B' (inclusive inline numbers) or 'A' -> (A, B)."""
    if not text:
        return None
    try:
        first, _, last = text.partition(":")
        return int(first), int(last or first)
    except ValueError:
        raise SectionError(f"--lines {text!r}: expected FIRST:LAST inline numbers, e.g. 100:200") from None


def check_options(out: Path, direction: str, stride: int, threshold, n_figures: int, min_body: int,
                  batch_size: int, snap_top: int = 0, snap_polarity: str = "peak", windows: str | None = None,
                  min_area: int | None = None) -> None:
    """Every setting checked before any file is opened or written."""
    if out.exists():
        raise SectionError(f"{out}: output exists; refusing to overwrite it (remove it or choose another --out)")
    parent = next(p for p in out.absolute().parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise SectionError(f"{out}: cannot create the output folder: {parent} is not a writable folder")
    if direction not in DIRECTIONS:
        raise SectionError(f"--direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    sections.check_stride(stride)
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise SectionError(f"--threshold {threshold}: must be a probability in [0, 1) (a voxel is salt above it)")
    if windows is not None and windows not in sections.WINDOW_NORMS:
        raise SectionError(f"--window-norm {windows!r}: expected one of {', '.join(sections.WINDOW_NORMS)}")
    if snap_polarity not in interpret.POLARITIES:
        raise SectionError(f"--snap-polarity {snap_polarity!r}: expected one of {', '.join(interpret.POLARITIES)}")
    for value, flag, least in ((n_figures, "--figures", 0), (min_body, "--min-body", 1),
                               (batch_size, "--batch-size", 1), (snap_top, "--snap-top", 0),
                               (0 if min_area is None else min_area, "--min-area", 0)):
        if value < least:
            raise SectionError(f"{flag} {value}: must be at least {least}")


def ensemble_model(run_dir, batch_size: int, tta: bool, uncertainty: bool):
    """The run's fold ensemble as a window model: its members' probabilities (for the
    uncertainty), or only their mean (``predict_probs``, the function predict.py uses)."""
    from salt_tf.inference.predict import load_ensemble, predict_members, predict_probs

    ensemble = load_ensemble(run_dir)

    def model(tiles):
        if uncertainty:
            return predict_members(ensemble, tiles, batch_size=batch_size, tta=tta)
        return predict_probs(ensemble, tiles, batch_size=batch_size, tta=tta, progress=False)

    c = ensemble.context  # a run fine-tuned with context reads windows of 101 + 2 x its margin at its own size
    read = f"{c['size']}x{c['size']} (windows of {TILE + 2 * c['margin']} px)" if c else f"{ensemble.size}x{ensemble.size}"
    return model, f"folds {ensemble.folds} at {read}{' with flip TTA' if tta else ''}"


def context(run_dir) -> dict | None:
    """The run's ``context`` (``inference.predict.context_of``): it reads each window with that many
    pixels of the section around it; None for a run that reads windows alone, or without a run."""
    if not run_dir:
        return None
    from salt_tf.inference.predict import context_of

    return context_of(Path(run_dir))


# --- step 2: amplitudes -> grey levels ----------------------------------------------------------

def sample_amplitudes(inp: Input, mutes: bool = True) -> np.ndarray:
    """Amplitudes with data (``sections.no_data``) of up to SAMPLE_LINES evenly spaced lines, each thinned
    to SAMPLE_VALUES values."""
    src, chosen = inp.src, inp.chosen
    picks = chosen[np.unique(np.linspace(0, len(chosen) - 1, min(SAMPLE_LINES, len(chosen))).round().astype(int))]
    parts = []
    for k in picks:
        line, live = src.line(k), src.live(k)
        sections.check_finite(np.where(live[:, None], line, 0.0), f"{inp.name} {inp.label(k)}", ("trace", "sample"))
        flat = line[~sections.no_data(line, live, mutes)]
        parts.append(flat[:: max(1, len(flat) // SAMPLE_VALUES)])
    return np.concatenate(parts)


def map_amplitudes(inp: Input, stats: dict, percentile: float, clip=None, centre=None,
                   windows: str = "global") -> sections.AmplitudeMap:
    """The input's amplitude map; a grey image's zeros are black, not a mute (``AmplitudeMap.mutes``)."""
    mutes = inp.src.kind != "image"
    amap = sections.amplitude_map(sample_amplitudes(inp, mutes), stats, percentile, name=inp.name, clip=clip,
                                  centre=centre, windows=windows)
    return replace(amap, mutes=mutes)


def window_norm(stats: dict, chosen: str | None) -> tuple[str, str]:
    """How windows are made (``sections.WINDOW_NORMS``) and why: as chosen, else as the run's training
    tiles were framed (tile_stats.json; runs recorded before it: one global map, as then)."""
    if chosen is not None:
        return chosen, "--window-norm"
    if "window_norm" in stats:
        return stats["window_norm"], f"the run's tiles: {100 * stats['stretched_share']:.0f}% span 0..255"
    return "global", "the run records no framing"


def windows_map(inp: Input, run_dir, stats: dict, windows: str | None, percentile: float, clip, centre,
                scales: tuple[float, ...]) -> tuple[sections.AmplitudeMap, str]:
    """The input's amplitude map with how its windows are made (``window_norm``, and why), at ``scales``,
    each with the run's ``context`` margin around it (0 for a run that reads windows alone)."""
    norm, norm_source = window_norm(stats, windows)
    margin = (context(run_dir) or {}).get("margin", 0)
    return replace(map_amplitudes(inp, stats, percentile, clip, centre, norm), scales=scales, context=margin), norm_source


# --- step 3: lines -> probability and uncertainty -----------------------------------------------

def count_windows(inp: Input, direction: str, stride: int, scales: tuple[float, ...] = (1.0,)) -> int:
    n_lines, (n_traces, n_samples) = len(inp.chosen), inp.src.shape[1:]
    total = n_lines * sections.count_windows(n_samples, n_traces, stride, scales) if direction != "crossline" else 0
    return total + (n_traces * sections.count_windows(n_samples, n_lines, stride, scales) if direction != "inline" else 0)


def window_probabilities(group, amap, model, stride: int, bar: Progress) -> list[tuple[np.ndarray, np.ndarray]]:
    """(amplitudes (traces, samples), live (traces,), label) of a few lines -> their probability and
    uncertainty (traces, samples), NaN where there is no data (``sections.no_data``: absent traces, mutes).
    For the windows, mutes are filled with the trace's data mirrored; traces without data with the
    neutral grey for "global" windows, with the nearest trace with data for windows stretched on their own."""
    greys, empties = [], []
    for amplitudes, live, label in group:
        sections.check_finite(amap.filled(amplitudes, live), label, ("trace", "sample"))
        empty = amap.no_data(amplitudes, live)
        if amap.windows == "global":  # samples vertical, as in the tiles
            greys.append(amap(sections.mirror_into_mutes(amap.filled(amplitudes, ~empty.all(axis=1)), empty).T))
        else:
            greys.append(sections.filled_for_windows(amplitudes, empty).T)
        empties.append(empty)
    results = sections.segment_sections(greys, model, stride, None if amap.windows == "global" else stretch,
                                        amap.scales, amap.context)
    bar.add(sum(sections.count_windows(*g.shape, stride, amap.scales) for g in greys))
    out = []
    for (prob, spread), empty in zip(results, empties):
        prob, spread = prob.T, spread.T
        prob[empty], spread[empty] = np.nan, np.nan
        out.append((prob, spread))
    return out


def line_groups(n_items: int, windows_each: int, batch_size: int):
    """Consecutive groups of lines whose windows fill at least one batch: few lines in memory."""
    size = max(1, -(-batch_size // windows_each))
    return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]


def segment_lines(inp: Input, model, amap, vol: Volumes, direction: str, stride: int, batch_size: int,
                  bar: Progress) -> np.ndarray | None:
    """Fill ``vol``'s probability and uncertainty; with ``both``, return the inline-versus-crossline
    disagreement per line (mean |p_inline - p_crossline| over its live voxels)."""
    src, chosen, name = inp.src, inp.chosen, inp.name
    n_traces, n_samples = src.shape[1:]
    prob, spread = vol["probability"], vol["uncertainty"]
    if direction in ("inline", "both"):
        for group in line_groups(len(chosen), sections.count_windows(n_samples, n_traces, stride, amap.scales),
                                 batch_size):
            got = window_probabilities([(src.line(chosen[k]), src.live(chosen[k]), f"{name} {inp.label(chosen[k])}")
                                  for k in group], amap, model, stride, bar)
            for k, (p, u) in zip(group, got):
                prob[k], spread[k] = p, u
            vol.release()
            src.release()
    if direction == "inline":
        return None
    disagreement = qc.Disagreement(len(chosen)) if direction == "both" else None
    for group in line_groups(n_traces, sections.count_windows(n_samples, len(chosen), stride, amap.scales), batch_size):
        got = window_probabilities([(src.xline(j, chosen), src.xlive(j, chosen), f"{name} crossline {src.trace_numbers[j]}")
                              for j in group], amap, model, stride, bar)
        for j, (p, u) in zip(group, got):
            merge_crossline(vol, j, p, u, src.xlive(j, chosen), disagreement)
        vol.release()
        src.release()
    return None if disagreement is None else disagreement.per_line()


def merge_crossline(vol: Volumes, j: int, p: np.ndarray, u: np.ndarray, live: np.ndarray, disagreement) -> None:
    """Store the crossline pass's probability and uncertainty (float32 (lines, samples)) of crossline
    j; with ``disagreement`` (direction both), pooled with the inline pass already stored there."""
    prob, spread = vol["probability"], vol["uncertainty"]
    if disagreement is not None:
        p_in, u_in = prob[:, j].astype(np.float32), spread[:, j].astype(np.float32)
        p = p.astype(prob.dtype).astype(np.float32)  # rounded as the inline pass was stored
        disagreement.add(p_in, p, live=live)
        # Both passes' members pooled: the mean of the two variances plus the variance of
        # the two means (written so, it does not cancel where the members agree).
        u = np.sqrt(0.5 * (u_in**2 + u**2) + 0.25 * (p_in - p) ** 2)
        p = 0.5 * (p_in + p)
    prob[:, j], spread[:, j] = p, u


# --- the whole run --------------------------------------------------------------------------------

def run(run_dir, input_path, out, direction: str = "inline", lines=None, stride: int = DEFAULT_STRIDE,
        batch_size: int = 32, tta: bool = True, threshold: float | None = None,
        percentile: float = DEFAULT_PERCENTILE, clip: float | None = None, centre: float | None = None,
        truth=None, n_figures: int = 3, min_body: int = DEFAULT_MIN_BODY, min_area: int | None = None,
        iline_byte: int | None = None, xline_byte: int | None = None, uncertainty: bool = True, snap_top: int = 0,
        snap_polarity: str = "peak",
        windows: str | None = None, scales=(1.0,), model=None, progress: bool = True, log=print, warn=None,
        cluster=None) -> dict:
    """Segment ``input_path`` into the new folder ``out``; ``model`` replaces the run's ensemble
    (any callable from uint8 windows (N, 101, 101) to probabilities (N, 101, 101) or its members'
    (M, N, 101, 101), e.g. a stand-in in tests). ``cluster`` (a ``salt_tf.seismic.distributed.Cluster``)
    segments the lines on a Dask cluster instead of in this process. ``snap_top`` > 0 moves each
    trace's top of salt onto the strongest ``snap_polarity`` within that many samples of the
    mask's (``interpret.snap_top``). ``windows`` (``sections.WINDOW_NORMS``; None: as the run's tiles
    were framed, ``window_norm``) says how the model's windows are made; ``scales``, at which
    resamplings of each section they are cut (``sections.segment_sections``); ``min_area``: ``_min_area``."""
    out, warn = Path(out), warn or (lambda line: print(line, file=sys.stderr))
    check_options(out, direction, stride, threshold, n_figures, min_body, batch_size, snap_top, snap_polarity, windows, min_area)
    scales = sections.check_scales(scales)
    if cluster is not None:
        cluster.check(out, run_dir, model)
    inp = open_input(input_path, direction, lines, truth, iline_byte, xline_byte)
    with inp.src as src:
        if cluster is not None:  # the workers load the ensemble, once each
            what = cluster.describe(run_dir, model, tta)
        elif model is None:
            model, what = ensemble_model(run_dir, batch_size, tta, uncertainty)
        else:
            what = "a given model"
        (cut, cut_source), (min_area, area_source) = _threshold(run_dir, threshold), _min_area(run_dir, min_area)
        stats = tile_stats.read_tile_stats(run_dir, log) if run_dir else tile_stats.DEFAULT_TILE_STATS
        amap, norm_source = windows_map(inp, run_dir, stats, windows, percentile, clip, centre, scales)
        total = count_windows(inp, direction, stride, scales)
        spread = sections.training_spread(stats, percentile)
        geometry = _geometry(src)
        log(f"segmenting {inp.name} ({geometry['description']}, {direction}) with {what}: {total} windows of "
            f"{TILE}x{TILE}" + (f" with {amap.context} px of context around each" if amap.context else "")
            + f", stride {stride}; amplitudes {amap.centre:g} +- {spread / amap.gain:g} "
            f"({percentile:g}th percentile) -> grey levels {amap.median:.0f} +- {spread:.0f}; windows: "
            + ("that map" if amap.windows == "global" else "each stretched to 0..255 on its own")
            + f" ({norm_source}); threshold {cut:.3f} ({cut_source}), salt patches under {min_area} px out ({area_source})"
            + ("" if scales == (1.0,) else f"; the section resampled by {', '.join(f'{x:g}' for x in scales)}"))
        with atomic_path(out) as tmp:
            tmp.mkdir()
            vol = Volumes(tmp, inp)
            started = time.perf_counter()
            if cluster is None:
                disagreement = segment_lines(inp, model, amap, vol, direction, stride, batch_size, Progress(total, progress))
            else:
                disagreement = cluster.segment_lines(inp, run_dir, model, amap, vol, direction, stride, batch_size,
                                                     tta, uncertainty, progress, log)
            seconds = time.perf_counter() - started
            made = write_outputs(tmp, inp, vol, amap, cut, stats, min_body, n_figures, disagreement,
                                 (snap_top, snap_polarity), min_area)
            summary = _summary(inp, src, geometry, direction, stride, cut, amap, percentile, stats, total, seconds,
                               uncertainty, disagreement, made, cluster)
            summary.update(threshold_source=cut_source, min_area=min_area, min_area_source=area_source)
            summary["snap_top"] = {"samples": snap_top, "polarity": snap_polarity if snap_top else None}
            summary["label_next"] = _label_next(run_dir, inp, summary, tmp)
            (tmp / "segment.json").write_text(json.dumps(summary, indent=1))
            del vol
    if cluster is not None:
        cluster.finish(log)  # the outputs are in place: the store is no longer needed
    _tell(summary, made, truth, out, min_body, log, warn)
    return summary


def _label_next(run_dir, inp: Input, summary: dict, tmp: Path) -> dict | None:
    """On a run trained on a survey (``train.py --survey``): label_next.csv, its unlabelled lines
    ranked by the ensemble's uncertainty (``qc.label_next``); None for a run trained on tiles."""
    config = Path(run_dir or "") / "config.json"
    survey = json.loads(config.read_text()).get("survey") if run_dir and config.is_file() else None
    if not survey:
        return None
    record = Path(survey) / "survey.json"  # which lines were labelled (gone if the folder moved: none known)
    made = json.loads(record.read_text()) if record.is_file() else {"input": None, "labelled_lines": []}
    same = made["input"] is not None and Path(made["input"]).resolve() == Path(inp.name).resolve()
    labelled = made["labelled_lines"] if same else []
    rows = qc.label_next(summary["domain_check"]["lines"], summary["disagreement_per_line"], labelled)
    with open(tmp / "label_next.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ("rank", "line", "mean_uncertainty", "disagreement", "score"))
        writer.writeheader()
        writer.writerows(rows)
    return {"file": "label_next.csv", "lines": len(rows), "first": rows[0] if rows else None,
            "labelled_lines": labelled, "survey": survey}


def _summary(inp, src, geometry, direction, stride, cut, amap, percentile, stats, total, seconds, uncertainty,
             disagreement, made, cluster) -> dict:
    """segment.json: the settings, the input's geometry and what each output step made."""
    return {"input": inp.name, "kind": src.kind, "geometry": geometry, "direction": direction, "stride": stride,
            "lines": [int(src.line_numbers[k]) for k in inp.chosen] if src.shape[0] > 1 else None,
            "threshold": cut, "amplitude_map": {"centre": amap.centre, "gain": amap.gain,
                                                "grey_median": amap.median, "percentile": percentile,
                                                "windows": amap.windows, "scales": list(amap.scales),
                                                "context": amap.context,
                                                "mutes": amap.mutes},
            "tile_stats": stats.get("source"), "windows": total, "seconds": seconds,
            "windows_per_second": total / max(seconds, 1e-9),
            "uncertainty": ("standard deviation of the ensemble members' probabilities (folds x flips"
                            + (", both directions pooled)" if direction == "both" else ")")) if uncertainty
            else "not computed (--no-uncertainty): uncertainty.npy holds 0",
            "disagreement_per_line": None if disagreement is None else [float(v) for v in disagreement],
            **made, **({"cluster": cluster.report} if cluster is not None else {})}


def _tell(summary: dict, made: dict, truth, out, min_body: int, log, warn) -> None:
    """The domain check's warning, the score against a truth, and the closing line."""
    if summary["domain_check"]["warning"]:
        warn(f"warning: {summary['domain_check']['warning']}")
    if made["against_truth"]:
        t = made["against_truth"]
        log(f"against {truth}: voxel IoU {t['voxel_iou']:.3f}; top of salt within 3 samples on "
            f"{100 * t['top_within_3_samples']:.1f}% of the {t['traces_both_salt']} traces where both have salt "
            f"(mean error {t['top_mean_signed_samples']:+.1f} samples, + deeper; "
            f"{100 * t['top_within_3_samples_gentle']:.1f}% of the {t['traces_gentle_top']} where the true top dips "
            f"at most {GENTLE_DIP} samples per trace; {100 * t['top_within_3_samples_1_trace']:.1f}% within 3 samples "
            "of the true top at the trace or one next to it"
            + (f"; the mask's own top, unsnapped: {100 * t['mask_top_within_3_samples']:.1f}% within 3 samples"
               if summary["snap_top"]["samples"] else "") + ")")
    if summary["label_next"] and summary["label_next"]["first"]:
        first = summary["label_next"]["first"]
        log(f"label next: line {first['line']} (mean uncertainty {first['mean_uncertainty']:.4f}"
            + ("" if first["disagreement"] is None else f", inline/crossline disagreement {first['disagreement']:.4f}")
            + f"); all {summary['label_next']['lines']} unlabelled lines ranked in {out / 'label_next.csv'}")
    log(f"wrote {out}: {summary['windows']} windows in {summary['seconds']:.1f} s "
        f"({summary['windows_per_second']:.1f} windows/s); {made['surfaces']['traces_with_salt']} traces with salt, "
        f"{made['bodies']['count']} bodies of {min_body}+ voxels")


def _threshold(run_dir, threshold: float | None) -> tuple[float, str]:
    """The threshold and where it comes from: the given one; else, for a run that reads with context,
    the one tuned on windows read so (report.json's ``context``); else the run's boundary threshold
    (report.json's ``boundary_threshold``: best pixel IoU over its out-of-fold tiles, which places
    boundaries, and so tops of salt, where they are); else, for a run trained before it was
    recorded, the run's competition threshold; 0.5 without a run."""
    if threshold is not None:
        return float(threshold), "given"
    if read_with := context(run_dir):
        return float(read_with["threshold"]), "report.json context threshold"
    tuned = read_report(run_dir) if run_dir else {}
    for key in ("boundary_threshold", "threshold"):
        if key in tuned:
            return float(tuned[key]), f"report.json {key}"
    return 0.5, "default"


def _min_area(run_dir, min_area: int | None) -> tuple[int, str]:
    """The smallest salt patch a line's mask keeps, in pixels, and where it comes from: the given
    one; else the run's minimum salt area (report.json's ``min_area``, tuned on its out-of-fold tiles
    with its threshold, which predict.py applies tile by tile); 0 without one."""
    if min_area is not None:
        return int(min_area), "given"
    if read_with := context(run_dir):
        return int(read_with["min_area"]), "report.json context min_area"
    tuned = read_report(run_dir) if run_dir else {}
    return (int(tuned["min_area"]), "report.json min_area") if "min_area" in tuned else (0, "default")


def _geometry(src: Source) -> dict:
    n_lines, n_traces, n_samples = src.shape
    described = f"{src.kind}, {n_lines} line(s) x {n_traces} traces x {n_samples} samples"
    info = {"lines": n_lines, "traces": n_traces, "samples": n_samples, "absent_traces": src.absent}
    if src.kind.startswith("segy"):
        info.update(iline_byte=src.geometry.bytes[0], xline_byte=src.geometry.bytes[1])
        described += f", inline/crossline at bytes {src.geometry.bytes[0]}/{src.geometry.bytes[1]}"
        if src.geometry.note:
            info["read_as"] = src.geometry.note
            described += f"; {src.geometry.note}"
    if src.absent:
        described += f", {src.absent} positions without a trace"
    return dict(info, description=described)
