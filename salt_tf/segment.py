"""Segment a whole section or volume (SEG-Y, .npy, grayscale image) with a trained run.

Lines stream through one at a time: read (seisio) -> amplitudes mapped to the training tiles'
grey levels -> overlapping windows through the run's fold ensemble with flip TTA
(``predict.predict_probs``, the function predict.py uses) -> blended probabilities (sections) ->
float16 probability and uint8 mask, memory-mapped on disk. Everything goes into a temporary folder
beside ``out`` that is renamed at the end; on any error nothing is left behind.

Outputs in ``out/``: ``probability.npy`` (float16) and ``mask.npy`` (uint8, probability > the run's
tuned threshold) in the input's layout (the selected inlines only), ``probability.sgy`` for SEG-Y
input (the input's geometry and headers, probabilities as IEEE-float samples), ``figures/*.png``
(sections with the salt outline) and ``segment.json`` (settings, amplitude map, speed).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from salt_tf import figures, sections
from salt_tf.atomic import atomic_path
from salt_tf.sections import DEFAULT_PERCENTILE, DEFAULT_STRIDE, SectionError, TILE
from salt_tf.seisio import open_source, release, write_segy_like

DIRECTIONS = ("inline", "crossline", "both")
SAMPLE_LINES = 16  # lines read to estimate the amplitude spread of a volume
SAMPLE_VALUES = 1 << 16  # values kept per sampled line


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


def parse_lines(text: str | None) -> tuple[int, int] | None:
    """'A:B' (inclusive inline numbers) or 'A' -> (A, B)."""
    if not text:
        return None
    try:
        first, _, last = text.partition(":")
        return int(first), int(last or first)
    except ValueError:
        raise SectionError(f"--lines {text!r}: expected FIRST:LAST inline numbers, e.g. 100:200") from None


def select_lines(src, lines: tuple[int, int] | None) -> np.ndarray:
    numbers = np.asarray(src.line_numbers)
    if lines is None:
        return np.arange(len(numbers))
    first, last = lines
    if src.shape[0] == 1:
        raise SectionError(f"{src.path}: --lines needs a 3-D volume; this input is one 2-D section")
    chosen = np.flatnonzero((numbers >= first) & (numbers <= last))
    if first > last or first < numbers.min() or last > numbers.max() or not len(chosen):
        raise SectionError(f"{src.path}: inline range {first}..{last} outside the volume's inlines "
                           f"{numbers.min()}..{numbers.max()}")
    return chosen


def sample_amplitudes(src, chosen: np.ndarray) -> np.ndarray:
    """Amplitudes from up to SAMPLE_LINES evenly spaced lines, each thinned to SAMPLE_VALUES values."""
    picks = chosen[np.unique(np.linspace(0, len(chosen) - 1, min(SAMPLE_LINES, len(chosen))).round().astype(int))]
    parts = []
    for k in picks:
        line = src.line(k)
        if not np.isfinite(line).all():
            bad = np.argwhere(~np.isfinite(line))[0]
            raise SectionError(f"{src.path}: NaN or infinite amplitudes (line {src.line_numbers[k]}, "
                               f"trace {bad[0]}, sample {bad[1]})")
        flat = line.ravel()
        parts.append(flat[:: max(1, len(flat) // SAMPLE_VALUES)])
    return np.concatenate(parts)


def run(run_dir, input_path, out, direction: str = "inline", lines=None, stride: int = DEFAULT_STRIDE,
        batch_size: int = 32, tta: bool = True, threshold: float | None = None,
        percentile: float = DEFAULT_PERCENTILE, clip: float | None = None, truth=None, n_figures: int = 3,
        model=None, progress: bool = True, log=print) -> dict:
    """Segment ``input_path`` into the new folder ``out``; ``model`` replaces the run's ensemble
    (any callable from uint8 windows (N, 101, 101) to probabilities, e.g. a stand-in in tests)."""
    out = Path(out)
    if out.exists():
        raise SectionError(f"{out}: output exists; refusing to overwrite it (remove it or choose another --out)")
    if direction not in DIRECTIONS:
        raise SectionError(f"--direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    if not 1 <= stride <= TILE:
        raise SectionError(f"--stride {stride}: must be within 1..{TILE} so that windows cover the section")
    with open_source(input_path) as src:
        name = src.path
        chosen = select_lines(src, lines)
        n_traces, n_samples = src.shape[1], src.shape[2]
        if direction != "inline" and src.shape[0] == 1:
            raise SectionError(f"{name}: --direction {direction} needs a 3-D volume; this input is one 2-D section")
        known = None
        if truth is not None:
            try:
                known = np.load(truth, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise SectionError(f"{truth}: cannot read the true mask ({err})") from None
            if known.shape != src.layout:
                raise SectionError(f"{truth}: true mask of shape {known.shape}, expected the input's {src.layout}")
        for size, what in ((n_samples, "samples"), (n_traces, "traces"), (len(chosen), "inlines")):
            if size < sections.MIN_SIDE and (what != "inlines" or direction != "inline"):
                raise SectionError(f"{name}: {size} {what} is too few; padding a section to a {TILE}x{TILE} "
                                   f"tile needs at least {sections.MIN_SIDE}")
        if model is None:
            from salt_tf.predict import load_ensemble, predict_probs
            ensemble = load_ensemble(run_dir)

            def model(tiles):
                return predict_probs(ensemble, tiles, batch_size=batch_size, tta=tta, progress=False)

            what = f"folds {ensemble.folds} at {ensemble.size}x{ensemble.size}{' with flip TTA' if tta else ''}"
        else:
            what = "a given model"
        if run_dir:
            from salt_tf.predict import postprocessing
            cut = postprocessing(Path(run_dir), threshold)[0]
        else:
            cut = 0.5 if threshold is None else float(threshold)
        stats = sections.read_tile_stats(run_dir, log) if run_dir else sections.DEFAULT_TILE_STATS
        amap = sections.amplitude_map(sample_amplitudes(src, chosen), stats, percentile, name=str(name), clip=clip)

        def count(length_a, length_b):
            return len(sections.starts(length_a, stride)[0]) * len(sections.starts(length_b, stride)[0])

        total = 0
        if direction in ("inline", "both"):
            total += len(chosen) * count(n_samples, n_traces)
        if direction in ("crossline", "both"):
            total += n_traces * count(n_samples, len(chosen))
        spread = sections.training_spread(stats, percentile)
        log(f"segmenting {name} ({src.kind}, {len(chosen)} line(s) x {n_traces} traces x {n_samples} samples, "
            f"{direction}) with {what}: {total} windows of {TILE}x{TILE}, stride {stride}; amplitudes "
            f"{amap.centre:g} +- {spread / amap.gain:g} ({percentile:g}th percentile) -> grey levels "
            f"{amap.median:.0f} +- {spread:.0f}; threshold {cut:.3f}")

        bar = Progress(total, progress)

        def probabilities(group: list[tuple[np.ndarray, str]]) -> list[np.ndarray]:
            """(traces, samples) amplitudes of a few lines -> their (traces, samples) probabilities."""
            greys = []
            for amplitudes, label in group:
                section = amplitudes.T  # samples vertical, as in the tiles
                sections.check_section(section, f"{name} {label}")
                greys.append(amap(section))
            probs = sections.segment_sections(greys, model, stride)
            bar.add(sum(count(*g.shape) for g in greys))
            return [p.T for p in probs]

        def chunks(n_items: int, length_a: int, length_b: int):
            """Consecutive groups of lines whose windows fill at least one batch: few lines in memory."""
            size = max(1, -(-batch_size // count(length_a, length_b)))
            return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]

        file_shape = (len(chosen),) + src.layout[1:] if len(src.layout) == 3 else src.layout
        started = time.perf_counter()
        with atomic_path(out) as tmp:
            tmp.mkdir()
            prob_file = np.lib.format.open_memmap(tmp / "probability.npy", "w+", np.float16, file_shape)
            mask_file = np.lib.format.open_memmap(tmp / "mask.npy", "w+", np.uint8, file_shape)
            probs, masks = (_cube(f, src.kind) for f in (prob_file, mask_file))
            if direction in ("inline", "both"):
                for group in chunks(len(chosen), n_samples, n_traces):
                    got = probabilities([(src.line(chosen[k]), f"line {src.line_numbers[chosen[k]]}") for k in group])
                    for k, p in zip(group, got):
                        probs[k] = p
                    release(prob_file)
                    src.release()
            if direction in ("crossline", "both"):
                for group in chunks(n_traces, n_samples, len(chosen)):
                    got = probabilities([(src.xline(j, chosen), f"crossline {j}") for j in group])
                    for j, p in zip(group, got):
                        probs[:, j] = p if direction == "crossline" else 0.5 * (probs[:, j].astype(np.float32) + p)
                    release(prob_file)
                    src.release()
            seconds = time.perf_counter() - started
            for k in range(len(chosen)):
                masks[k] = probs[k].astype(np.float32) > cut
                release(mask_file)
                release(prob_file)
            if src.kind.startswith("segy"):
                write_segy_like(src.path, tmp / "probability.sgy", probs,
                                lines=chosen if src.kind == "segy-3d" else None, mapped=prob_file)
            picks = np.unique(np.linspace(0, len(chosen) - 1, min(n_figures, len(chosen))).round().astype(int))
            true_cube = _cube(known, src.kind) if known is not None else None
            for k in picks if n_figures > 0 else []:
                number = src.line_numbers[chosen[k]]
                label = f"inline_{number}" if src.shape[0] > 1 else "section"
                truth_k = None if true_cube is None else np.asarray(true_cube[chosen[k]]).T
                figures.section_figure(tmp / "figures" / f"{label}.png", amap(src.line(chosen[k]).T),
                                       np.asarray(masks[k]).T, truth_k,
                                       title=f"{Path(name).name} {label.replace('_', ' ')}: salt probability > {cut:.2f}")
            summary = {"input": str(name), "kind": src.kind, "direction": direction, "stride": stride,
                       "lines": [int(src.line_numbers[k]) for k in chosen] if src.shape[0] > 1 else None,
                       "threshold": cut, "amplitude_map": {"centre": amap.centre, "gain": amap.gain,
                                                           "grey_median": amap.median, "percentile": percentile},
                       "tile_stats": stats.get("source"), "windows": total, "seconds": seconds,
                       "windows_per_second": total / max(seconds, 1e-9)}
            (tmp / "segment.json").write_text(json.dumps(summary, indent=1))
            del prob_file, mask_file, probs, masks
    log(f"wrote {out}: {total} windows in {seconds:.1f} s ({summary['windows_per_second']:.1f} windows/s)")
    return summary


def _cube(array, kind: str):
    """A (lines, traces, samples) view of an output/truth array in the input's layout."""
    if kind == "image":
        return array.T[None]
    if array.ndim == 2:
        return array[None]
    return array
