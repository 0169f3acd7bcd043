"""Segment whole seismic sections and volumes with a trained run: SEG-Y, .npy or a grayscale image.

    python segment.py --run RUN_DIR --input volume.sgy --out OUT_DIR
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    from salt_tf.seismic.sections import DEFAULT_PERCENTILE, DEFAULT_STRIDE
    from salt_tf.seismic.segment import DEFAULT_MIN_BODY

    parser = argparse.ArgumentParser(description="Salt probability, mask and figures for a whole section or volume.")
    parser.add_argument("--run", required=True, help="run folder written by train.py (fold*/saved_model, report.json, tile_stats.json)")
    parser.add_argument("--input", required=True, help="SEG-Y (.sgy/.segy: 3-D with inline/crossline geometry, or a 2-D line), "
                        ".npy ((traces, samples) or (inlines, crosslines, samples)) or a grayscale PNG/TIFF (rows = samples)")
    parser.add_argument("--out", required=True, help="output folder to create (must not exist)")
    parser.add_argument("--direction", default="inline", choices=["inline", "crossline", "both"],
                        help="3-D volumes: segment along inlines, crosslines, or both averaged (default: inline)")
    parser.add_argument("--lines", help="3-D volumes: only these inlines, FIRST:LAST inclusive: inline numbers of a SEG-Y, "
                        "0-based indices of a .npy (default: all)")
    parser.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                        help=f"step between 101x101 windows in pixels (default: {DEFAULT_STRIDE}, about half a tile)")
    parser.add_argument("--amp-percentile", type=float, default=DEFAULT_PERCENTILE,
                        help="this percentile of |amplitude - median| lands on the same percentile of the training tiles' "
                        f"|grey level - median| (default: {DEFAULT_PERCENTILE:g})")
    parser.add_argument("--amp-clip", type=float, help="use this amplitude for that percentile instead of measuring it "
                        "(the same mapping for several files)")
    parser.add_argument("--amp-centre", type=float, help="use this amplitude as the centre of the mapping instead of the "
                        "input's median (with --amp-clip: exactly the same mapping for several files)")
    parser.add_argument("--window-norm", metavar="{minmax,global}",
                        help="how each 101x101 window becomes grey levels: minmax, stretched to 0..255 on its own as the "
                        "competition's tiles were; global, through one amplitude map for the whole input (default: as "
                        "the run's training tiles were framed, recorded in tile_stats.json)")
    parser.add_argument("--scale", default="1", metavar="FACTORS",
                        help="resample each section by these factors before cutting windows, comma-separated, and merge "
                        "them: 0.5 lets a body twice a window's size (202 samples) fit in one, 2 suits a survey sampled "
                        "twice as coarsely as the tiles (default: 1; e.g. 1,0.5)")
    parser.add_argument("--iline-byte", type=int, help="SEG-Y: trace header byte of the inline number (default: 189, "
                        "SEG-Y rev 1; 9 and 5 are common in older files)")
    parser.add_argument("--xline-byte", type=int, help="SEG-Y: trace header byte of the crossline number (default: 193; "
                        "21 and 17 are common in older files)")
    parser.add_argument("--min-body", type=int, default=DEFAULT_MIN_BODY,
                        help=f"smallest salt body listed in bodies.npy/bodies.csv, in voxels (default: {DEFAULT_MIN_BODY})")
    parser.add_argument("--min-area", type=int, metavar="PIXELS",
                        help="salt patches of a line's mask smaller than this many pixels (samples x traces) are left "
                        "out of the mask, surfaces and bodies (default: the run's minimum salt area, tuned on its "
                        "out-of-fold tiles as predict.py's; 0 keeps every patch)")
    parser.add_argument("--snap-top", type=int, default=0, metavar="SAMPLES",
                        help="move each trace's top of salt onto the strongest reflection within this many samples of "
                        "the mask's first salt sample, as an interpreter snaps a pick to the top-salt event; a few times "
                        "the steepest flank's step in samples per trace, e.g. 32 where flanks step up to 12 (default: 0, "
                        "the mask's own top)")
    parser.add_argument("--snap-polarity", default="peak", metavar="{peak,trough}",
                        help="the top-salt reflection is a peak (positive amplitude: SEG normal polarity of a hard top "
                        "of salt) or a trough (reversed polarity) (default: peak)")
    parser.add_argument("--no-uncertainty", dest="uncertainty", action="store_false",
                        help="only the ensemble's mean probability: no member spread (uncertainty.npy is then 0)")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the run's boundary threshold, "
                        "the best pixel IoU out of fold)")
    parser.add_argument("--truth", help=".npy true mask in the input's layout: drawn in green on the figures")
    parser.add_argument("--figures", type=int, default=3, help="sections drawn as PNG figures (default: 3)")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="switch off horizontal-flip TTA")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per batch (default: 32)")
    dask = parser.add_argument_group("distributed (Dask): lines segmented by worker processes into a Zarr store, "
                                     "the outputs assembled at the end")
    dask.add_argument("--workers", type=int, help="start a local Dask cluster of this many worker processes (one thread each)")
    dask.add_argument("--scheduler", help="use the running Dask cluster at this address (e.g. tcp://10.0.0.5:8786); "
                      "its workers must share the file system with the input and the store")
    dask.add_argument("--store", help="Zarr store of the finished lines (default: OUT.zarr beside --out); kept after a "
                      "crash, so that the same command run again computes only the lines it lacks")
    dask.add_argument("--keep-store", action="store_true", help="keep the store after success (default: removed)")
    dask.add_argument("--task-lines", type=int, help="lines per task (crosslines in the crossline pass; default: up to "
                      "256 windows' worth, fewer to make 16 tasks a pass)")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    from salt_tf.common.errors import SectionError
    from salt_tf.inference.predict import RunError
    from salt_tf.seismic.segment import parse_lines, run

    cluster = None
    if args.keep_store or any(v is not None for v in (args.workers, args.scheduler, args.store, args.task_lines)):
        from salt_tf.seismic.distributed import Cluster  # imported only for a distributed run

        cluster = Cluster(workers=args.workers, scheduler=args.scheduler, store=args.store,
                          keep_store=args.keep_store, task_lines=args.task_lines)
    try:
        run(args.run, args.input, args.out, direction=args.direction, lines=parse_lines(args.lines),
            stride=args.stride, batch_size=args.batch_size, tta=args.tta, threshold=args.threshold,
            percentile=args.amp_percentile, clip=args.amp_clip, centre=args.amp_centre, truth=args.truth,
            n_figures=args.figures, min_body=args.min_body, min_area=args.min_area, iline_byte=args.iline_byte,
            xline_byte=args.xline_byte,
            uncertainty=args.uncertainty, snap_top=args.snap_top, snap_polarity=args.snap_polarity,
            windows=args.window_norm, scales=args.scale, cluster=cluster)
    except (SectionError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
