"""Train the salt U-Net with K-fold cross-validation.

    python train.py --folds 5 --size 128 --preset demo     # synthetic data, minutes on a CPU
    python train.py --data ../shared/tgs --folds 5 --size 128   # real data, GPU recommended
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    from salt_tf.run import config as config_mod

    parser = argparse.ArgumentParser(
        description="Train the scSE U-Net per stratified fold: phase 1 SGD + BCE, phase 2 AdamW + Lovasz hinge.",
    )
    config_mod.add_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its checkpoints")
    args = parser.parse_args(argv)
    resume = args.__dict__.pop("resume")

    from pathlib import Path

    from salt_tf.tiles.data import DataError
    from salt_tf.training.train import run

    try:
        if resume:
            # The run's own settings: `python train.py --resume --out RUN` is the whole command.
            if getattr(args, "out", None) is None:
                parser.error("--resume needs --out RUN, the run folder to continue")
            saved = Path(args.out) / "config.json"
            if not saved.is_file():
                raise FileNotFoundError(f"{args.out}: no run to resume here (no config.json)")
            config = config_mod.resumed(config_mod.Config.load(saved), args)
        else:
            config = config_mod.from_args(args)
        run(config, resume=resume)
    except (DataError, ValueError, OSError) as err:
        # Expected failures (settings, data, weights, folders) end in one line, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
