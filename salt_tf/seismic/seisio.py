"""Seismic inputs and outputs for whole sections: SEG-Y (segyio), NumPy .npy, grayscale images.

Every input is seen as a stack of lines (n_lines, n_traces, n_samples), segyio's cube layout: a 3-D
SEG-Y volume has one line per inline; a 2-D line, a 2-D .npy (traces, samples) or an image (rows =
samples, so its transpose) is one line. Lines are read one at a time, so a volume never has to fit
in memory; what is kept per trace is its position (8 bytes) and its CDP coordinates.

SEG-Y geometry comes from the trace headers, as surveys hold them (../shared/SEISMIC.md): each
trace's inline and crossline numbers (bytes 189/193 unless told otherwise) place it on the
inline x crossline grid, whatever the file's trace order (inline-sorted, crossline-sorted or none);
grid positions no trace fills (dead corners, ragged edges) are absent: ``Source.live`` says which.
A file is a 2-D line only when its headers say so: one inline number, one crossline number (a
"grid" one trace wide), or none at all, at the bytes read and at the other common positions (with
no bytes given); it is read in file order without flags, and ``Geometry.note`` says why. More than
one inline and crossline number and no grid is refused, naming what other common byte positions
would give; so is a file with no numbers at 189/193 whose numbers elsewhere form a 3-D grid.

Writing SEG-Y (results in an input's traces and headers; synthetic volumes and lines) is in
``salt_tf.seismic.seiswrite``.
"""
from __future__ import annotations

import mmap
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import segyio

from salt_tf.common.errors import SectionError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
SEGY_SUFFIXES = (".sgy", ".segy")

# Inline/crossline byte positions (1-based, 4-byte integers): SEG-Y rev 1's (segyio's defaults),
# then the commonest others in older and vendor files: field record/CDP and energy source/CDP trace.
DEFAULT_BYTES = (189, 193)
COMMON_BYTES = ((189, 193), (9, 21), (5, 17))
CDP, CDP_X, CDP_Y, COORDINATE_SCALAR = 21, 181, 185, 71
HEADER_BYTES = 240  # a trace header
# A 3-D grid must hold traces at this share of its inline x crossline positions at least: real
# outlines leave corners and edges empty, but numbers that are no grid (a 2-D line's shot and CDP
# numbers, say) fill a vanishing share of the positions they span.
MIN_FILL = 0.25
SAMPLE_FORMAT_BYTE = 3225  # the binary header's sample format code (2 bytes)
# The codes segyio decodes as they say (SEG-Y rev 2's table). Any other (0, left unset by some old
# writers; 4, fixed point with gain, long obsolete) it reads as 4-byte IBM float without a check:
# samples of another width or kind would be read as garbage, so such a file is refused.
SAMPLE_FORMATS = frozenset({1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 16})
# Where a trace header field starts (segyio reads inline/crossline numbers only at these).
HEADER_FIELDS = frozenset(int(field) for field in segyio.TraceField.enums())
# What trace numbers that make a file one 2-D line look like, and how the log says it.
LINE_REASONS = {"all zero": "no inline/crossline numbers", "one inline number": "one inline number",
                "one crossline number": "one crossline number (a grid one trace wide)"}


@dataclass(frozen=True)
class Geometry:
    """Where each trace of a SEG-Y sits: ``index[k, j]`` is the file's trace number of line k,
    position j (-1: no trace there)."""
    kind: str  # "3d" or "2d"
    bytes: tuple[int, int]  # the inline and crossline byte positions read
    line_numbers: np.ndarray  # inline numbers (one for a 2-D line: its number, 0 when it has none)
    trace_numbers: np.ndarray  # crossline numbers (a 2-D line's CDP or trace numbers)
    index: np.ndarray
    note: str = ""  # why a file was read as one 2-D line

    @property
    def absent(self) -> int:
        return int(np.count_nonzero(self.index < 0))


def _grid(inline: np.ndarray, xline: np.ndarray) -> np.ndarray | str:
    """The (inlines, crosslines) trace index of a 3-D grid, or why these numbers give none."""
    lines, li = np.unique(inline, return_inverse=True)
    traces, xi = np.unique(xline, return_inverse=True)
    if len(lines) < 2:
        return "all zero" if not inline.any() and not xline.any() else "one inline number"
    flat = li * len(traces) + xi
    cells, counts = np.unique(flat, return_counts=True)
    if len(cells) < len(flat):
        first = cells[np.argmax(counts > 1)]
        return (f"{len(flat) - len(cells)} traces repeat a position (e.g. inline {lines[first // len(traces)]}, "
                f"crossline {traces[first % len(traces)]})")
    if len(traces) < 2:  # every trace its own inline number: a line, one trace wide
        return "one crossline number"
    fill = len(flat) / (len(lines) * len(traces))
    if fill < MIN_FILL:
        return f"{len(flat)} traces fill only {fill:.1%} of the {len(lines)} x {len(traces)} positions their numbers span"
    index = np.full(len(lines) * len(traces), -1, np.int64)
    index[flat] = np.arange(len(flat))
    return index.reshape(len(lines), len(traces))


def _describe(f, pair: tuple[int, int]) -> str:
    inline, xline = f.attributes(pair[0])[:], f.attributes(pair[1])[:]
    grid = _grid(inline, xline)
    if isinstance(grid, str):
        return f"{pair[0]}/{pair[1]}: no grid ({grid})"
    return (f"{pair[0]}/{pair[1]}: {grid.shape[0]} inlines x {grid.shape[1]} crosslines, "
            f"{np.count_nonzero(grid >= 0) / grid.size:.0%} of positions filled")


def survey_geometry(f, name, iline_byte: int | None = None, xline_byte: int | None = None) -> Geometry:
    """The geometry of an open SEG-Y (segyio, ``ignore_geometry=True``) from its trace headers.

    ``None`` bytes mean SEG-Y rev 1's 189/193, with a check that a file whose numbers there make it
    one line has no 3-D grid at the other common positions either before it is taken as a 2-D line;
    bytes given explicitly are taken at their word."""
    explicit = iline_byte is not None or xline_byte is not None
    pair = tuple(d if b is None else int(b) for b, d in zip((iline_byte, xline_byte), DEFAULT_BYTES))
    for byte in pair:
        if not 1 <= byte <= HEADER_BYTES - 3:
            raise SectionError(f"header byte {byte}: must lie within 1..{HEADER_BYTES - 3}, the start of a "
                               f"4-byte field in the {HEADER_BYTES}-byte trace header")
        if byte not in HEADER_FIELDS:
            starts = ", ".join(map(str, sorted(b for b in HEADER_FIELDS if abs(b - byte) <= 8)))
            raise SectionError(f"header byte {byte}: no trace header field starts there (near it: {starts})")
    if pair[0] == pair[1]:
        raise SectionError(f"--iline-byte and --xline-byte are both {pair[0]}: they must differ")
    inline, xline = f.attributes(pair[0])[:], f.attributes(pair[1])[:]
    grid = _grid(inline, xline)
    others = [p for p in COMMON_BYTES if p != pair]
    if not isinstance(grid, str):
        return Geometry("3d", pair, np.unique(inline), np.unique(xline), grid)
    if grid not in LINE_REASONS:
        raise SectionError(f"{name}: inline/crossline numbers at bytes {pair[0]}/{pair[1]} give no grid: {grid}; "
                           f"other byte positions give {'; '.join(_describe(f, p) for p in others)} "
                           f"(choose with --iline-byte/--xline-byte)")
    if not explicit:  # a 3-D file must never be taken for one line
        found = [d for d in (_describe(f, p) for p in others) if "no grid" not in d]
        if found:
            raise SectionError(f"{name}: {LINE_REASONS[grid]} at bytes {pair[0]}/{pair[1]}, but bytes "
                               f"{'; '.join(found)}: give them with --iline-byte/--xline-byte (or give "
                               f"--iline-byte {pair[0]} --xline-byte {pair[1]} to read it as one 2-D line)")
    n = f.tracecount
    numbers = next((v for v in (xline, inline, f.attributes(CDP)[:]) if len(np.unique(v)) == n), np.arange(1, n + 1))
    number = xline[:1] if grid == "one crossline number" else inline[:1]
    note = f"read as one 2-D line of {n} traces in file order: {LINE_REASONS[grid]} at bytes {pair[0]}/{pair[1]}"
    if not explicit:
        note += f" and no 3-D grid at {', '.join(f'{a}/{b}' for a, b in others)}"
    return Geometry("2d", pair, number.copy(), np.asarray(numbers), np.arange(n)[None], note)


class Source:
    """A seismic input opened for reading line by line; use as a context manager."""

    kind: str  # "segy-3d", "segy-2d", "npy", "image"
    path: Path
    shape: tuple[int, int, int]  # (lines, traces, samples)
    layout: tuple[int, ...]  # the input's own array shape; outputs and true masks use it
    line_numbers: np.ndarray  # inline numbers (SEG-Y 3-D) or line indices
    trace_numbers: np.ndarray  # crossline numbers (SEG-Y 3-D), CDP numbers (2-D) or trace indices
    samples: np.ndarray  # each sample's time or depth (SEG-Y: its delay and interval) or index
    z_unit: str = "sample"

    def line(self, k: int) -> np.ndarray:  # (traces, samples), float32; absent traces NaN
        raise NotImplementedError

    def xline(self, j: int, lines: np.ndarray) -> np.ndarray:  # (len(lines), samples), float32
        raise NotImplementedError

    def live(self, k: int) -> np.ndarray:
        """Which traces of line k hold data (bool, traces)."""
        return np.ones(self.shape[1], bool)

    def xlive(self, j: int, lines: np.ndarray) -> np.ndarray:
        return np.ones(len(lines), bool)

    @property
    def absent(self) -> int:
        return 0

    def coordinates(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """CDP X and Y of the traces of line k (NaN where unknown)."""
        nan = np.full(self.shape[1], np.nan)
        return nan, nan.copy()

    def close(self) -> None:
        pass

    def release(self) -> None:
        """Drop pages read so far from memory (memory-mapped inputs); a no-op for the others."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ArraySource(Source):
    """A .npy (memory-mapped) or image, in the (lines, traces, samples) view."""

    def __init__(self, path: Path, kind: str, cube: np.ndarray, layout: tuple[int, ...], mapped=None):
        self.path, self.kind, self.cube, self.layout, self.mapped = path, kind, cube, tuple(layout), mapped
        self.shape = tuple(int(n) for n in cube.shape)
        self.line_numbers = np.arange(self.shape[0])
        self.trace_numbers = np.arange(self.shape[1])
        self.samples = np.arange(self.shape[2])

    def line(self, k):
        return np.asarray(self.cube[k], dtype=np.float32)

    def xline(self, j, lines):
        return np.asarray(self.cube[lines, j], dtype=np.float32)

    def release(self):
        release(self.mapped)


class SegySource(Source):
    """A SEG-Y file on its header geometry: traces gathered by position, not by file order."""

    def __init__(self, path: Path, iline_byte: int | None = None, xline_byte: int | None = None):
        self.path = path
        try:
            with warnings.catch_warnings():  # an unknown sample format: refused below, not read as IBM float
                warnings.filterwarnings("ignore", "Unknown trace value format", UserWarning)
                self.f = segyio.open(str(path), "r", ignore_geometry=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise SectionError(f"{path}: not a readable SEG-Y file ({err})") from None
        try:
            self._open(iline_byte, xline_byte)
        except BaseException:
            self.f.close()
            raise

    def _open(self, iline_byte, xline_byte):
        f, path = self.f, self.path
        if f.tracecount == 0 or len(f.samples) == 0:
            raise SectionError(f"{path}: SEG-Y holds no traces or no samples")
        code = int(f.bin[segyio.BinField.Format])
        if code not in SAMPLE_FORMATS:
            raise SectionError(f"{path}: sample format code {code} at byte {SAMPLE_FORMAT_BYTE} of the binary header is "
                               "no format that can be read (1 IBM float, 5 IEEE float, 2/3/8 integers, ...); if the "
                               "samples are IBM float, as in old files that leave the code 0, write 1 there")
        self.geometry = g = survey_geometry(f, path, iline_byte, xline_byte)
        self.kind = f"segy-{g.kind}"
        self.shape = (len(g.line_numbers), len(g.trace_numbers), len(f.samples))
        self.layout = self.shape if g.kind == "3d" else self.shape[1:]
        self.line_numbers = g.line_numbers if g.kind == "3d" else np.arange(1)
        self.trace_numbers = g.trace_numbers
        self.samples = np.asarray(f.samples, dtype=np.float64)
        self.z_unit = "ms or m: the file's sample interval and delay"
        scalar = f.attributes(COORDINATE_SCALAR)[:].astype(np.float64)
        factor = np.where(scalar < 0, 1.0 / np.abs(np.where(scalar == 0, 1, scalar)), np.where(scalar == 0, 1.0, scalar))
        self._xy = (f.attributes(CDP_X)[:] * factor, f.attributes(CDP_Y)[:] * factor)

    @property
    def absent(self):
        return self.geometry.absent

    def _read(self, index: np.ndarray) -> np.ndarray:
        """Traces by file index (-1: absent, NaN), read in runs of consecutive traces."""
        out = np.full((len(index), self.shape[2]), np.nan, np.float32)
        where = np.flatnonzero(index >= 0)
        order = np.argsort(index[where], kind="stable")
        wanted = index[where][order]
        cuts = np.flatnonzero(np.diff(wanted) != 1) + 1
        for run in np.split(np.arange(len(wanted)), cuts):
            if len(run):
                first = int(wanted[run[0]])
                out[where[order[run]]] = self.f.trace.raw[first : first + len(run)]
        return out

    def line(self, k):
        return self._read(self.geometry.index[k])

    def xline(self, j, lines):
        return self._read(self.geometry.index[lines, j])

    def live(self, k):
        return self.geometry.index[k] >= 0

    def xlive(self, j, lines):
        return self.geometry.index[lines, j] >= 0

    def coordinates(self, k):
        index = self.geometry.index[k]
        x, y = (np.where(index >= 0, v[np.maximum(index, 0)], np.nan) for v in self._xy)
        return x, y

    def close(self):
        self.f.close()


def open_source(path: str | Path, iline_byte: int | None = None, xline_byte: int | None = None) -> Source:
    """Open a SEG-Y, .npy or image for line-by-line reading; refuse what cannot be segmented."""
    path = Path(path)
    if not path.is_file():
        raise SectionError(f"{path}: input file not found")
    suffix = path.suffix.lower()
    if suffix in SEGY_SUFFIXES:
        return SegySource(path, iline_byte, xline_byte)
    if iline_byte is not None or xline_byte is not None:
        raise SectionError(f"{path}: --iline-byte/--xline-byte apply to SEG-Y input only")
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise SectionError(f"{path}: not a readable .npy array ({err})") from None
        if array.dtype.kind not in "iuf":
            raise SectionError(f"{path}: expected real amplitudes, found dtype {array.dtype}")
        if array.ndim == 2:
            return ArraySource(path, "npy", array[None], array.shape, array)
        if array.ndim == 3:
            return ArraySource(path, "npy", array, array.shape, array)
        raise SectionError(f"{path}: expected a 2-D section (traces, samples) or a 3-D volume "
                           f"(inlines, crosslines, samples), found shape {array.shape}")
    if suffix in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SectionError(f"{path}: OpenCV could not read this image")
        if image.ndim == 3:
            if image.shape[2] == 4:
                image = image[:, :, :3]
            if not (image == image[:, :, :1]).all():
                raise SectionError(f"{path}: expected a grayscale image, found {image.shape[2]} differing channels")
            image = image[:, :, 0]
        return ArraySource(path, "image", image.T[None], image.shape)  # rows are samples: (1, traces=columns, samples=rows)
    raise SectionError(f"{path}: unknown input type {suffix!r}; expected SEG-Y ({', '.join(SEGY_SUFFIXES)}), "
                       f".npy or an image ({', '.join(IMAGE_SUFFIXES)})")


def release(array) -> None:
    """Flush a memory-mapped array and drop its pages from this process's resident memory.

    Pages of a file mapping that were touched stay resident (and count as the process's memory)
    until the kernel needs them; dropping them after each line keeps a volume's footprint bounded
    by a few lines, whatever its length. The data is on disk: a later access reads it back.
    """
    mapped = getattr(array, "_mmap", None)  # numpy.memmap keeps its mmap.mmap here
    if mapped is None or not hasattr(mapped, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if array.flags.writeable:
        array.flush()
    mapped.madvise(mmap.MADV_DONTNEED)
