"""Writing SEG-Y: results into an input's traces and headers, and synthetic volumes and lines as
surveys come (``salt_tf.seismic.seisio`` reads them).

SEG-Y outputs hold exactly the input's traces (of the lines segmented), in its order, with its
text, binary and trace headers copied byte for byte, and IEEE-float samples (format 5) whatever
the input's sample format, so that probabilities are never narrowed into integers.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import segyio

from salt_tf.common.errors import SectionError
from salt_tf.seismic.seisio import HEADER_BYTES, SAMPLE_FORMAT_BYTE, SegySource, release


def write_segy_like(src: SegySource, dst_path: str | Path, data, lines: np.ndarray | None = None,
                    mapped=None, chunk: int = 4096) -> None:
    """A SEG-Y holding ``src``'s traces of the selected lines, in the file's order, with its
    headers copied byte for byte and ``data`` as IEEE-float samples (NaN, no data, written as 0).

    ``data[k, j]`` gives the samples of line k (k-th of ``lines``, indices into the source's lines,
    all by default) at position j, as ``Source.line`` orders them; it is read ``chunk`` traces at a
    time, so a memmap works (``mapped``: its memmap, whose pages are released after each chunk).
    """
    f, index = src.f, src.geometry.index
    chosen = np.arange(index.shape[0]) if lines is None else np.asarray(lines)
    out_line = np.full(index.shape[0], -1)
    out_line[chosen] = np.arange(len(chosen))
    line_of = np.empty(f.tracecount, np.int64)
    position = np.empty(f.tracecount, np.int64)
    k, j = np.nonzero(index >= 0)
    line_of[index[k, j]], position[index[k, j]] = out_line[k], j
    keep = np.flatnonzero(line_of >= 0)

    n_samples = len(f.samples)
    offset = 3600 + 3200 * f.ext_headers
    trace_bytes = HEADER_BYTES + n_samples * f.dtype.itemsize
    if os.path.getsize(src.path) != offset + f.tracecount * trace_bytes:
        raise SectionError(f"{src.path}: file size does not match {f.tracecount} traces of {n_samples} samples; "
                           f"cannot copy its trace headers")
    with open(src.path, "rb") as fin:
        head = bytearray(fin.read(offset))
    head[SAMPLE_FORMAT_BYTE - 1 : SAMPLE_FORMAT_BYTE + 1] = (5).to_bytes(2, "big")  # IEEE float
    out_type = np.dtype([("header", f"V{HEADER_BYTES}"), ("samples", ">f4", (n_samples,))])
    with open(dst_path, "wb") as fout:
        fout.write(head)
        fout.truncate(offset + len(keep) * out_type.itemsize)
    source = np.memmap(src.path, np.dtype([("header", f"V{HEADER_BYTES}"), ("samples", f"V{trace_bytes - HEADER_BYTES}")]),
                       mode="r", offset=offset, shape=(f.tracecount,))
    target = np.memmap(dst_path, out_type, mode="r+", offset=offset, shape=(len(keep),))
    for first in range(0, len(keep), chunk):
        picked = keep[first : first + chunk]
        target["header"][first : first + len(picked)] = source["header"][picked]
        samples = np.asarray(data[line_of[picked], position[picked]], np.float32)
        target["samples"][first : first + len(picked)] = np.nan_to_num(samples, nan=0.0)  # no data (mutes): 0
        for array in (target, source, mapped):
            release(array)
    target.flush()
    del target, source


def write_segy_volume(path: str | Path, cube: np.ndarray, first_inline: int = 1, first_xline: int = 1,
                      dt_us: int = 4000, spacing: float = 25.0, iline_byte: int = 189, xline_byte: int = 193,
                      order: str = "inline", sample_format: int = 5, live: np.ndarray | None = None,
                      seed: int = 0) -> None:
    """A post-stack 3-D SEG-Y from a cube (inlines, crosslines, samples), written as surveys come:
    inline/crossline numbers at the given bytes, traces in ``order`` ("inline", "crossline" sorted
    or "shuffled" with ``seed``), only the positions where ``live`` (bool (inlines, crosslines)) is
    true, samples in ``sample_format`` (1 IBM float, 2/3/8 4-, 2-, 1-byte integers rounded, 5 IEEE).
    CDP X/Y are stored in centimetres with coordinate scalar -100."""
    n_il, n_xl, n_samples = cube.shape
    live = np.ones((n_il, n_xl), bool) if live is None else np.asarray(live, bool)
    il, xl = np.nonzero(live)  # inline sorted
    if order == "crossline":
        sort = np.lexsort((il, xl))
        il, xl = il[sort], xl[sort]
    elif order == "shuffled":
        sort = np.random.default_rng(seed).permutation(len(il))
        il, xl = il[sort], xl[sort]
    elif order != "inline":
        raise ValueError(f"order {order!r}: expected inline, crossline or shuffled")
    dtype = {1: np.float32, 2: np.int32, 3: np.int16, 5: np.float32, 8: np.int8}[sample_format]
    spec = segyio.spec()
    spec.format = sample_format
    spec.samples = np.arange(n_samples) * dt_us / 1000.0
    spec.tracecount = len(il)
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "salt_tf synthetic 3-D volume",
                                                     2: f"post-stack, {order} order, inline/crossline at bytes {iline_byte}/{xline_byte}"})
        f.bin.update(hns=n_samples, hdt=dt_us, format=sample_format)
        for t, (i, j) in enumerate(zip(il, xl)):
            header = {segyio.su.cdp: int(i * n_xl + j + 1), segyio.su.tracl: t + 1, segyio.su.ns: n_samples,
                      segyio.su.dt: dt_us, segyio.su.scalco: -100,
                      segyio.su.cdpx: int(round(100 * (100000 + spacing * j))), segyio.su.cdpy: int(round(100 * (200000 + spacing * i)))}
            header.update({iline_byte: int(first_inline + i), xline_byte: int(first_xline + j)})
            f.header[t] = header
            samples = np.asarray(cube[i, j], np.float64)
            if np.dtype(dtype).kind == "i":
                limits = np.iinfo(dtype)
                samples = np.clip(np.rint(samples), limits.min, limits.max)
            f.trace[t] = samples.astype(dtype)


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
