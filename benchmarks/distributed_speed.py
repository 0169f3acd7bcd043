"""segment.py's distributed mode against the single process: the overhead as a ratio, windows/s, and
how the work divides, so that a user can size a cluster.

A synthetic 3-D SEG-Y volume goes through ``salt_tf.seismic.segment.run`` in one process, then with a local
Dask cluster of each ``--workers`` count (``--workers 1 2`` by default), interleaved round by round
(medians). Each run is the whole command: the single process loads the ensemble itself, each worker
loads it once; the cluster's start, the Zarr store and the final copy from it are all counted. Also
printed: step 3 alone (segmenting: segment_lines, or the cluster's start, the tasks and the copy
from the store), and how the work divides (tasks, lines per task, chunk size, bytes read, written
and sent per window). A first single-process run, not timed, pays the imports.

Timings need an idle machine: the workers and the single process compete for the same cores.

    python benchmarks/distributed_speed.py                        # random-init resnet34, 5 folds, 128x128
    python benchmarks/distributed_speed.py --run runs/<date-time> # a trained run instead
    python benchmarks/distributed_speed.py --tiny                 # a quick check: identity model, small volume, 1 worker
"""
from __future__ import annotations

import pickle
import statistics
import tempfile
import time
from pathlib import Path

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs


def identity(windows):
    """No network: what is left is the machinery's own cost (reading, windows, blending, the store)."""
    return windows.astype("float32") / 255.0


def one_run(run_dir, volume: Path, out: Path, args, workers: int | None, model) -> dict:
    from salt_tf.seismic.distributed import Cluster
    from salt_tf.seismic.segment import run

    cluster = Cluster(workers=workers, task_lines=args.task_lines) if workers else None
    clock = time.perf_counter()
    summary = run(run_dir, volume, out, direction=args.direction, batch_size=args.batch_size, model=model,
                  n_figures=0, progress=False, log=lambda line: None, warn=lambda line: None, cluster=cluster)
    return {"wall": time.perf_counter() - clock, "step3": summary["seconds"], "windows": summary["windows"],
            "cluster": summary.get("cluster")}


def division(inp_shape: tuple[int, int, int], args, job_bytes: int) -> list[str]:
    """How the work divides into tasks, and the bytes each window costs on the way."""
    from salt_tf.seismic.linestore import plan

    n_lines, n_traces, n_samples = inp_shape
    per_task, tasks = plan(n_lines, n_traces, n_samples, args.direction, 50, args.batch_size, args.task_lines)
    lines = []
    for d, size in per_task.items():
        mine = [t for t in tasks if t.direction == d]
        windows = sum(t.windows for t in mine)
        voxels = n_lines * n_traces * n_samples
        chunk = size * (n_traces if d == "inline" else n_lines) * n_samples
        lines.append(f"{d} pass: {len(mine)} tasks of {size} {d}s, {windows / len(mine):.0f} windows a task; chunk "
                     f"{2 * chunk / 1e6:.2f} MB (float16) per array, 2 arrays (probability, uncertainty)")
        lines.append(f"  per window: {4 * voxels / windows / 1e3:.1f} kB of input read by the workers (float32 "
                     f"samples), {4 * voxels / windows / 1e3:.1f} kB written to the store and read back by the final "
                     f"process (uncompressed; Zarr compresses it), {job_bytes * len(mine) / windows / 1e3:.2f} kB of "
                     f"task description sent by the scheduler, 0 bytes of results (they go to the store)")
    return lines


def main(argv=None) -> None:
    parser = _bench.parser(__doc__, rounds=3, batch_size=32)
    _bench.volume_flags(parser, 16)
    parser.add_argument("--direction", default="inline", choices=["inline", "crossline", "both"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local cluster sizes (default: 1 2)")
    parser.add_argument("--task-lines", type=int, help="lines per task (default: segment.py's, about 256 windows)")
    parser.add_argument("--identity", action="store_true", help="no network: the machinery's own overhead")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long check: --identity, 6 x 60 x 60, "
                        "--workers 1, 1 round")
    args = parser.parse_args(argv)
    if args.tiny:
        args.identity, args.lines, args.xlines, args.samples, args.workers, args.rounds = True, 6, 60, 60, [1], 1

    import numpy as np

    from salt_tf.seismic import sections, synthetic as synthetic_sections
    from salt_tf.seismic.distributed import Job
    from salt_tf.seismic.seiswrite import write_segy_volume

    with tempfile.TemporaryDirectory(prefix="distributed_speed.") as tmp:
        tmp = Path(tmp)
        run_dir, model = (None, identity) if args.identity else (Path(args.run) if args.run else tmp / "run", None)
        if not args.identity and not args.run:
            from section_speed import make_run

            make_run(run_dir, args.encoder, args.size, args.folds)
        cube, _ = synthetic_sections.make_volume(np.random.default_rng(0), args.lines, args.xlines, args.samples)
        volume = tmp / "volume.sgy"
        write_segy_volume(volume, cube)

        one_run(run_dir, volume, tmp / "warm_up", args, None, model)  # imports, so that no mode pays them
        modes = [None] + list(args.workers)
        results = _bench.interleave([(mode, lambda mode=mode: one_run(run_dir, volume, tmp / f"out_{mode}_{time.time_ns()}",
                                                                       args, mode, model)) for mode in modes],
                                    args.rounds, alternate=True)
        n = results[None][0]["windows"]
        job = Job(str(volume), str(volume), None, None, np.arange(args.lines), sections.AmplitudeMap(0.0, 1.0, 120.0),
                  50, args.batch_size, str(tmp / "store"), (str(run_dir), args.batch_size, True, True) if run_dir else None,
                  model)

        _bench.header()
        what = "identity model" if args.identity else str(run_dir) if args.run else \
            f"random-init {args.encoder} {args.size}x{args.size}, {args.folds} folds, flip TTA"
        print(f"{what}; batch {args.batch_size}; volume {args.lines} x {args.xlines} x {args.samples} SEG-Y, "
              f"direction {args.direction}: {n} windows (stride 50); medians of {args.rounds} round(s)")
        single = statistics.median(x["wall"] for x in results[None])
        for mode in modes:
            wall = statistics.median(x["wall"] for x in results[mode])
            step3 = statistics.median(x["step3"] for x in results[mode])
            name = "single process" if mode is None else f"{mode} worker(s)"
            print(f"{name:>16}: whole command {wall:6.1f} s ({n / wall:6.1f} windows/s, {single / wall:.2f}x the single "
                  f"process), step 3 {step3:6.1f} s ({n / step3:6.1f} windows/s)")
        print("\n".join(division((args.lines, args.xlines, args.samples), args, len(pickle.dumps(job)))))


if __name__ == "__main__":
    main()
