"""salt_tf/seismic/seisio.py: SEG-Y volumes and lines survive the round trip (geometry, text, binary and
trace headers, samples); .npy and images are read in the (lines, traces, samples) view."""
import cv2
import numpy as np
import pytest
import segyio

from salt_tf.common.errors import SectionError
from salt_tf.seismic.seisio import open_source
from salt_tf.seismic.seiswrite import write_segy_like, write_segy_line, write_segy_volume


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
    with open_source(tmp_path / "v.sgy") as src:
        write_segy_like(src, tmp_path / "p.sgy", probs, lines=lines)
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
        write_segy_like(src, tmp_path / "p.sgy", section[None] * 0 + 0.25)
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


# --- SEG-Y as surveys come: header geometry, absent traces, any order, any sample format ----------

SURVEYS = {  # name: write_segy_volume options
    "regular": {},
    "dead corner and ragged edge": {"live": "ragged"},
    "inline/crossline at bytes 9/21": {"iline_byte": 9, "xline_byte": 21},
    "crossline sorted": {"order": "crossline"},
    "shuffled": {"order": "shuffled", "live": "ragged"},
    "2-byte integers": {"sample_format": 3},
    "4-byte integers": {"sample_format": 2},
    "1-byte integers": {"sample_format": 8},
    "IBM float": {"sample_format": 1},
}


def ragged(shape):
    live = np.ones(shape, bool)
    live[:2, :3] = False  # a dead corner
    live[-1, shape[1] - 2:] = False  # a ragged edge
    return live


@pytest.mark.parametrize("name", SURVEYS)
def test_survey_variants_read_on_their_grid(tmp_path, cube, name):
    options = dict(SURVEYS[name])
    live = ragged(cube.shape[:2]) if options.pop("live", None) else np.ones(cube.shape[:2], bool)
    values = cube / 20 if options.get("sample_format") == 8 else cube  # 1-byte integers hold +-127
    write_segy_volume(tmp_path / "v.sgy", values, first_inline=100, first_xline=20, live=live, **options)
    with open_source(tmp_path / "v.sgy", options.get("iline_byte"), options.get("xline_byte")) as src:
        assert src.kind == "segy-3d" and src.shape == (5, 7, 30) and src.absent == np.count_nonzero(~live)
        assert list(src.line_numbers) == [100, 101, 102, 103, 104] and list(src.trace_numbers) == list(range(20, 27))
        got = np.stack([src.line(k) for k in range(5)])
        quantum = 0.5 if options.get("sample_format") in (2, 3, 8) else 1e-3 * np.abs(values).max()
        np.testing.assert_allclose(got[live], values[live], atol=quantum)
        assert np.isnan(got[~live]).all()
        assert np.array_equal(np.stack([src.live(k) for k in range(5)]), live)
        xl = src.xline(4, np.arange(5))
        np.testing.assert_array_equal(np.nan_to_num(xl), np.nan_to_num(got[:, 4]))
        x, y = src.coordinates(1)  # centimetres with coordinate scalar -100: metres back
        expected_x = np.where(live[1], 100000 + 25.0 * np.arange(7), np.nan)
        np.testing.assert_allclose(x, expected_x)
        np.testing.assert_allclose(y[live[1]], 200025.0)


@pytest.mark.parametrize("order", ["inline", "shuffled"])
def test_output_holds_exactly_the_inputs_traces_in_its_order_as_ieee_float(tmp_path, cube, order):
    live = ragged(cube.shape[:2])
    write_segy_volume(tmp_path / "v.sgy", cube, live=live, order=order, sample_format=3)
    probs = np.random.default_rng(1).uniform(0, 1, (4, 7, 30)).astype(np.float16)
    with open_source(tmp_path / "v.sgy") as src:
        write_segy_like(src, tmp_path / "p.sgy", probs, lines=np.arange(1, 5))
    with segyio.open(tmp_path / "v.sgy", ignore_geometry=True) as a, segyio.open(tmp_path / "p.sgy", ignore_geometry=True) as b:
        kept = np.flatnonzero(a.attributes(189)[:] != 1)  # inline 1 was not selected
        assert b.tracecount == len(kept) and b.bin[segyio.BinField.Format] == 5 and b.dtype == np.float32
        assert b.text[0] == a.text[0]
        for t, s in enumerate(kept):
            assert b.header[t] == a.header[int(s)]
            i, j = a.header[int(s)][189] - 2, a.header[int(s)][193] - 1
            np.testing.assert_array_equal(b.trace[t], probs[i, j].astype(np.float32))


def test_one_inline_number_or_none_is_a_2d_line(tmp_path):
    section = np.random.default_rng(2).normal(0, 1, (1, 40, 25)).astype(np.float32)
    write_segy_volume(tmp_path / "one.sgy", section, first_inline=7)  # one inline number, crosslines 1..40
    with open_source(tmp_path / "one.sgy") as src:
        assert src.kind == "segy-2d" and src.shape == (1, 40, 25) and list(src.trace_numbers) == list(range(1, 41))


def test_many_inline_numbers_without_a_grid_are_refused_naming_the_alternatives(tmp_path, cube):
    write_segy_volume(tmp_path / "v.sgy", cube, iline_byte=189, xline_byte=17)  # crossline numbers elsewhere
    with pytest.raises(SectionError) as err:
        open_source(tmp_path / "v.sgy")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'v.sgy'}: inline/crossline numbers at bytes 189/193 give no grid: "
                              "30 traces repeat a position (e.g. inline 1, crossline 0)")
    assert "9/21: no grid" in message and "5/17: no grid" in message and "\n" not in message
    with open_source(tmp_path / "v.sgy", 189, 17) as src:  # the right bytes read it
        assert src.kind == "segy-3d" and src.shape == (5, 7, 30)


def test_a_grid_at_other_bytes_is_named_not_read_as_one_long_line(tmp_path, cube):
    write_segy_volume(tmp_path / "v.sgy", cube, iline_byte=9, xline_byte=21)
    with pytest.raises(SectionError, match=r"v.sgy: no inline/crossline numbers at bytes 189/193, but bytes "
                                           r"9/21: 5 inlines x 7 crosslines, 100% of positions filled"):
        open_source(tmp_path / "v.sgy")
    with open_source(tmp_path / "v.sgy", 189, 193) as src:  # explicit bytes are taken at their word
        assert src.kind == "segy-2d" and src.shape == (1, 35, 30)


@pytest.mark.parametrize("iline, xline, message", [(0, 193, "header byte 0: must lie within 1..237"),
                                                   (189, 238, "header byte 238"), (21, 21, "both 21: they must differ")])
def test_bad_header_bytes_are_refused(tmp_path, cube, iline, xline, message):
    write_segy_volume(tmp_path / "v.sgy", cube)
    with pytest.raises(SectionError, match=message):
        open_source(tmp_path / "v.sgy", iline, xline)


def test_header_bytes_are_for_segy_only(tmp_path, cube):
    np.save(tmp_path / "v.npy", cube)
    with pytest.raises(SectionError, match="v.npy: --iline-byte/--xline-byte apply to SEG-Y input only"):
        open_source(tmp_path / "v.npy", 9, 21)


def test_one_crossline_number_is_a_2d_line_along_the_inline_numbers(tmp_path):
    line = np.random.default_rng(3).normal(0, 1, (40, 1, 25)).astype(np.float32)  # 40 inlines, one crossline
    write_segy_volume(tmp_path / "one.sgy", line, first_inline=11)
    with open_source(tmp_path / "one.sgy") as src:
        assert src.kind == "segy-2d" and src.shape == (1, 40, 25)
        assert list(src.trace_numbers) == list(range(11, 51))
        assert "one crossline number" in src.geometry.note
        np.testing.assert_array_equal(src.line(0), line[:, 0])


# --- real files (../shared/realdata/small_real_segy, read in place) ----------------------------

def test_the_usgs_2d_line_reads_without_flags_as_the_line_it_is(realdata_dir):
    # 534 traces, IBM float, 1,501 samples: zeros at 189/193 and 17, trace numbers at 1 and 5, CDP
    # 101.. at 21, field records at 9: bytes 5/17 make a "grid" of 534 inlines x 1 crossline.
    path = realdata_dir / "small_real_segy" / "31_81_PR.sgy"
    with open_source(path) as src:
        assert src.kind == "segy-2d" and src.shape == (1, 534, 1501) and src.absent == 0
        assert list(src.trace_numbers[:3]) == [101, 102, 103]  # the CDP numbers (byte 21)
        assert src.geometry.note == ("read as one 2-D line of 534 traces in file order: no inline/crossline "
                                     "numbers at bytes 189/193 and no 3-D grid at 9/21, 5/17")
        with segyio.open(path, ignore_geometry=True) as f:
            np.testing.assert_array_equal(src.line(0)[[0, 300, 533]], f.trace.raw[:][[0, 300, 533]])


@pytest.mark.parametrize("name, shape", [("F3_very_small.sgy", (11, 11, 463)), ("segyio_f3.sgy", (23, 18, 75))])
def test_the_f3_crops_read_as_the_volumes_they_are(realdata_dir, name, shape):
    with open_source(realdata_dir / "small_real_segy" / name) as src:
        assert src.kind == "segy-3d" and src.shape == shape and src.absent == 0 and not src.geometry.note
        assert np.isfinite(src.line(shape[0] - 1)).all()
