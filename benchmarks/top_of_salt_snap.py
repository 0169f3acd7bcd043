"""Snapping the top of salt onto its reflection (``segment.py --snap-top``): its weights chosen on
validation volumes, then its result on the README's volume, which played no part in the choice.

    python benchmarks/top_of_salt_snap.py --run RUN [--out DIR] [--window 32]
    python benchmarks/top_of_salt_snap.py --real REAL_DIR


Volumes: ``python -m salt_tf.seismic.synthetic sections --seed S`` for S = 1 and 2 (validation)
and 0 (the README's). Each is segmented once by ``segment.py --direction both --truth`` in a fresh
process, unsnapped (its mask and probability kept in ``DIR``). Then, in this process, every line's
top is snapped by ``interpret.snap_top`` as ``segment.py`` does it (the same amplitude centre and
scale, read back from its ``segment.json``) over a grid of windows, penalties and supports, and
scored as ``segment.py --truth`` scores it; the grid's best by the two validation volumes' mean,
and the shipped weights (``interpret.SNAP_PENALTY``, ``SNAP_SUPPORT``), on all three. Last,
``segment.py --snap-top WINDOW`` itself on each volume, as a user runs it. What ``DIR`` already
holds is reused; every line is also appended to ``DIR/results.txt``.

With ``--real``, real tiles instead: ``REAL_DIR`` is what ``benchmarks/real_data.py --out REAL_DIR``
wrote (a run trained on the real pool, and the held-out tiles it never saw). Per held-out tile, the
run's probability (flip TTA) cut at its boundary threshold; per column (a trace), the mask's top
and the snapped one (the tile's own median and 95th percentile of |grey - median| as centre and
scale) against the labelled top, where the label's top lies below the tile's first 4 rows and the
mask has salt; peak and trough polarity.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import _bench
from _bench import say
import numpy as np

from salt_tf.run import tile_stats
from salt_tf.seismic import interpret, sections
from salt_tf.tiles.data import read_image, read_mask
from salt_tf.seismic.synthetic import write_sections

VOLUMES = {"seed 1 (validation)": 1, "seed 2 (validation)": 2, "seed 0 (README, test)": 0}
WINDOWS = (16, 24, 32, 40)
PENALTIES = (0.0, 0.02, 0.03, 0.04, 0.05, 0.06)
SUPPORTS = (0.0, 1.0, 2.0, 3.0, 4.0)


def segmented(out: Path, run: Path, seed: int, snap: int) -> Path:
    """The volume of ``seed`` segmented by segment.py (``--direction both --truth``), snapped within
    ``snap`` samples (0: not)."""
    volume = out / f"sections_{seed}"
    if not volume.exists():
        write_sections(volume, seed=seed)
    seg = out / f"seg_{seed}_snap{snap}"
    if not seg.exists():
        with open(out / f"seg_{seed}_snap{snap}.log", "w") as log:
            subprocess.run([sys.executable, str(_bench.ROOT / "segment.py"), "--run", str(run), "--input",
                            str(volume / "volume.sgy"), "--out", str(seg), "--truth", str(volume / "volume_mask.npy"),
                            "--direction", "both", "--figures", "0", "--snap-top", str(snap)],
                           stdout=log, stderr=subprocess.STDOUT, check=True)
    return seg


class Lines:
    """One segmented volume's lines as segment.py's surfaces step sees them."""

    def __init__(self, run: Path, volume: Path, seg: Path):
        summary = json.loads((seg / "segment.json").read_text())
        amap = summary["amplitude_map"]
        stats = tile_stats.read_tile_stats(run, lambda line: None)
        self.centre, self.scale = amap["centre"], sections.amplitude_scale(stats, amap["gain"])
        self.amplitudes = np.load(volume / "volume.npy")
        self.probability = np.load(seg / "probability.npy").astype(np.float32)
        surfaces = [interpret.trace_surfaces(line) for line in np.load(seg / "mask.npy")]
        self.top, self.base = (np.stack([s[i] for s in surfaces]) for i in (0, 1))
        self.true_top = np.stack([interpret.trace_surfaces(line)[0] for line in np.load(volume / "volume_mask.npy")])
        self.both = (self.top >= 0) & (self.true_top >= 0)

    def share(self, window: int, penalty: float, support: float) -> float:
        """Share of traces (salt in both) whose snapped top is within 3 samples of the true top."""
        top = np.stack([interpret.snap_top(t, a, window, centre=self.centre, scale=self.scale, probability=p, base=b,
                                           penalty=penalty, support=support)
                        for t, a, p, b in zip(self.top, self.amplitudes, self.probability, self.base)])
        return float(np.mean(np.abs(top - self.true_top)[self.both] <= 3))


def real_tiles(real: Path) -> None:
    """The snapped top against the labelled one on the real held-out tiles of ``real_data.py``'s folder."""
    from salt_tf.inference.predict import load_ensemble, predict_probs

    held = real / "data" / "holdout"
    ids = sorted(p.stem for p in (held / "images").glob("*.png"))
    images = np.stack([read_image(held / "images" / f"{i}.png") for i in ids])
    truth = np.stack([read_mask(held / "masks" / f"{i}.png") for i in ids]).astype(bool)
    probs = predict_probs(load_ensemble(real / "run"), images, progress=False)
    cut = json.loads((real / "run" / "report.json").read_text())["boundary_threshold"]
    tiles = []
    for image, true, prob in zip(images, truth, probs):  # traces are columns: transposed to (traces, samples)
        trace = image.T.astype(np.float32)
        centre = float(np.median(trace))
        top, base = interpret.trace_surfaces((prob > cut).T)[:2]
        tiles.append((interpret.trace_surfaces(true.T)[0], top, base, trace, centre,
                      float(np.percentile(np.abs(trace - centre), 95)) + 1e-6, prob.T))

    def errors(window: int, polarity: str) -> np.ndarray:
        return np.concatenate([
            (interpret.snap_top(top, trace, window, polarity, centre=centre, scale=scale, probability=prob, base=base)
             - true_top)[(true_top > 3) & (top >= 0)]
            for true_top, top, base, trace, centre, scale, prob in tiles])

    print(f"{len(ids)} held-out tiles of {real}, boundary threshold {cut:g}")
    print("| top | traces | within 3 samples of the label | mean abs error | median error |")
    print("| --- | --- | --- | --- | --- |")
    for window, polarity in ((0, "peak"), (10, "peak"), (32, "peak"), (10, "trough"), (32, "trough")):
        e = errors(window, polarity)
        what = f"snapped within {window}, {polarity}" if window else "the mask's own"
        print(f"| {what} | {len(e)} | {100 * np.mean(np.abs(e) <= 3):.1f}% | {np.mean(np.abs(e)):.1f} | {np.median(e):+.0f} |")


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--run", type=Path, help="a trained run folder (required without --real)")
    parser.add_argument("--real", type=Path, help="a folder written by benchmarks/real_data.py: its held-out tiles instead")
    parser.add_argument("--out", type=Path, default=Path("top_of_salt_snap"), help="working folder (default: %(default)s)")
    parser.add_argument("--window", type=int, default=32, help="segment.py --snap-top of the last step (default: 32)")
    args = parser.parse_args()
    _bench.header()
    if args.real:
        return real_tiles(args.real)
    if not args.run:
        parser.error("--run is required without --real")
    args.out.mkdir(parents=True, exist_ok=True)
    say(args.out, f"run {args.run}; volumes segmented with --direction both at the run's boundary threshold")
    lines = {name: Lines(args.run, args.out / f"sections_{seed}", segmented(args.out, args.run, seed, 0))
             for name, seed in VOLUMES.items()}
    names = list(VOLUMES)
    say(args.out, "| volume | traces | the mask's own top | shipped weights, window " + str(args.window) + " |")
    say(args.out, "| --- | --- | --- | --- |")
    for name in names:
        v = lines[name]
        say(args.out, f"| {name} | {int(v.both.sum())} | {100 * v.share(0, 0.0, 0.0):.1f}% | "
                      f"{100 * v.share(args.window, interpret.SNAP_PENALTY, interpret.SNAP_SUPPORT):.1f}% |")
    grid = []
    for window, penalty, support in itertools.product(WINDOWS, PENALTIES, SUPPORTS):
        shares = [lines[name].share(window, penalty, support) for name in names]
        grid.append((float(np.mean(shares[:2])), window, penalty, support, shares))
    grid.sort(key=lambda row: -row[0])
    say(args.out, f"grid of {len(grid)}: windows {WINDOWS} x penalties {PENALTIES} x supports {SUPPORTS}; "
                  "the ten best by the validation mean:")
    say(args.out, "| window | penalty | support | " + " | ".join(names) + " | validation mean |")
    say(args.out, "| --- | --- | --- |" + " --- |" * (len(names) + 1))
    for mean, window, penalty, support, shares in grid[:10]:
        say(args.out, f"| {window} | {penalty:g} | {support:g} | " + " | ".join(f"{100 * s:.1f}%" for s in shares)
            + f" | {100 * mean:.1f}% |")
    for name, seed in VOLUMES.items():
        seg = segmented(args.out, args.run, seed, args.window)
        truth = json.loads((seg / "segment.json").read_text())["against_truth"]
        say(args.out, f"segment.py --direction both --snap-top {args.window} on {name}: top within 3 samples on "
                      f"{100 * truth['top_within_3_samples']:.1f}% of {truth['traces_both_salt']} traces (the mask's own "
                      f"top {100 * truth['mask_top_within_3_samples']:.1f}%; mean error "
                      f"{truth['top_mean_signed_samples']:+.1f} samples; within a trace "
                      f"{100 * truth['top_within_3_samples_1_trace']:.1f}%); voxel IoU {truth['voxel_iou']:.3f}")


if __name__ == "__main__":
    main()
