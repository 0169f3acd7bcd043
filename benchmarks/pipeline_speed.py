"""Does the input pipeline keep the model fed?

Measures, in one process on the real tiles (../shared/tgs, or SALT_TF_TGS_DIR):
  1. pipeline throughput: augmented tiles/s of salt_tf.pipeline.train_dataset alone;
  2. model throughput: training tiles/s of fit() on batches already in memory;
  3. fit() on the real pipeline against fit() on the same batches held in memory.
Targets (issue 4): (1) >= 3x (2), and (3) within 10%.

    python benchmarks/pipeline_speed.py [--encoder resnet34] [--size 128] [--batch-size 16] [--steps 20]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from salt_tf import machine  # noqa: E402
from salt_tf.config import Config  # noqa: E402
from salt_tf.data import load_train, real_data_dir  # noqa: E402
from salt_tf.losses import BCEWithLogits  # noqa: E402
from salt_tf.model import build_unet  # noqa: E402
from salt_tf.pipeline import train_dataset  # noqa: E402

import keras  # noqa: E402


def pipeline_rate(dataset, batches: int) -> float:
    iterator = iter(dataset.repeat())
    next(iterator)  # warm-up: thread pool, first trace
    start = time.perf_counter()
    tiles = sum(int(next(iterator)[0].shape[0]) for _ in range(batches))
    return tiles / (time.perf_counter() - start)


def fit_rate(model, dataset, steps: int) -> float:
    """Tiles/s of fit() over `steps` batches, after a warm-up fit that traces the step."""
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * model._bench_batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed fit")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of each fit")
    args = parser.parse_args()
    data_dir = real_data_dir()
    print(f"command: python {' '.join(sys.argv)}")
    print(*machine.describe(), sep="\n")
    train = load_train(data_dir)
    config = Config(size=args.size, batch_size=args.batch_size)
    dataset = train_dataset(train.images, train.masks, config, seed=0)

    rate_pipeline = pipeline_rate(dataset, batches=60)
    print(f"pipeline alone: {rate_pipeline:8.1f} augmented tiles/s (full augmentation, {args.size}x{args.size})")

    # The same batches held in memory: drawn once from the pipeline, then replayed from tensors.
    held = list(dataset.take(args.steps + 2))
    images = tf.concat([x for x, _ in held], 0)
    masks = tf.concat([y for _, y in held], 0)
    in_memory = tf.data.Dataset.from_tensor_slices((images, masks)).batch(args.batch_size).cache().repeat()
    in_memory = in_memory.prefetch(tf.data.AUTOTUNE)
    real = dataset.repeat()

    keras.utils.set_random_seed(0)
    model = build_unet(args.encoder, args.size)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), BCEWithLogits())
    model._bench_batch = args.batch_size
    memory_rates, real_rates = [], []
    for _ in range(args.repeats):  # interleaved, so that load from others hits both alike
        memory_rates.append(fit_rate(model, in_memory, args.steps))
        real_rates.append(fit_rate(model, real, args.steps))
    model_rate, real_rate = np.median(memory_rates), np.median(real_rates)
    print(f"fit() on in-memory batches: {model_rate:8.1f} tiles/s  (runs: {', '.join(f'{r:.1f}' for r in memory_rates)})")
    print(f"fit() on the real pipeline: {real_rate:8.1f} tiles/s  (runs: {', '.join(f'{r:.1f}' for r in real_rates)})")
    print(f"ratio pipeline / model consumption: {rate_pipeline / model_rate:6.1f}x  (target >= 3x)")
    print(f"fit() real pipeline / in memory:    {real_rate / model_rate:6.3f}   (target >= 0.90)")
    print(f"{args.encoder} training step: {1000 / model_rate:.1f} ms/tile at {args.size}x{args.size}, batch {args.batch_size}")


if __name__ == "__main__":
    main()
