"""What an epoch costs beyond its training steps and one validation pass (issue 11).

One process, the real training tiles through the real input pipeline (albumentations + tf.data),
resnet18 + scSE at ``--size`` in bfloat16, SGD + BCE, ``fit()`` with validation as training runs it:

- ``ours``: ``salt_tf.tiles.pipeline`` as it is: tf.data's autotuner off, fixed parallelism;
- ``autotuned``: the same pipeline with tf.data's autotuner on (``AUTOTUNE`` parallelism and
  prefetch), as salt_tf had it before: deleting an autotuned iterator, which Keras does at the
  start of each epoch, waited 3-12 s for the autotuner's thread (see ``salt_tf/tiles/pipeline.py``);
- ``bare``: ``train_on_batch`` on batches already in memory plus ``predict`` of the validation
  tiles: the floor that the epochs are held against.

Variants alternate (ours, autotuned, ours, autotuned) so that the host's drift hits both;
printed per epoch: seconds, the first batch's seconds, and the ratio to the bare floor.

    python benchmarks/epoch_overhead.py [--tiles 1024] [--epochs 4] [--size 64] [--rounds 2]
"""
from __future__ import annotations

import time

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np
import tensorflow as tf

from salt_tf.tiles import pipeline
from salt_tf.run.config import Config
from salt_tf.tiles.data import load_train
from salt_tf.model.losses import BCEWithLogits
from salt_tf.model.unet import build_unet


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rows = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.first = time.perf_counter(), None

    def on_train_batch_end(self, batch, logs=None):
        if self.first is None:
            self.first = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append((time.perf_counter() - self.started, self.first))


def main() -> None:
    parser = _bench.parser(__doc__, rounds=2, batch_size=16, tgs=True)
    parser.add_argument("--tiles", type=int, default=1024, help="training tiles (default: 1024)")
    parser.add_argument("--val-tiles", type=int, default=256, help="validation tiles (default: 256)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (default: 4)")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    _bench.header()
    data = load_train(args.tgs)
    tr = np.arange(args.tiles)
    va = np.arange(args.tiles, args.tiles + args.val_tiles)
    config = Config(size=args.size, batch_size=args.batch_size)
    steps, val_steps = args.tiles // args.batch_size, -(-args.val_tiles // args.batch_size)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = build_unet("resnet18", args.size)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), BCEWithLogits())

    def datasets(autotuned: bool):
        if not autotuned:
            return (pipeline.train_dataset(data.images[tr], data.masks[tr], config, seed=0),
                    pipeline.eval_dataset(data.images[va], data.masks[va], config))
        fixed = (pipeline.PARALLEL_CALLS, pipeline.PREFETCH, pipeline.without_autotune)
        pipeline.PARALLEL_CALLS = pipeline.PREFETCH = tf.data.AUTOTUNE
        pipeline.without_autotune = lambda dataset: dataset
        try:
            return (pipeline.train_dataset(data.images[tr], data.masks[tr], config, seed=0),
                    pipeline.eval_dataset(data.images[va], data.masks[va], config))
        finally:
            pipeline.PARALLEL_CALLS, pipeline.PREFETCH, pipeline.without_autotune = fixed

    # Warm up: trace the train and test steps once.
    train, val = datasets(False)
    model.fit(train.take(2), validation_data=val.take(1), epochs=1, verbose=0)

    batches = list(datasets(False)[0].take(steps).as_numpy_iterator())
    val_x = pipeline.to_input(data.images[va], args.size)

    def bare() -> float:
        start = time.perf_counter()
        for x, y in batches:
            model.train_on_batch(x, y)
        model.predict(val_x, batch_size=args.batch_size, verbose=0)
        return time.perf_counter() - start

    def epochs(autotuned: bool):
        def fit() -> list[tuple[float, float]]:
            timer = EpochTimes()
            train, val = datasets(autotuned)
            model.fit(train, validation_data=val, epochs=args.epochs, steps_per_epoch=steps,
                      validation_steps=val_steps, callbacks=[timer], verbose=0)
            return timer.rows

        return fit

    # The bare floor is measured after each variant, so that it drifts with them.
    fits = _bench.interleave([("ours", epochs(False)), ("bare", bare),
                              ("autotuned", epochs(True)), ("bare", bare)], args.rounds)
    results = {"ours": sum(fits["ours"], []), "autotuned": sum(fits["autotuned"], []),
               "bare": fits["bare"]}
    floor = float(np.median(results["bare"]))
    print(f"\n{args.tiles} training + {args.val_tiles} validation tiles, resnet18 + scSE {args.size}x{args.size} bfloat16, "
          f"batch {args.batch_size}; bare steps + one validation pass: {floor:.1f} s (median of {len(results['bare'])})")
    for variant in ("ours", "autotuned"):
        rows = results[variant]
        # The first epoch of each fit() starts its iterators and (once) the autotuner; later ones are steady.
        later = [r for i, r in enumerate(rows) if i % args.epochs]
        print(f"{variant:>9}: epoch s {', '.join(f'{s:.1f}' for s, _ in rows)}")
        print(f"{'':>9}  first batch s {', '.join(f'{f:.2f}' for _, f in rows)}")
        seconds = [s for s, _ in later]
        print(f"{'':>9}  epochs 2..{args.epochs} of each fit: median {np.median(seconds):.1f} s = "
              f"{np.median(seconds) / floor:.2f}x the bare floor, mean {np.mean(seconds):.1f} s = "
              f"{np.mean(seconds) / floor:.2f}x; "
              f"mean first batch {np.mean([f for _, f in later]):.2f} s")


if __name__ == "__main__":
    main()
