"""Phase 2's optimizer: Keras' AdamW against salt_tf's FusedAdamW (TensorFlow's fused Adam kernel).

One process; the model and loss of phase 2 (a U-Net of ``--encoder`` at ``--size``, float32,
Lovasz hinge) on random tiles in memory. For each optimizer, per round: a fresh model compiled with
it, the first ``fit()`` of ``--steps`` steps (it traces and optimises the train step: what every
phase 2 start and every resume pays) and a second ``fit()`` of as many steps (the steady step).
The two alternate round by round; printed: each round's seconds and the ratios fused / Keras.

    python benchmarks/optimizer_speed.py [--encoder resnet18] [--size 128] [--batch-size 16] [--steps 10] [--rounds 3]
"""
from __future__ import annotations

import time

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np

from salt_tf.model.losses import LovaszHinge
from salt_tf.model.unet import build_unet
from salt_tf.training.optimizers import FusedAdamW


def main() -> None:
    parser = _bench.parser(__doc__, rounds=3, batch_size=16)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps per fit() (default: 10)")
    args = parser.parse_args()
    _bench.header()
    x, y = _bench.random_tiles(args.batch_size * args.steps, args.size)

    def run(optimizer_class):
        def once():
            keras.utils.set_random_seed(0)
            model = build_unet(args.encoder, args.size)
            model.compile(optimizer_class(1e-3, weight_decay=1e-4), loss=LovaszHinge())
            times = []
            for _ in range(2):
                start = time.perf_counter()
                model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
                times.append(time.perf_counter() - start)
            return times
        return once

    def report(r, name, times):
        print(f"round {r + 1} {name:>10}: first fit {times[0]:6.2f} s, second fit {times[1]:6.2f} s "
              f"({1000 * times[1] / args.steps:.0f} ms a step)", flush=True)

    results = _bench.interleave({"AdamW": run(keras.optimizers.AdamW), "FusedAdamW": run(FusedAdamW)},
                                args.rounds, alternate=True, after=report)
    for i, what in enumerate(["first fit (trace + steps)", "second fit (steps)"]):
        ratios = [f[i] / k[i] for f, k in zip(results["FusedAdamW"], results["AdamW"])]
        print(f"{what}: fused / Keras per round {', '.join(f'{r:.3f}' for r in ratios)}; median {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
