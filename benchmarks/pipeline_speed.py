"""Does the input pipeline keep the model fed?

Measures, in one process on the real tiles (../shared/tgs, or SALT_TF_TGS_DIR):
  1. pipeline throughput: augmented tiles/s of salt_tf.tiles.pipeline.train_dataset alone;
  2. model throughput: training tiles/s of fit() on batches already in memory;
  3. fit() on the real pipeline against fit() on the same batches held in memory.
Targets (issue 4): (1) >= 3x (2), and (3) within 10%.

    python benchmarks/pipeline_speed.py [--encoder resnet34] [--size 128] [--batch-size 16] [--steps 20] [--rounds 3]
"""
from __future__ import annotations

import time

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np
import tensorflow as tf

from salt_tf.run.config import Config
from salt_tf.tiles.data import load_train
from salt_tf.model.losses import BCEWithLogits
from salt_tf.model.unet import build_unet
from salt_tf.tiles.pipeline import train_dataset


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
    parser = _bench.parser(__doc__, rounds=3, batch_size=16, tgs=True)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed fit")
    args = parser.parse_args()
    _bench.header()
    train = load_train(args.tgs)
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
    rates = _bench.interleave({"memory": lambda: fit_rate(model, in_memory, args.steps),
                               "real": lambda: fit_rate(model, real, args.steps)}, args.rounds)
    memory_rates, real_rates = rates["memory"], rates["real"]
    model_rate, real_rate = np.median(memory_rates), np.median(real_rates)
    print(f"fit() on in-memory batches: {model_rate:8.1f} tiles/s  (runs: {', '.join(f'{r:.1f}' for r in memory_rates)})")
    print(f"fit() on the real pipeline: {real_rate:8.1f} tiles/s  (runs: {', '.join(f'{r:.1f}' for r in real_rates)})")
    print(f"ratio pipeline / model consumption: {rate_pipeline / model_rate:6.1f}x  (target >= 3x)")
    print(f"fit() real pipeline / in memory:    {real_rate / model_rate:6.3f}   (target >= 0.90)")
    print(f"{args.encoder} training step: {1000 / model_rate:.1f} ms/tile at {args.size}x{args.size}, batch {args.batch_size}")


if __name__ == "__main__":
    main()
