"""A user's survey and an interpreter's labels -> a training set of windows for ``train.py --survey``.

Windows of 101x101 are cut on a grid (``--stride``) along each labelled inline, exactly as
``segment.py`` cuts them (``sections.windows``: reflection-padded at the edges) and framed the way
it will frame them for a run trained on them (each stretched to 0..255 on its own,
``tiles.framing.stretch``; mutes and absent traces filled as segment.py fills them,
``sections.filled_for_windows``, and unlabelled). Their labels are cut alike: 1
salt, 0 not salt, ``UNLABELLED`` nobody's, out of every loss and metric. A window with fewer than
``--min-labelled`` of its pixels labelled is skipped.

Folds are whole lines: the labelled inlines in order, split into ``--folds`` contiguous blocks, so
that a fold validates on lines no training window of it was cut from; ``train.py`` also keeps the
lines within ``--gap`` of a fold's validation lines out of its training (``tiles.windows_set``).
``--folds 1`` is a run without validation (one labelled line is enough): every window trains, fold
``NOT_VALIDATED`` in ``folds.csv``, and ``train.py`` keeps each phase's last epoch.

The folder (written whole, atomically): ``windows.npz`` (ids, images, labels, lines), ``folds.csv``
(id, fold, line) and ``survey.json`` (the input, the labels, the settings, the counts).

    python -m salt_tf.seismic.survey_tiles --input survey.sgy --labels labels.npy --out my_survey
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from salt_tf.common.atomic import building
from salt_tf.common.errors import SectionError
from salt_tf.seismic import sections
from salt_tf.seismic.labels import keep_lines, labelled_lines, read_labels
from salt_tf.seismic.seisio import open_source
from salt_tf.tiles.framing import stretch
from salt_tf.tiles.metrics import UNLABELLED

DEFAULT_STRIDE = 25  # dense along a labelled line: the augmentation's crops and flips do the rest
DEFAULT_MIN_LABELLED = 0.25
NOT_VALIDATED = -1  # the fold of every window with --folds 1: no fold validates on it


def line_windows(amplitudes: np.ndarray, live: np.ndarray, labels: np.ndarray, stride: int, mutes: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One line (traces, samples) -> its windows (N, 101, 101) uint8 framed as segment.py's
    ``minmax``, their labels (N, 101, 101; no data unlabelled) and their (sample, trace) starts in the
    padded line. ``mutes``: as ``AmplitudeMap.mutes`` (False for a grey image)."""
    empty = sections.no_data(amplitudes, live, mutes)
    values = sections.filled_for_windows(amplitudes, empty).T  # samples vertical, as in the tiles
    images, layout = sections.windows(values, stride)
    cut, _ = sections.windows(np.where(empty, UNLABELLED, labels).T, stride)
    ys, xs = layout[2], layout[3]
    starts = np.array([(y, x) for y in ys for x in xs])
    return stretch(images), cut.astype(np.uint8), starts


def line_folds(lines: np.ndarray, n_folds: int, name) -> np.ndarray:
    """The fold (0..n_folds-1) of each labelled line: ``n_folds`` contiguous blocks in line order; with
    one fold, ``NOT_VALIDATED`` for every line (a run without validation)."""
    if n_folds < 1:
        raise SectionError(f"--folds {n_folds}: at least 1 (1: no validation; 2 or more: each fold validates on "
                           f"lines it did not train on)")
    if n_folds == 1:
        return np.full(len(lines), NOT_VALIDATED)
    if len(lines) < n_folds:
        raise SectionError(f"{name}: {len(lines)} labelled lines are too few for {n_folds} folds of whole lines "
                           f"(--folds 1 trains on them without validation)")
    order = np.argsort(lines, kind="stable")
    folds = np.empty(len(lines), int)
    folds[order] = np.arange(len(lines)) * n_folds // len(lines)
    return folds


def build(input_path, labels_path, n_folds: int = 2, label_lines=None, stride: int = DEFAULT_STRIDE,
          min_labelled: float = DEFAULT_MIN_LABELLED, iline_byte=None, xline_byte=None) -> dict:
    """The windows, their folds and a summary, checked and ready to write (``write``)."""
    sections.check_stride(stride)
    if not 0 < min_labelled <= 1:
        raise SectionError(f"--min-labelled {min_labelled}: a share of a window's pixels, within (0, 1]")
    with open_source(input_path, iline_byte, xline_byte) as src:
        labels = read_labels(labels_path, src, iline_byte, xline_byte)
        if label_lines is not None:
            labels = keep_lines(labels, src, label_lines, labels_path)
        chosen = labelled_lines(labels)
        folds_of = dict(zip(chosen, line_folds(np.asarray(src.line_numbers)[chosen], n_folds, labels_path)))
        ids, images, cut, lines, folds = [], [], [], [], []
        for k in chosen:
            number = int(src.line_numbers[k])
            windows, window_labels, starts = line_windows(src.line(k), src.live(k), labels[k], stride,
                                                          mutes=src.kind != "image")
            keep = (window_labels != UNLABELLED).mean(axis=(1, 2)) >= min_labelled
            ids += [f"line{number}_s{y}_t{x}" for y, x in starts[keep]]
            images.append(windows[keep])
            cut.append(window_labels[keep])
            lines += [number] * int(keep.sum())
            folds += [folds_of[k]] * int(keep.sum())
        summary = {"input": str(src.path), "labels": str(labels_path), "stride": stride,
                   "min_labelled": min_labelled, "folds": n_folds,
                   "label_lines": None if label_lines is None else [int(n) for n in label_lines],
                   "labelled_lines": [int(src.line_numbers[k]) for k in chosen], "windows": len(ids),
                   "window_norm": "minmax", "iline_byte": iline_byte, "xline_byte": xline_byte}
    for fold in range(n_folds if n_folds > 1 else 0):
        if fold not in folds:
            raise SectionError(f"{labels_path}: fold {fold}'s lines give no window with {min_labelled:g} of its "
                               f"pixels labelled")
    return {"ids": np.array(ids), "images": np.concatenate(images), "labels": np.concatenate(cut),
            "lines": np.array(lines), "folds": np.array(folds), "summary": summary}


def write(built: dict, out) -> Path:
    """The folder ``out`` (which must not exist or be empty), written whole."""
    out = Path(out).absolute()
    with building(out) as tmp:
        np.savez_compressed(tmp / "windows.npz", ids=built["ids"], images=built["images"], labels=built["labels"],
                            lines=built["lines"])
        rows = "".join(f"{i},{f},{n}\n" for i, f, n in zip(built["ids"], built["folds"], built["lines"]))
        (tmp / "folds.csv").write_text("id,fold,line\n" + rows)
        (tmp / "survey.json").write_text(json.dumps(built["summary"], indent=1))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salt_tf.seismic.survey_tiles",
                                     description="Windows of a survey and its labels, for train.py --survey.")
    parser.add_argument("--input", required=True, help="the survey: SEG-Y, .npy or image, as segment.py reads it")
    parser.add_argument("--labels", required=True, help=".npy or SEG-Y label volume in the survey's layout "
                        "(1 salt, 0 not salt, 255 not labelled), or top and base of salt per trace as salt_surfaces.csv")
    parser.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    parser.add_argument("--label-lines", help="keep only these inlines' labels, comma-separated (inline numbers "
                        "of a SEG-Y, indices of a .npy)")
    parser.add_argument("--folds", type=int, default=2, help="folds of whole labelled lines (default: 2; 1: "
                        "train on every labelled line, no validation)")
    parser.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                        help=f"step between windows along a line (default: {DEFAULT_STRIDE})")
    parser.add_argument("--min-labelled", type=float, default=DEFAULT_MIN_LABELLED,
                        help=f"skip windows with fewer of their pixels labelled (default: {DEFAULT_MIN_LABELLED})")
    parser.add_argument("--iline-byte", type=int, help="SEG-Y: trace header byte of the inline number")
    parser.add_argument("--xline-byte", type=int, help="SEG-Y: trace header byte of the crossline number")
    args = parser.parse_args(argv)
    try:
        lines = None if args.label_lines is None else [int(n) for n in args.label_lines.split(",")]
    except ValueError:
        print(f"error: --label-lines {args.label_lines}: expected line numbers separated by commas", file=sys.stderr)
        return 2
    try:
        built = build(args.input, args.labels, args.folds, lines, args.stride, args.min_labelled,
                      args.iline_byte, args.xline_byte)
        out = write(built, args.out)
    except (SectionError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    s = built["summary"]
    print(f"wrote {s['windows']} windows of {len(s['labelled_lines'])} labelled lines ({s['folds']} folds of whole "
          f"lines) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
