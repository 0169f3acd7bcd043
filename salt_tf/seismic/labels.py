"""An interpreter's salt labels on a survey, read and checked before anything is written.

Labels come as interpreters keep them, and all become one uint8 array in the survey's
(lines, traces, samples) view: 1 salt, 0 not salt, ``UNLABELLED`` (255) not labelled, the value
every loss and metric leaves out (``salt_tf.model.losses``, ``salt_tf.tiles.metrics.split_labels``):

- a label volume or section in the survey's own layout: ``.npy`` of the survey's shape, or a SEG-Y
  on the survey's geometry (the same inline/crossline numbers), holding only 0, 1 and 255;
- top and base of salt per trace, as ``segment.py`` writes them (``salt_surfaces.csv``; the columns
  ``inline, crossline, top_sample, base_sample``): salt from top to base, not salt above and below
  on that trace; traces the CSV does not name are not labelled. So an interpreter corrects our
  surfaces and trains again.

``keep_lines`` keeps a few lines of a dense label volume (the "label a few lines" workflow).
Every problem is a ``SectionError`` naming the file and what is wrong. Pure NumPy.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from salt_tf.common.errors import SectionError
from salt_tf.seismic.seisio import SEGY_SUFFIXES, Source, open_source
from salt_tf.seismic.volumes import cube
from salt_tf.tiles.metrics import LABEL_VALUES, UNLABELLED

VALUES = f"1 salt, 0 not salt, {UNLABELLED} not labelled"
SURFACE_FIELDS = ("inline", "crossline", "top_sample", "base_sample")


def read_labels(path, src: Source, iline_byte: int | None = None, xline_byte: int | None = None) -> np.ndarray:
    """The labels in ``path`` (``.npy``, SEG-Y or a surfaces ``.csv``) as uint8 (lines, traces,
    samples) on ``src``'s geometry, pixels of absent traces unlabelled; refused when no live trace
    holds a label."""
    path = Path(path)
    if not path.is_file():
        raise SectionError(f"{path}: label file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        labels = _from_surfaces(path, src)
    elif suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise SectionError(f"{path}: not a readable .npy array ({err})") from None
        if array.shape != src.layout:
            raise SectionError(f"{path}: labels of shape {array.shape}, expected the survey's {src.layout}")
        labels = _checked_values(np.array(cube(array, src.kind)), path)
    elif suffix in SEGY_SUFFIXES:
        labels = _from_segy(path, src, iline_byte, xline_byte)
    else:
        raise SectionError(f"{path}: unknown label file type {suffix!r}; expected .npy, SEG-Y or a surfaces .csv")
    for k in range(src.shape[0]):
        labels[k, ~src.live(k)] = UNLABELLED  # nobody can label a trace that is not there
    if not (labels != UNLABELLED).any():
        raise SectionError(f"{path}: no label on any live trace of {src.path} ({VALUES})")
    return labels


def _checked_values(values: np.ndarray, path) -> np.ndarray:
    odd = ~np.isin(values, LABEL_VALUES)
    if odd.any():
        first = tuple(int(i) for i in np.argwhere(odd)[0])
        raise SectionError(f"{path}: {int(odd.sum())} labels are not {VALUES} (first {values[first]:g} "
                           f"at line, trace, sample {first})")
    return values.astype(np.uint8)


def _from_segy(path: Path, src: Source, iline_byte, xline_byte) -> np.ndarray:
    with open_source(path, iline_byte, xline_byte) as labels_src:
        same = (labels_src.shape == src.shape and np.array_equal(labels_src.line_numbers, src.line_numbers)
                and np.array_equal(labels_src.trace_numbers, src.trace_numbers))
        if not same:
            raise SectionError(f"{path}: labels on another geometry ({labels_src.shape[0]} lines x "
                               f"{labels_src.shape[1]} traces x {labels_src.shape[2]} samples) than the survey's "
                               f"({src.shape[0]} x {src.shape[1]} x {src.shape[2]}, or other line/trace numbers)")
        values = np.stack([np.nan_to_num(labels_src.line(k), nan=UNLABELLED) for k in range(src.shape[0])])
    return _checked_values(values, path)


def _from_surfaces(path: Path, src: Source) -> np.ndarray:
    """Salt between top and base (inclusive) on each trace the CSV names, not salt elsewhere on it."""
    labels = np.full(src.shape, UNLABELLED, np.uint8)
    line_of = {int(n): k for k, n in enumerate(_csv_line_numbers(src))}
    trace_of = {int(n): j for j, n in enumerate(src.trace_numbers)}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in SURFACE_FIELDS if c not in (reader.fieldnames or ())]
        if missing:
            raise SectionError(f"{path}: no column {', '.join(missing)}; expected salt_surfaces.csv's "
                               f"columns {', '.join(SURFACE_FIELDS)} (and others)")
        for row_number, row in enumerate(reader, start=2):
            where = f"{path} line {row_number}"
            try:
                inline, xline, top, base = (int(float(row[c])) for c in SURFACE_FIELDS)
            except (TypeError, ValueError):
                raise SectionError(f"{where}: expected whole numbers in {', '.join(SURFACE_FIELDS)}") from None
            if inline not in line_of or xline not in trace_of:
                raise SectionError(f"{where}: inline {inline}, crossline {xline} is not a trace of {src.path}")
            if not 0 <= top <= base < src.shape[2]:
                raise SectionError(f"{where}: top {top} and base {base} must satisfy 0 <= top <= base < "
                                   f"{src.shape[2]} (the survey's samples)")
            trace = labels[line_of[inline], trace_of[xline]]
            if (trace != UNLABELLED).any():
                raise SectionError(f"{where}: inline {inline}, crossline {xline} appears twice")
            trace[:] = 0
            trace[top : base + 1] = 1
    return labels


def _csv_line_numbers(src: Source) -> np.ndarray:
    """The inline numbers segment.py writes in salt_surfaces.csv (a 2-D SEG-Y line: its own number)."""
    if src.kind == "segy-2d":
        return np.asarray(src.geometry.line_numbers[:1])
    return np.asarray(src.line_numbers)


def keep_lines(labels: np.ndarray, src: Source, numbers, name) -> np.ndarray:
    """``labels`` with only the lines numbered ``numbers`` (inline numbers of a SEG-Y, indices of a
    .npy) kept, every other line unlabelled; each kept line must hold a label."""
    index = {int(n): k for k, n in enumerate(src.line_numbers)}
    unknown = [n for n in numbers if int(n) not in index]
    if unknown:
        raise SectionError(f"--label-lines {','.join(str(n) for n in numbers)}: {', '.join(str(n) for n in unknown)} "
                           f"not among {src.path}'s lines {src.line_numbers.min()}..{src.line_numbers.max()}")
    kept = np.full_like(labels, UNLABELLED)
    for n in numbers:
        k = index[int(n)]
        if not (labels[k] != UNLABELLED).any():
            raise SectionError(f"{name}: line {n} holds no label")
        kept[k] = labels[k]
    return kept


def labelled_lines(labels: np.ndarray) -> np.ndarray:
    """Indices of the lines that hold at least one label."""
    return np.flatnonzero((labels != UNLABELLED).reshape(len(labels), -1).any(axis=1))
