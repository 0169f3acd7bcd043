"""Train the salt U-Net with K-fold cross-validation.

    python train.py --folds 5 --size 128 --preset demo     # synthetic data, minutes on a CPU
    python train.py --data ../shared/tgs --folds 5 --size 128   # real data, GPU recommended
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    from salt_tf import config as config_mod

    parser = argparse.ArgumentParser(
        description="Train the scSE U-Net per stratified fold: phase 1 SGD + BCE, phase 2 AdamW + Lovasz hinge.",
    )
    config_mod.add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its checkpoints")
    args = parser.parse_args(argv)
    resume = args.__dict__.pop("resume")
    config = config_mod.from_args(args)

    from salt_tf.data import DataError
    from salt_tf.train import run

    try:
        run(config, resume=resume)
    except (DataError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
