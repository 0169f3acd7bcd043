"""Training step time of the full U-Net per encoder, with and without scSE (issue 3).

Side by side in one process, interleaved rounds, synthetic batches at 128x128, batch 16, SGD + BCE:

    python benchmarks/unet_speed.py [--rounds 3] [--steps 3] [--size 128] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from salt_tf import machine  # noqa: E402
from salt_tf.losses import BCEWithLogits  # noqa: E402
from salt_tf.model import build_unet  # noqa: E402

VARIANTS = [("resnet34", True), ("resnet34", False), ("resnext50", True), ("resnext50", False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per round")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    print(f"command: python {' '.join(sys.argv)}")
    print(*machine.describe(), sep="\n")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, args.size, args.size, 1), dtype=np.float32)
    y = (rng.random((args.batch_size, args.size, args.size, 1)) < 0.3).astype(np.float32)
    models = {}
    for encoder, scse in VARIANTS:
        keras.utils.set_random_seed(0)
        model = build_unet(encoder, args.size, scse=scse)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), BCEWithLogits())
        model.train_on_batch(x, y)  # trace and warm up
        models[(encoder, scse)] = model
    times = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            times[key].append((time.perf_counter() - start) / args.steps / args.batch_size * 1000)
    base = np.median(times[("resnet34", True)])
    print(f"{'variant':<22}{'ms/image (median)':>18}  {'rounds':<36}{'vs resnet34+scSE':>18}")
    for (encoder, scse), values in times.items():
        name = f"{encoder}{' + scSE' if scse else ''}"
        print(f"{name:<22}{np.median(values):>18.1f}  {', '.join(f'{v:.1f}' for v in values):<36}"
              f"{np.median(values) / base:>17.2f}x")
    print(f"resnext50/resnet34 with scSE: {np.median(times[('resnext50', True)]) / base:.2f}x; "
          f"scSE cost on resnet34: {base / np.median(times[('resnet34', False)]):.3f}x")


if __name__ == "__main__":
    main()
