"""Inference speed: end-to-end `salt_tf.inference.predict.run` against bare forward passes, in one process.

A run folder of random-init U-Nets (default 5 folds of resnet34 at 128x128) is exported to a
temporary folder, then the real test tiles are predicted with flip TTA, i.e. 5 folds x 2 = 10
forward passes over every tile. Two things are timed, interleaved round by round so that load from
other processes on a shared machine hits both alike (medians over rounds; CPU time is printed too,
as it moves less than wall time when other processes compete for the cores):

  end-to-end  `salt_tf.inference.predict.run`: load the SavedModels, read the PNGs, resize, ensemble + TTA,
              threshold, write and re-check the submission CSV (the command a user runs).
  bare        Keras `model.predict` of each fold's model on the same tiles, preloaded as
              (N, S, S, 1) float32 tensors, plain and mirrored: the same 10 forward passes and
              nothing else.

The target is end-to-end >= 85% of bare. Random weights cost the same per pass as trained ones.

    python benchmarks/predict_speed.py                 # the 1,000 test tiles (slow on a small CPU)
    python benchmarks/predict_speed.py --tiles 200     # the first 200 test tiles, a quick check
    python benchmarks/predict_speed.py --tiles 16 --folds 1 --encoder resnet18 --size 64   # seconds

The data folder is ../shared/tgs beside the project root; SALT_TF_TGS_DIR or --tgs overrides it.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from salt_tf.tiles import pipeline
from salt_tf.inference import predict as predict_mod
from salt_tf.run.config import Config
from salt_tf.tiles.data import _folder_ids, load_images
from salt_tf.model.unet import build_unet


def make_run(run_dir: Path, encoder: str, size: int, folds: int) -> list[keras.Model]:
    """fold{k}/saved_model of random-init U-Nets, config.json and a report.json (threshold 0.5)."""
    models = []
    for fold in range(folds):
        keras.utils.set_random_seed(fold)
        model = build_unet(encoder, size, None)
        model.export(str(run_dir / f"fold{fold}" / "saved_model"), verbose=False)
        models.append(model)
    Config(encoder=encoder, encoder_weights=None, size=size, folds=folds).save(run_dir / "config.json")
    (run_dir / "report.json").write_text(json.dumps({"threshold": 0.5, "min_area": 0}))
    return models


def main(argv=None) -> None:
    parser = _bench.parser(__doc__, rounds=1, batch_size=32, tgs=True)
    parser.add_argument("--tiles", type=int, help="predict only the first N test tiles (default: all)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)

    images_dir = args.tgs / "test" / "images"
    if not images_dir.is_dir():
        parser.error(f"{images_dir}: folder not found; set SALT_TF_TGS_DIR or --tgs to the TGS data folder")

    _bench.header(f"tf threads: intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
                  f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")

    with tempfile.TemporaryDirectory(prefix="predict_speed.") as tmp:
        tmp = Path(tmp)
        ids = _folder_ids(images_dir)
        ids_csv = None
        if args.tiles:
            ids = ids[: args.tiles]
            ids_csv = tmp / "ids.csv"
            pd.DataFrame({"id": ids}).to_csv(ids_csv, index=False)
        n = len(ids)
        passes = args.folds * 2
        print(f"{n} tiles from {images_dir}{' (--tiles)' if args.tiles else ''}; {args.folds} folds x 2 TTA = "
              f"{passes} forward passes per tile; {args.encoder} U-Net at {args.size}x{args.size}, "
              f"random init; batch {args.batch_size}; {args.rounds} interleaved round(s)", flush=True)

        started = time.perf_counter()
        run_dir = tmp / "run"
        models = make_run(run_dir, args.encoder, args.size, args.folds)
        print(f"built and exported {args.folds} models in {time.perf_counter() - started:.0f} s", flush=True)

        # Bare inputs, prepared outside the timing: exactly what the pipeline feeds the models.
        _, images = load_images(images_dir, ids)
        x = tf.constant(pipeline.to_input(images, args.size))
        x_mirrored = tf.reverse(x, axis=[2])

        def end_to_end() -> dict:
            lines = []
            start, cpu = time.perf_counter(), time.process_time()
            predict_mod.run(run_dir, images_dir, tmp / "submission.csv", ids_csv=ids_csv, tta=True,
                            batch_size=args.batch_size, log=lines.append)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            reported = float(lines[-1].split(" tiles/s")[0].rsplit(" ", 1)[-1])
            return {"seconds": seconds, "cpu": cpu, "predict_probs_rate": reported}

        def bare() -> dict:
            start, cpu = time.perf_counter(), time.process_time()
            for model in models:
                for inputs in (x, x_mirrored):
                    model.predict(inputs, batch_size=args.batch_size, verbose=0)
            return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}

        # Warm-up (untimed): Keras builds its predict function once per model; predict.run traces
        # afresh every call, and that is part of its end-to-end cost, so it is not warmed up.
        for model in models:
            model.predict(x[: args.batch_size], verbose=0)

        def show(r: int, name: str, result: dict) -> None:
            print(f"  round {r + 1} {name}: {result['seconds']:.1f} s, {n / result['seconds']:.2f} tiles/s, "
                  f"{result['cpu']:.0f} CPU s; load average {os.getloadavg()[0]:.2f}", flush=True)

        results = _bench.interleave({"end-to-end": end_to_end, "bare": bare}, args.rounds,
                                    alternate=True, after=show)

    def median(name, key):
        return float(np.median([r[key] for r in results[name]]))

    e2e, bare_s = median("end-to-end", "seconds"), median("bare", "seconds")
    e2e_cpu, bare_cpu = median("end-to-end", "cpu"), median("bare", "cpu")
    print(f"\nend-to-end predict.run: {n / e2e:.2f} tiles/s ({e2e:.1f} s, {e2e_cpu:.0f} CPU s; its own "
          f"predict_probs timer: {median('end-to-end', 'predict_probs_rate'):.2f} tiles/s)")
    print(f"bare model.predict:     {n / bare_s:.2f} tiles/s ({bare_s:.1f} s, {bare_cpu:.0f} CPU s; {passes} passes)")
    print(f"end-to-end / bare:      {bare_s / e2e:.1%} by wall clock (target >= 85%), "
          f"{bare_cpu / e2e_cpu:.1%} by CPU time (less sensitive to other processes on a shared machine)")


if __name__ == "__main__":
    main()
