"""The input as segment.py opens it (the lines chosen, the true mask) and the memory-mapped output
volumes it fills, both seen as (lines, traces, samples): shared by segmentation and its deliverables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salt_tf.common.errors import SectionError
from salt_tf.seismic import sections
from salt_tf.seismic.seisio import Source, open_source, release


def select_lines(src: Source, lines: tuple[int, int] | None) -> np.ndarray:
    numbers = np.asarray(src.line_numbers)
    if lines is None:
        return np.arange(len(numbers))
    first, last = lines
    if src.shape[0] == 1:
        raise SectionError(f"{src.path}: --lines needs a 3-D volume; this input is one 2-D section")
    chosen = np.flatnonzero((numbers >= first) & (numbers <= last))
    if first > last or first < numbers.min() or last > numbers.max() or not len(chosen):
        raise SectionError(f"{src.path}: inline range {first}..{last} outside the volume's inlines "
                           f"{numbers.min()}..{numbers.max()}")
    return chosen


@dataclass
class Input:
    src: Source
    chosen: np.ndarray  # indices of the lines to segment
    truth: np.ndarray | None  # the true mask in the (lines, traces, samples) view, if given

    @property
    def name(self) -> str:
        return str(self.src.path)

    def label(self, k: int) -> str:
        return f"line {self.src.line_numbers[k]}"


def open_input(input_path, direction: str, lines, truth, iline_byte=None, xline_byte=None) -> Input:
    """Open the input on its geometry and refuse what cannot be segmented, before anything is written."""
    src = open_source(input_path, iline_byte, xline_byte)
    try:
        chosen = select_lines(src, lines)
        if direction != "inline" and src.shape[0] == 1:
            raise SectionError(f"{src.path}: --direction {direction} needs a 3-D volume; this input is one 2-D section")
        sections.check_side(src.shape[2], "samples", src.path)
        sections.check_side(src.shape[1], "traces", src.path)
        if direction != "inline":
            sections.check_side(len(chosen), "inlines", src.path)
        known = None
        if truth is not None:
            try:
                known = np.load(truth, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise SectionError(f"{truth}: cannot read the true mask ({err})") from None
            if known.shape != src.layout:
                raise SectionError(f"{truth}: true mask of shape {known.shape}, expected the input's {src.layout}")
            known = cube(known, src.kind)
    except BaseException:
        src.close()
        raise
    return Input(src, chosen, known)


class Volumes:
    """The memory-mapped outputs in the temporary folder, in the input's layout and as
    (lines, traces, samples) views."""

    def __init__(self, folder: Path, inp: Input):
        layout = inp.src.layout
        shape = (len(inp.chosen),) + layout[1:] if len(layout) == 3 else layout
        self.files = {name: np.lib.format.open_memmap(folder / f"{name}.npy", "w+", dtype, shape)
                      for name, dtype in (("probability", np.float16), ("uncertainty", np.float16),
                                          ("mask", np.uint8), ("bodies", np.int32))}
        self.cubes = {name: cube(f, inp.src.kind) for name, f in self.files.items()}

    def __getitem__(self, name):
        return self.cubes[name]

    def release(self):
        for f in self.files.values():
            release(f)



def cube(array, kind: str):
    """A (lines, traces, samples) view of an output/truth array in the input's layout."""
    if kind == "image":
        return array.T[None]
    if array.ndim == 2:
        return array[None]
    return array
