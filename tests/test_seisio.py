"""salt_tf/seisio.py: SEG-Y volumes and lines survive the round trip (geometry, text, binary and
trace headers, samples); .npy and images are read in the (lines, traces, samples) view."""
import cv2
import numpy as np
import pytest
import segyio

from salt_tf.sections import SectionError
from salt_tf.seisio import open_source, write_segy_like, write_segy_line, write_segy_volume


@pytest.fixture
def cube():
    return np.random.default_rng(0).normal(0, 500, (5, 7, 30)).astype(np.float32)


def test_volume_reads_line_by_line_and_crossline_by_crossline(tmp_path, cube):
    write_segy_volume(tmp_path / "v.sgy", cube, first_inline=100, first_xline=20)
    with open_source(tmp_path / "v.sgy") as src:
        assert src.kind == "segy-3d" and src.shape == (5, 7, 30) and src.layout == (5, 7, 30)
        assert list(src.line_numbers) == [100, 101, 102, 103, 104]
        np.testing.assert_array_equal(src.line(2), cube[2])
        np.testing.assert_array_equal(src.xline(3, np.array([1, 4])), cube[[1, 4], 3])


@pytest.mark.parametrize("lines", [None, np.array([1, 2, 3])])
def test_output_segy_keeps_geometry_and_headers_with_new_samples(tmp_path, cube, lines):
    write_segy_volume(tmp_path / "v.sgy", cube, first_inline=100, first_xline=20)
    chosen = np.arange(5) if lines is None else lines
    probs = np.random.default_rng(1).uniform(0, 1, (len(chosen), 7, 30)).astype(np.float16)
    write_segy_like(tmp_path / "v.sgy", tmp_path / "p.sgy", probs, lines=lines)
    with segyio.open(tmp_path / "v.sgy") as src, segyio.open(tmp_path / "p.sgy") as out:
        assert list(out.ilines) == list(src.ilines[chosen]) and list(out.xlines) == list(src.xlines)
        assert list(out.samples) == list(src.samples) and out.sorting == src.sorting
        assert out.text[0] == src.text[0]
        assert out.bin[segyio.BinField.Samples] == 30 and out.bin[segyio.BinField.Format] == 5
        assert out.bin[segyio.BinField.Interval] == src.bin[segyio.BinField.Interval]
        first = chosen[0] * 7  # inline sorted: the first kept trace of the source
        for t in range(out.tracecount):
            assert out.header[t] == src.header[first + t]
        np.testing.assert_array_equal(segyio.tools.cube(out), probs.astype(np.float32))


def test_line_without_geometry_is_one_section(tmp_path):
    section = np.random.default_rng(2).normal(0, 1, (40, 25)).astype(np.float32)
    write_segy_line(tmp_path / "l.sgy", section)
    with open_source(tmp_path / "l.sgy") as src:
        assert src.kind == "segy-2d" and src.shape == (1, 40, 25) and src.layout == (40, 25)
        np.testing.assert_array_equal(src.line(0), section)
    write_segy_like(tmp_path / "l.sgy", tmp_path / "p.sgy", section[None] * 0 + 0.25)
    with segyio.open(tmp_path / "l.sgy", ignore_geometry=True) as src, \
            segyio.open(tmp_path / "p.sgy", ignore_geometry=True) as out:
        assert out.tracecount == 40 and all(out.header[t] == src.header[t] for t in range(40))
        assert np.all(out.trace.raw[:] == 0.25)


def test_npy_and_image_layouts(tmp_path):
    section = np.arange(30 * 20, dtype=np.float32).reshape(30, 20)  # (traces, samples)
    np.save(tmp_path / "s.npy", section)
    with open_source(tmp_path / "s.npy") as src:
        assert src.shape == (1, 30, 20) and src.layout == (30, 20)
        np.testing.assert_array_equal(src.line(0), section)
    image = np.random.default_rng(3).integers(0, 256, (20, 30), dtype=np.uint8)  # rows = samples
    cv2.imwrite(str(tmp_path / "s.png"), np.dstack([image] * 3))
    with open_source(tmp_path / "s.png") as src:
        assert src.kind == "image" and src.shape == (1, 30, 20) and src.layout == (20, 30)
        np.testing.assert_array_equal(src.line(0), image.T)


@pytest.mark.parametrize("name, content, message", [
    ("junk.sgy", b"not seismic at all" * 300, "not a readable SEG-Y file"),
    ("junk.npy", b"\x93NUMPY garbage", "not a readable .npy array"),
    ("text.npy", None, "expected real amplitudes"),
    ("colour.png", None, "expected a grayscale image"),
    ("data.csv", b"1,2,3", "unknown input type '.csv'"),
    ("missing.sgy", False, "input file not found"),
])
def test_unreadable_inputs_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if name == "text.npy":
        np.save(path, np.array([["a", "b"]]))
    elif name == "colour.png":
        cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    elif content:
        path.write_bytes(content)
    with pytest.raises(SectionError, match=f"{name}: {message}"):
        open_source(path)
