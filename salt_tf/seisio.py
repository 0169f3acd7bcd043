"""Seismic inputs and outputs for whole sections: SEG-Y (segyio), NumPy .npy, grayscale images.

Every input is seen as a stack of lines (n_lines, n_traces, n_samples), segyio's cube layout: a 3-D
SEG-Y volume has one line per inline; a 2-D line, a SEG-Y without regular geometry, a 2-D .npy
(traces, samples) or an image (rows = samples, so its transpose) is one line. Lines are read one at a
time (``f.iline[n]``, ``f.xline[n]``, a memory-mapped .npy), so a volume never has to fit in memory.

SEG-Y outputs copy the source's layout as segyio's docs do: ``segyio.tools.metadata(src)``, then
``segyio.create``, copying the text, binary and trace headers before the samples.
"""
from __future__ import annotations

import mmap
from pathlib import Path

import cv2
import numpy as np
import segyio

from salt_tf.sections import SectionError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
SEGY_SUFFIXES = (".sgy", ".segy")


class Source:
    """A seismic input opened for reading line by line; use as a context manager."""

    kind: str  # "segy-3d", "segy-2d", "npy", "image"
    path: Path
    shape: tuple[int, int, int]  # (lines, traces, samples)
    layout: tuple[int, ...]  # the input's own array shape; outputs and true masks use it
    line_numbers: np.ndarray  # inline numbers (SEG-Y 3-D) or line indices

    def line(self, k: int) -> np.ndarray:  # (traces, samples), float32
        raise NotImplementedError

    def xline(self, j: int, lines: np.ndarray) -> np.ndarray:  # (len(lines), samples), float32
        raise NotImplementedError

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

    def line(self, k):
        return np.asarray(self.cube[k], dtype=np.float32)

    def xline(self, j, lines):
        return np.asarray(self.cube[lines, j], dtype=np.float32)

    def release(self):
        release(self.mapped)


class SegySource(Source):
    def __init__(self, path: Path):
        self.path = path
        try:
            self.f = segyio.open(str(path), "r", ignore_geometry=False)
            self.kind = "segy-3d"
        except (RuntimeError, ValueError, OSError) as err:
            try:  # no inline/crossline geometry: a 2-D line, or traces in no regular order
                self.f = segyio.open(str(path), "r", ignore_geometry=True)
            except (RuntimeError, ValueError, OSError):
                raise SectionError(f"{path}: not a readable SEG-Y file ({err})") from None
            self.kind = "segy-2d"
        f = self.f
        n_samples = len(f.samples)
        if f.tracecount == 0 or n_samples == 0:
            self.close()
            raise SectionError(f"{path}: SEG-Y holds no traces or no samples")
        if self.kind == "segy-3d":
            self.shape = (len(f.ilines), len(f.xlines), n_samples)
            self.line_numbers = np.asarray(f.ilines)
            self.layout = self.shape
        else:
            self.shape = (1, f.tracecount, n_samples)
            self.layout = self.shape[1:]
            self.line_numbers = np.arange(1)

    def line(self, k):
        if self.kind == "segy-3d":
            return np.asarray(self.f.iline[self.f.ilines[k]], dtype=np.float32)
        return np.asarray(self.f.trace.raw[:], dtype=np.float32)

    def xline(self, j, lines):
        return np.asarray(self.f.xline[self.f.xlines[j]], dtype=np.float32)[lines]

    def close(self):
        self.f.close()


def open_source(path: str | Path) -> Source:
    """Open a SEG-Y, .npy or image for line-by-line reading; refuse what cannot be segmented."""
    path = Path(path)
    if not path.is_file():
        raise SectionError(f"{path}: input file not found")
    suffix = path.suffix.lower()
    if suffix in SEGY_SUFFIXES:
        return SegySource(path)
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


def write_segy_like(src_path: str | Path, dst_path: str | Path, data, lines: np.ndarray | None = None,
                    mapped=None) -> None:
    """A SEG-Y with ``src_path``'s geometry and headers and ``data`` as IEEE-float samples.

    ``data[k, t]`` gives the samples of line k (k-th of ``lines``, the selected inline indices, all
    by default), trace t, as ``Source.line`` ordered them; read one trace at a time, so a memmap
    works (``mapped``: its memmap, whose pages are released every few thousand traces).
    """
    with _open_segy(src_path) as src:
        spec = segyio.tools.metadata(src)
        spec.format = 5  # IEEE float: probabilities, whatever the input's sample format
        if src.unstructured:
            line_of, xline_of = np.zeros(src.tracecount, np.int64), np.arange(src.tracecount)
        else:
            # Each trace's line and crossline position, from its header (4 + 4 bytes a trace).
            il_pos = {n: k for k, n in enumerate(src.ilines)}
            xl_pos = {n: j for j, n in enumerate(src.xlines)}
            chosen = np.arange(len(src.ilines)) if lines is None else np.asarray(lines)
            out_line = np.full(len(src.ilines), -1)
            out_line[chosen] = np.arange(len(chosen))
            line_of = out_line[[il_pos[n] for n in src.attributes(segyio.TraceField.INLINE_3D)[:]]]
            xline_of = np.array([xl_pos[n] for n in src.attributes(segyio.TraceField.CROSSLINE_3D)[:]])
            spec.ilines = np.asarray(src.ilines)[chosen]
        spec.tracecount = int(np.count_nonzero(line_of >= 0))
        with segyio.create(str(dst_path), spec) as dst:
            for i in range(1 + src.ext_headers):
                dst.text[i] = src.text[i]
            dst.bin = src.bin
            dst.bin.update(format=5)
            out_t = 0
            for t in np.flatnonzero(line_of >= 0):
                dst.header[out_t] = src.header[int(t)]
                dst.trace[out_t] = np.asarray(data[line_of[t], xline_of[t]], dtype=np.float32)
                out_t += 1
                if out_t % 4096 == 0:
                    release(mapped)


def _open_segy(path):
    try:
        return segyio.open(str(path), "r", ignore_geometry=False)
    except (RuntimeError, ValueError):
        return segyio.open(str(path), "r", ignore_geometry=True)


def write_segy_volume(path: str | Path, cube: np.ndarray, first_inline: int = 1, first_xline: int = 1,
                      dt_us: int = 4000, spacing: float = 25.0) -> None:
    """A post-stack 3-D SEG-Y (inline sorted) from a cube (inlines, crosslines, samples)."""
    n_il, n_xl, n_samples = cube.shape
    spec = segyio.spec()
    spec.sorting = segyio.TraceSortingFormat.INLINE_SORTING
    spec.format = 5
    spec.samples = np.arange(n_samples) * dt_us / 1000.0
    spec.ilines = np.arange(first_inline, first_inline + n_il)
    spec.xlines = np.arange(first_xline, first_xline + n_xl)
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "salt_tf synthetic 3-D volume", 2: "post-stack, inline sorted"})
        f.bin.update(hns=n_samples, hdt=dt_us, format=5)
        t = 0
        for i, il in enumerate(spec.ilines):
            for j, xl in enumerate(spec.xlines):
                f.header[t] = {segyio.su.iline: int(il), segyio.su.xline: int(xl), segyio.su.cdp: t + 1,
                               segyio.su.cdpx: int(100000 + spacing * j), segyio.su.cdpy: int(200000 + spacing * i),
                               segyio.su.ns: n_samples, segyio.su.dt: dt_us, segyio.su.tracl: t + 1}
                f.trace[t] = np.asarray(cube[i, j], dtype=np.float32)
                t += 1


def write_segy_line(path: str | Path, section: np.ndarray, dt_us: int = 4000, spacing: float = 12.5) -> None:
    """A 2-D SEG-Y line (no inline/crossline geometry) from a section (traces, samples)."""
    n_traces, n_samples = section.shape
    spec = segyio.spec()
    spec.format = 5
    spec.samples = np.arange(n_samples) * dt_us / 1000.0
    spec.tracecount = n_traces
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "salt_tf synthetic 2-D line"})
        f.bin.update(hns=n_samples, hdt=dt_us, format=5)
        for t in range(n_traces):
            f.header[t] = {segyio.su.cdp: t + 1, segyio.su.tracl: t + 1, segyio.su.ns: n_samples,
                           segyio.su.dt: dt_us, segyio.su.cdpx: int(100000 + spacing * t), segyio.su.cdpy: 200000}
            f.trace[t] = np.asarray(section[t], dtype=np.float32)
