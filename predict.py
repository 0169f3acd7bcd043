"""Predict tiles with a trained run: fold ensemble, flip TTA, tuned threshold.

    python predict.py --run RUN_DIR --images DIR --out submission.csv

The folds' SavedModels on TensorFlow; their model.keras files on JAX or PyTorch (KERAS_BACKEND=jax).
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write a Kaggle submission from a trained run's fold models.")
    parser.add_argument("--run", required=True, help="run folder written by train.py (fold*/saved_model or fold*/model.keras, report.json)")
    parser.add_argument("--images", required=True, help="folder of 101x101 tiles (ID.png)")
    parser.add_argument("--out", required=True, help="submission CSV to write (id,rle_mask)")
    parser.add_argument("--ids", help="CSV with an id column (e.g. sample_submission.csv): predict exactly these ids, in this order")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="switch off horizontal-flip TTA")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: tuned out of fold by training; "
                        "giving one also switches off the tuned minimum salt area)")
    parser.add_argument("--probs", help="also save the averaged probabilities to this .npz")
    parser.add_argument("--overlays", help="write a PNG grid of tiles to this file, each with its id, predicted (red) and true (green) outlines and score")
    parser.add_argument("--n-overlays", type=int, default=16, help="how many tiles the --overlays grid shows (default: 16)")
    parser.add_argument("--masks", help="folder of true masks, for the green contours of --overlays")
    parser.add_argument("--batch-size", type=int, default=32, help="tiles per batch (default: 32)")
    args = parser.parse_args(argv)

    from salt_tf.inference.predict import RunError, run
    from salt_tf.tiles.data import DataError

    try:
        run(args.run, args.images, args.out, ids_csv=args.ids, tta=args.tta, threshold=args.threshold,
            probs_path=args.probs, overlays=args.overlays, n_overlays=args.n_overlays, masks_dir=args.masks,
            batch_size=args.batch_size)
    except (DataError, RunError, ValueError, OSError) as err:
        # Expected failures (a bad run folder, tiles, ids or value) end in one line, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
