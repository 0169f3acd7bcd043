"""A phase's first fit(): the optimizer built by its first traced step (Keras' way) or at compile.

A tf.function that creates variables on its first call is traced twice (once creating them, once
without). Keras' optimizers make their slots (SGD's momentum, Adam's moments) on their first
apply, inside the traced training step, unless built before: salt_tf.training.train builds them at compile.
Per round and phase, a fresh U-Net of ``--encoder`` at ``--size`` is compiled as that phase is
(its optimizer, ``salt_tf.model.losses.phase_loss``, the competition metric), once left to Keras and once
built at compile; then one fit() of ``--steps`` steps, and the number of times the training step
was traced. The two alternate round by round; printed: each round's seconds, the ratios built /
unbuilt and the trace counts.

    python benchmarks/first_fit.py [--encoder resnet18] [--size 64] [--batch-size 8] [--steps 3] [--rounds 3]
"""
from __future__ import annotations

import time

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np

from salt_tf.run.config import Config
from salt_tf.model.keras_metrics import CompetitionScore
from salt_tf.model.losses import phase_loss
from salt_tf.model.unet import build_unet
from salt_tf.training.optimizers import FusedAdamW


def main() -> None:
    parser = _bench.parser(__doc__, rounds=3, batch_size=8)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps of the fit() (default: 3)")
    args = parser.parse_args()
    _bench.header()
    config = Config()  # the default losses of each phase
    x, y = _bench.random_tiles(args.batch_size * args.steps, args.size)

    def run(phase: int, build: bool):
        def once():
            keras.utils.set_random_seed(0)
            model = build_unet(args.encoder, args.size)
            optimizer = keras.optimizers.SGD(0.01, momentum=0.9) if phase == 1 else FusedAdamW(1e-4, weight_decay=1e-4)
            model.compile(optimizer=optimizer, loss=phase_loss(config, phase), metrics=[CompetitionScore()])
            if build:
                model.optimizer.build(model.trainable_variables)
            traces = []
            step = model.train_step
            model.train_step = lambda data: traces.append(1) or step(data)
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
            return time.perf_counter() - start, len(traces)
        return once

    def report(r, name, result):
        print(f"round {r + 1} {name:>26}: first fit {result[0]:6.2f} s, training step traced {result[1]}x", flush=True)

    runs = {f"phase {p}, {'built at compile' if b else 'built by Keras'}": run(p, b) for p in (1, 2) for b in (False, True)}
    results = _bench.interleave(runs, args.rounds, alternate=True, after=report)
    for p in (1, 2):
        built, unbuilt = results[f"phase {p}, built at compile"], results[f"phase {p}, built by Keras"]
        ratios = [b[0] / u[0] for b, u in zip(built, unbuilt)]
        print(f"phase {p}: first fit built at compile / built by Keras per round "
              f"{', '.join(f'{r:.3f}' for r in ratios)}; median {np.median(ratios):.3f} "
              f"(traced {built[0][1]}x against {unbuilt[0][1]}x)")


if __name__ == "__main__":
    main()
