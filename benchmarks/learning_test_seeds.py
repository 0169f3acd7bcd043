"""What the suite's learning test (tests/test_train.py, test_short_training_learns_in_mixed_precision)
judges by, over seeds and precisions, and whether it can fail: its training, seeded otherwise.

    [ONEDNN_MAX_CPU_ISA=AVX2] python benchmarks/learning_test_seeds.py [--seeds 1 2 3 4 5 6] [--bf16-seeds 1 2 3 4]
        [--epochs 6] [--broken float32 bfloat16] [--out DIR]

The test's training: 200 synthetic tiles (seed 11), fold 0 of 4, resnet18 from scratch at 32x32,
6 epochs (``--epochs``) of phase 1 at learning rate 0.05. ``--seeds`` vary the seed of the split and of the
initial weights (the test uses 1); ``--bf16-seeds`` train them in mixed bfloat16 as a CPU with
native bfloat16 would (emulated here if it has none: slower). ``ONEDNN_MAX_CPU_ISA`` (AVX2,
AVX512_CORE, ...) caps oneDNN's kernels: another CPU's arithmetic on this one (not the same numbers
as that CPU: its other kernels differ too, but one more path the margin must hold on). Two broken trainings
follow, which the test must refuse: masks shuffled among the tiles, and learning rate 0.

One line per training: the out-of-fold pixel IoU (best over thresholds, report.json) against
predicting salt everywhere, and the competition score at 101x101 against predicting no salt, with
the test's rule (pixel IoU above salt everywhere + ``MARGIN``) and the rule it had before
(competition score above no salt + 0.05).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import _bench
import numpy as np

from salt_tf.tiles.folds import read_folds

MARGIN = 0.16  # the test's


def train(data: Path, out: Path, seed: int, bf16: bool = False, broken: str = "", epochs: int = 4) -> str:
    import salt_tf.common.machine
    import salt_tf.training.train
    from salt_tf.run.config import Config

    policy, load = salt_tf.common.machine.mixed_policy, salt_tf.training.train.load_train
    # forced both ways: on a CPU with native bfloat16 the machine's own policy would make every run bfloat16
    salt_tf.common.machine.mixed_policy = lambda: "mixed_bfloat16" if bf16 else None
    if broken == "shuffled masks":
        def shuffled(root):
            tiles = load(root)
            return dataclasses.replace(tiles, masks=tiles.masks[np.random.default_rng(0).permutation(len(tiles.masks))])
        salt_tf.training.train.load_train = shuffled
    config = Config(data=str(data), out=str(out), size=32, encoder="resnet18", encoder_weights=None, batch_size=8,
                    phase1_epochs=epochs, phase1_lr=0.0 if broken == "learning rate 0" else 0.05, phase2_epochs=0,
                    folds=4, fold=0, seed=seed, mixed_precision=True)
    start = time.perf_counter()
    try:
        report = salt_tf.training.train.run(config, log=lambda line: None)
        tiles = salt_tf.training.train.load_train(data)  # shuffled as training had them
    finally:
        salt_tf.common.machine.mixed_policy, salt_tf.training.train.load_train = policy, load
    folds = read_folds(out / "folds.csv", ids=tiles.ids).set_index("id").loc[tiles.ids, "fold"].to_numpy()
    masks = tiles.masks[folds == 0]
    everywhere, no_salt = masks.mean(), np.mean([m.max() == 0 for m in masks])
    iou, score = report["pixel_iou"], report["folds"][0]["val_score_101"]
    return (f"{'bfloat16' if bf16 else 'float32':8s} seed {seed} {broken or 'trained':15s} pixel IoU {iou:.3f} "
            f"(salt everywhere {everywhere:.3f}, margin {iou - everywhere:+.3f}: "
            f"{'passes' if iou > everywhere + MARGIN else 'FAILS'})  competition {score:.3f} (no salt {no_salt:.3f}: "
            f"old rule {'passes' if score > no_salt + 0.05 else 'FAILS'})  {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6], help="float32 trainings")
    parser.add_argument("--bf16-seeds", type=int, nargs="*", default=[1, 2, 3, 4], help="mixed bfloat16 trainings")
    parser.add_argument("--epochs", type=int, default=6, help="phase-1 epochs (default: 6, the test's)")
    parser.add_argument("--broken", nargs="*", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                        help="the precisions of the two broken trainings (default: both; none: no broken run)")
    parser.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")  # oneDNN's kernels capped, e.g. AVX2: another CPU's arithmetic
    _bench.header(f"the test's rule: pixel IoU > salt everywhere + {MARGIN}; {args.epochs} epochs"
                  + (f"; ONEDNN_MAX_CPU_ISA={isa}" if isa else ""))
    from salt_tf.tiles import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        data = synthetic.generate(root / "data", n_train=200, n_test=4, seed=11)
        runs = [(seed, False, "") for seed in args.seeds] + [(seed, True, "") for seed in args.bf16_seeds] + \
            [(1, precision == "bfloat16", broken) for precision in args.broken
             for broken in ("shuffled masks", "learning rate 0")]
        for seed, bf16, broken in runs:
            name = f"{'bf16' if bf16 else 'fp32'}-{seed}-{broken.replace(' ', '-') or 'trained'}"
            print(train(data, root / name, seed, bf16, broken, args.epochs), flush=True)


if __name__ == "__main__":
    main()
