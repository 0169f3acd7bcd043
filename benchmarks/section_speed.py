"""Whole-section inference: windows/s through segment.py's path against predict.py's tiles/s, the
cost of the uncertainty and of each output, and peak memory for a volume and one twice as long.

Speed, in one process, interleaved round by round (medians; CPU time too, as it moves less than wall
time on a shared machine): a synthetic 3-D SEG-Y volume goes through ``salt_tf.seismic.segment.run`` (read
each line, map amplitudes, cut windows, predict every member, blend, then mask, surfaces, bodies,
domain check, the two SEG-Y copies and figures), once with the uncertainty (members kept apart, the
default) and once without (``predict_probs``' mean only); the same number of windows, cut from that
volume beforehand, goes through ``salt_tf.inference.predict.predict_probs`` alone. All use one loaded
ensemble, warmed up first, so none pays for tracing. Target: the section path >= 90% of
predict_probs' tiles/s. The run's own timings (``segment.json``) give each output's share.

Memory: ``segment.run`` with the run's ensemble in a fresh interpreter on a SEG-Y volume of
``--lines`` inlines and on one of twice as many, reading the peak resident set (VmHWM) at the end.
Target: the longer volume within 10% of the shorter.

    python benchmarks/section_speed.py                                   # random-init resnet34, 5 folds, 128x128
    python benchmarks/section_speed.py --folds 1 --encoder resnet18 --size 64 --rounds 1   # a quick check
    python benchmarks/section_speed.py --run runs/<date-time>            # a trained run instead
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(run_dir: str, volume: str, out: str) -> None:
    """One segment.run in this (fresh) interpreter; print the peak resident set as JSON."""
    from salt_tf.seismic.segment import run

    summary = run(run_dir, volume, out, progress=False, log=lambda line: None)
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "windows": summary["windows"]}))


def make_run(run_dir: Path, encoder: str, size: int, folds: int) -> None:
    import keras

    from salt_tf.run.config import Config
    from salt_tf.model.unet import build_unet

    for fold in range(folds):
        keras.utils.set_random_seed(fold)
        build_unet(encoder, size, None).export(str(run_dir / f"fold{fold}" / "saved_model"), verbose=False)
    Config(encoder=encoder, encoder_weights=None, size=size, folds=folds).save(run_dir / "config.json")
    (run_dir / "report.json").write_text(json.dumps({"threshold": 0.5, "min_area": 0}))


def main(argv=None) -> None:
    parser = _bench.parser(__doc__, rounds=3, batch_size=32)
    _bench.volume_flags(parser, 8, "; memory: and twice as many")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory runs")
    args = parser.parse_args(argv)

    import numpy as np

    from salt_tf.run import tile_stats
    from salt_tf.seismic import sections, synthetic as synthetic_sections
    from salt_tf.inference.predict import load_ensemble, predict_members, predict_probs
    from salt_tf.seismic.segment import run as segment_run
    from salt_tf.seismic.seiswrite import write_segy_volume

    _bench.header()
    with tempfile.TemporaryDirectory(prefix="section_speed.") as tmp:
        tmp = Path(tmp)
        run_dir = Path(args.run) if args.run else tmp / "run"
        if not args.run:
            make_run(run_dir, args.encoder, args.size, args.folds)
        cube, _ = synthetic_sections.make_volume(np.random.default_rng(0), 2 * args.lines, args.xlines, args.samples)
        write_segy_volume(tmp / "volume.sgy", cube[: args.lines])
        ensemble = load_ensemble(run_dir)

        def mean_model(tiles):
            return predict_probs(ensemble, tiles, batch_size=args.batch_size, progress=False)

        def members_model(tiles):
            return predict_members(ensemble, tiles, batch_size=args.batch_size)

        # The same windows the section path cuts, for predict_probs alone.
        stats = tile_stats.read_tile_stats(run_dir, log=lambda line: None)
        amap = sections.amplitude_map(cube[: args.lines], stats)
        windows = np.concatenate([sections.windows(amap(line.T))[0] for line in cube[: args.lines]])
        mean_model(windows[: args.batch_size])  # trace and warm up once, for all
        members_model(windows[: args.batch_size])
        parts = []

        def section_path(model) -> tuple[float, float, int]:
            out = tmp / f"seg{time.perf_counter_ns()}"
            wall, cpu = time.perf_counter(), time.process_time()
            summary = segment_run(run_dir, tmp / "volume.sgy", out, batch_size=args.batch_size, model=model,
                                  n_figures=1, progress=False, log=lambda line: None, warn=lambda line: None)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            parts.append(dict(summary["output_seconds"], windows=summary["seconds"], total=wall))
            shutil.rmtree(out)
            return wall, cpu, summary["windows"]

        def tiles_path() -> tuple[float, float, int]:
            wall, cpu = time.perf_counter(), time.process_time()
            mean_model(windows)
            return time.perf_counter() - wall, time.process_time() - cpu, len(windows)

        runs = _bench.interleave({"section": lambda: section_path(members_model), "tiles": tiles_path,
                                  "section, no uncertainty": lambda: section_path(mean_model)}, args.rounds)
        tiles = runs["tiles"]
        n = tiles[0][2]
        t_wall, t_cpu = (statistics.median(r[i] for r in tiles) for i in (0, 1))
        print(f"run: {run_dir if args.run else f'random-init {args.encoder} {args.size}x{args.size}, {args.folds} folds'}, "
              f"flip TTA, batch {args.batch_size}; SEG-Y volume {args.lines} x {args.xlines} x {args.samples}: {n} windows "
              f"(stride {sections.DEFAULT_STRIDE}); medians of {args.rounds} interleaved rounds")
        print(f"predict_probs on the same windows: {n / t_wall:.1f} tiles/s wall, {n / t_cpu:.1f} per CPU-s")
        walls = {}
        for name in ("section", "section, no uncertainty"):
            assert runs[name][0][2] == n, (runs[name][0][2], n)
            walls[name], cpu = (statistics.median(r[i] for r in runs[name]) for i in (0, 1))
            print(f"{name} (segment.run, the whole command minus loading the models): {n / walls[name]:.1f} windows/s "
                  f"wall, {n / cpu:.1f} per CPU-s; {100 * t_wall / walls[name]:.1f}% of predict_probs by wall clock, "
                  f"{100 * t_cpu / cpu:.1f}% by CPU time (target >= 90%)")
        print(f"uncertainty (the members kept apart and blended one by one): the run takes "
              f"{walls['section'] / walls['section, no uncertainty']:.3f}x the time without it")
        with_members = parts[0::2]  # section, then section without uncertainty, round by round
        share = {k: statistics.median(p[k] / p["total"] for p in with_members) for k in with_members[0] if k != "total"}
        print("share of the run (with uncertainty): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in share.items())
              + f", figures and the rest {100 * (1 - sum(share.values())):.1f}%")
        step = statistics.median(p["windows"] for p in with_members)
        print(f"the windows step alone (read, map, predict every member, blend): {n / step:.1f} windows/s, "
              f"{100 * t_wall / step:.1f}% of predict_probs by wall clock (target >= 90%)")

        if args.memory:
            peaks = {}
            for lines in (args.lines, 2 * args.lines):
                path = tmp / f"volume{lines}.sgy"
                write_segy_volume(path, cube[:lines])
                child = subprocess.run(
                    [sys.executable, __file__, "--memory-child", str(run_dir), str(path), str(tmp / f"mem{lines}")],
                    capture_output=True, text=True, check=True)
                peaks[lines] = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"peak memory, SEG-Y volume of {lines} inlines ({peaks[lines]['windows']} windows): "
                      f"{peaks[lines]['peak_rss_mb']:.0f} MB (VmHWM)")
            a, b = (peaks[k]["peak_rss_mb"] for k in (args.lines, 2 * args.lines))
            print(f"twice as long: {100 * (b / a - 1):+.1f}% peak memory (target within 10%)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        memory_child(*sys.argv[2:])
    else:
        main()
