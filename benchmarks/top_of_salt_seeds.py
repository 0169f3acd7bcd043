"""The top of salt on the README's synthetic volume over training seeds and tile fits: how much of
issue 18's target (95% of traces within 3 samples) a run's own draw decides.

    python benchmarks/top_of_salt_seeds.py [--seeds 0 1] [--fits resize pad] [--out DIR] [--five-folds]

Per seed and fit, in fresh processes as a user runs them: one fold of the demo preset trained for
10 + 5 epochs (``train.py --preset demo --folds 5 --fold 0 --size 128 --phase1-epochs 10
--phase2-epochs 5 --phase2-patience 2 --seed S --fit F``, about 15 minutes each on 2 cores), then
``segment.py --truth`` on the volume of ``python -m salt_tf.seismic.synthetic sections``, inline
and ``--direction both``, at the run's boundary threshold. Then, in this process: each run on 200
fresh synthetic tiles and on the volume's own inline windows (the tile path, no blending), and the
runs of one fit averaged (``both``'s probabilities) over thresholds. With ``--five-folds``, the first
seed's resized run is joined by folds 1-4 of the same command (``--fold K`` processes into one run
folder, the README's way: about an hour more) and segmented as the others, then each of its five
folds alone (``--direction both`` at that fold's own boundary threshold, from the report
``salt_tf.run.report`` writes for it as training does). Runs and outputs already
in ``--out`` are reused; every line is also appended to ``DIR/results.txt``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import _bench
from _bench import say
import numpy as np

from salt_tf.seismic import interpret, sections
from salt_tf.tiles import metrics, synthetic

from salt_tf.inference import predict
from salt_tf.tiles.data import load_train
from salt_tf.run.report import write_report
from salt_tf.seismic.synthetic import write_sections

RECIPE = ("--preset", "demo", "--folds", "5", "--size", "128", "--phase1-epochs", "10", "--phase2-epochs", "5",
          "--phase2-patience", "2")
TRAIN = (*RECIPE, "--fold", "0")
THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55)


def run_cli(script: str, *flags, log: Path) -> None:
    with open(log, "w") as f:
        subprocess.run([sys.executable, str(_bench.ROOT / script), *map(str, flags)], stdout=f, stderr=subprocess.STDOUT,
                       check=True)


def top_share(prob: np.ndarray, true_top: np.ndarray, cut: float) -> float:
    """Share of traces (salt in both) whose top at ``cut`` is within 3 samples of ``true_top``, as
    ``segment.py --truth`` counts it (its figures for one run are read from its segment.json)."""
    top = np.stack([interpret.trace_surfaces(line)[0] for line in prob > cut])
    both = (top >= 0) & (true_top >= 0)
    return float(np.mean(np.abs(top - true_top)[both] <= 3))


def sweep(prob: np.ndarray, true_top: np.ndarray) -> str:
    """``top_share`` at each of THRESHOLDS."""
    cells = [f"{t:.2f}: {100 * top_share(prob, true_top, t):.1f}%" for t in THRESHOLDS]
    return "top within 3 samples at " + ", ".join(cells)


def segment(run: Path, volume: Path, seg: Path, direction: str) -> dict:
    """``segment.py --truth`` on the volume (unless ``seg`` holds its output): its ``against_truth``."""
    if not (seg / "segment.json").exists():
        run_cli("segment.py", "--run", run, "--input", volume / "volume.sgy", "--out", seg, "--truth",
                volume / "volume_mask.npy", "--direction", direction, log=seg.with_suffix(".log"))
    return json.loads((seg / "segment.json").read_text())["against_truth"]


def against(truth: dict) -> str:
    share = 100 * truth["top_within_3_samples"]
    return f"voxel IoU {truth['voxel_iou']:.3f}, top within 3 samples {share:.1f}% of {truth['traces_both_salt']}"


def five_folds(out: Path, seed: int, volume: Path, true_top: np.ndarray) -> None:
    """The seed's one-fold resized run joined by folds 1-4, segmented; then each fold alone."""
    run = out / f"run-s{seed}-resize-5folds"
    if not run.exists():
        shutil.copytree(out / f"run-s{seed}-resize", run)  # its fold 0, as trained
    for k in range(1, 5):
        if not (run / f"fold{k}" / "result.json").exists():
            run_cli("train.py", *RECIPE, "--fold", k, "--seed", seed, "--out", run,
                    log=out / f"train-s{seed}-resize-fold{k}.log")
    report = json.loads((run / "report.json").read_text())
    assert report["folds_done"] == [0, 1, 2, 3, 4], report["folds_done"]
    line = [f"seed {seed} resize, five folds: out-of-fold {report['cv_score_tuned']:.3f} (tuned), boundary threshold "
            f"{report['boundary_threshold']:.3f}"]
    for direction in ("inline", "both"):
        seg = out / f"seg-s{seed}-resize-5folds-{direction}"
        line.append(f"{direction}: " + against(segment(run, volume, seg, direction)))
    say(out, "; ".join(line))
    mean = np.load(out / f"seg-s{seed}-resize-5folds-both" / "probability.npy").astype(np.float32)
    say(out, f"seed {seed} resize, five folds (both), " + sweep(mean, true_top))
    train = load_train(json.loads((run / "config.json").read_text())["data"])
    for k in range(5):
        alone = out / f"run-s{seed}-resize-fold{k}-alone"
        if not alone.exists():  # the fold's model with the run's settings and grey levels
            alone.mkdir()
            for name in ("config.json", "tile_stats.json"):
                shutil.copy(run / name, alone / name)
            (alone / f"fold{k}").symlink_to((run / f"fold{k}").absolute())
        if not (alone / "report.json").exists():
            write_report(alone, train)  # the fold's own out-of-fold tiles and boundary threshold
        cut = json.loads((alone / "report.json").read_text())["boundary_threshold"]
        seg = out / f"seg-s{seed}-resize-fold{k}-alone-both"
        truth = segment(alone, volume, seg, "both")
        prob = np.load(seg / "probability.npy").astype(np.float32)
        say(out, f"seed {seed} resize, fold {k} alone: boundary threshold {cut:.3f}; both: {against(truth)}; "
                 + sweep(prob, true_top))


def volume_windows(folder: Path, segment_json: Path) -> tuple[np.ndarray, np.ndarray]:
    """The volume's inline windows as segment.py cut them (its amplitude map), and their true masks."""
    amplitudes, truth = np.load(folder / "volume.npy"), np.load(folder / "volume_mask.npy")
    m = json.loads(segment_json.read_text())["amplitude_map"]
    amap = sections.AmplitudeMap(centre=m["centre"], gain=m["gain"], median=m["grey_median"])
    grey = [sections.windows(amap(line).T)[0] for line in amplitudes]  # rows are samples
    true = [sections.windows(line.T.astype(np.uint8))[0] for line in truth]
    return np.concatenate(grey), np.concatenate(true).astype(bool)


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fits", nargs="+", default=["resize", "pad"], choices=["resize", "pad"])
    parser.add_argument("--out", type=Path, default=Path("runs/top_of_salt_seeds"))
    parser.add_argument("--five-folds", action="store_true", help="also the first seed's resized run as five folds")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    _bench.header()
    volume = args.out / "sections"
    if not (volume / "volume_mask.npy").exists():
        write_sections(volume, seed=0)
    true_top = np.stack([interpret.trace_surfaces(line)[0] for line in np.load(volume / "volume_mask.npy")])
    rng = np.random.default_rng(99)
    fresh = [synthetic.make_tile(rng, True) for _ in range(200)]
    tiles, tile_masks = np.stack([t for t, _ in fresh]), np.stack([m for _, m in fresh]).astype(bool)
    both: dict[str, list] = {fit: [] for fit in args.fits}
    for seed in args.seeds:
        for fit in args.fits:
            name = f"s{seed}-{fit}"
            run = args.out / f"run-{name}"
            if not (run / "report.json").exists():
                run_cli("train.py", *TRAIN, "--seed", seed, "--fit", fit, "--out", run, log=args.out / f"train-{name}.log")
            report = json.loads((run / "report.json").read_text())
            cut = report["boundary_threshold"]
            line = [f"seed {seed} {fit:6s}: out-of-fold {report['cv_score_tuned']:.3f} (tuned), boundary threshold {cut:.3f}"]
            for direction in ("inline", "both"):
                seg = args.out / f"seg-{name}-{direction}"
                line.append(f"{direction}: " + against(segment(run, volume, seg, direction)))
                if direction == "both":
                    both[fit].append(np.load(seg / "probability.npy").astype(np.float32))
            ensemble = predict.load_ensemble(run)
            windows, window_masks = volume_windows(volume, args.out / f"seg-{name}-inline" / "segment.json")
            for what, x, y in (("fresh tiles", tiles, tile_masks), ("volume windows", windows, window_masks)):
                t, iou = metrics.boundary_threshold(y, predict.predict_probs(ensemble, x, progress=False))
                line.append(f"{what}: best pixel IoU {iou:.3f} at {t:.2f}")
            say(args.out, "; ".join(line))
    for fit, probs in both.items():
        if len(probs) > 1:
            say(args.out, f"{fit}, seeds {args.seeds} averaged (both), " + sweep(np.mean(probs, axis=0), true_top))
    if args.five_folds:
        five_folds(args.out, args.seeds[0], volume, true_top)


if __name__ == "__main__":
    main()
