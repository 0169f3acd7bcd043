"""salt_tf/seismic/sections.py: window layout, the weight window, exact blending for an identity model,
no seams, blending beats non-overlapping tiling on the synthetic section, the amplitude map."""
import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salt_tf.common.errors import SectionError
from salt_tf.run import tile_stats
from salt_tf.seismic import sections
from salt_tf.seismic.sections import TILE
from salt_tf.seismic.synthetic import make_volume


def identity(windows):
    return windows.astype(np.float32) / 255.0


@settings(max_examples=60, deadline=None)
@given(length=st.integers(sections.MIN_SIDE, 400), stride=st.integers(1, TILE))
def test_windows_cover_the_padded_axis_and_the_section_sits_inside(length, stride):
    starts, before, after = sections.starts(length, stride)
    padded = before + length + after
    assert starts[0] == 0 and starts[-1] + TILE == padded
    assert np.all(np.diff(starts) == stride)
    assert before >= 0 and after >= 0 and before < TILE


def test_weight_window_is_positive_symmetric_and_peaks_in_the_middle():
    w = sections.weight_window()
    assert w.shape == (TILE, TILE) and w.min() > 0
    assert np.allclose(w, w[::-1]) and np.allclose(w, w[:, ::-1]) and np.allclose(w, w.T)
    assert w[TILE // 2, TILE // 2] == w.max() and w[0, 0] < 0.01 * w.max()


@settings(max_examples=25, deadline=None)
@given(height=st.integers(sections.MIN_SIDE, 260), width=st.integers(sections.MIN_SIDE, 260),
       stride=st.sampled_from([17, 33, 50, 64, 101]), seed=st.integers(0, 2**31))
def test_identity_model_blends_back_to_the_section_exactly_edges_included(height, width, stride, seed):
    grey = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    out = sections.segment_section(grey, identity, stride)
    assert out.shape == grey.shape
    np.testing.assert_allclose(out, grey / 255.0, rtol=0, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(height=st.integers(sections.MIN_SIDE, 230), width=st.integers(sections.MIN_SIDE, 230),
       stride=st.sampled_from([33, 50, 101]), margin=st.sampled_from([1, 25, 50, 100]), seed=st.integers(0, 2**31))
def test_windows_with_context_are_the_section_around_the_same_centres_and_blend_back_exactly(height, width, stride,
                                                                                             margin, seed):
    """A run that reads with context (report.json's ``context``) gets each window with ``margin`` pixels
    of its section around the centre the window alone would have (reflected beyond the edges, as the
    section is padded), and only the centres are blended."""
    grey = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    alone, layout = sections.windows(grey, stride)
    wide, wide_layout = sections.windows(grey, stride, margin)
    side = TILE + 2 * margin
    assert wide.shape == (len(alone), side, side)
    assert wide_layout[:2] == layout[:2] and wide_layout[4:] == layout[4:]
    assert all(np.array_equal(a, b) for a, b in zip(wide_layout[2:4], layout[2:4]))
    np.testing.assert_array_equal(wide[:, margin : margin + TILE, margin : margin + TILE], alone)
    _, _, ys, xs, top, left = layout
    pad = margin + 3 * TILE
    ref = np.pad(grey, pad, mode="reflect")
    for k, (y, x) in enumerate([(y, x) for y in ys for x in xs]):
        y0, x0 = y - top - margin + pad, x - left - margin + pad
        np.testing.assert_array_equal(wide[k], ref[y0 : y0 + side, x0 : x0 + side])
    seen = []

    def centre_identity(windows):
        seen.append(windows.shape[1:])
        return identity(windows)

    out = sections.segment_section(grey, centre_identity, stride, margin=margin)
    assert seen == [(side, side)]
    np.testing.assert_allclose(out, grey / 255.0, rtol=0, atol=1e-6)


def test_a_model_given_context_reads_what_lies_beyond_its_window():
    """Salt beside a window's centre, outside the window alone: a stand-in that calls a centre salt when
    its window holds any bright pixel finds it only with context."""
    grey = np.zeros((101, 303), np.uint8)
    grey[:, 240:] = 255  # bright beyond 40 px right of the middle tile

    def any_bright(windows):
        return np.broadcast_to((windows.max(axis=(1, 2)) > 0)[:, None, None], windows.shape).astype(np.float32)

    alone = sections.segment_section(grey, any_bright, 101)
    wide = sections.segment_section(grey, any_bright, 101, margin=50)
    assert alone[:, 101:202].max() == 0 and wide[:, 101:202].min() == 1  # the centre tile: blind alone, not with context
    assert alone[:, :101].max() == 0 and wide[:, :101].max() == 0  # 101+ px away: outside both


def test_blending_leaves_no_seams_where_windows_disagree():
    """A model that answers each window with its own constant: tiling jumps at every tile border,
    the weighted blend changes smoothly."""
    rng = np.random.default_rng(0)
    grey = np.zeros((300, 500), np.uint8)

    def per_window_constant(windows):
        return np.broadcast_to(rng.uniform(0, 1, (len(windows), 1, 1)), windows.shape).astype(np.float32)

    tiled = sections.segment_section(grey, per_window_constant, stride=TILE)
    blended = sections.segment_section(grey, per_window_constant, stride=sections.DEFAULT_STRIDE)
    step = lambda p: max(np.abs(np.diff(p, axis=0)).max(), np.abs(np.diff(p, axis=1)).max())  # noqa: E731
    assert step(tiled) > 0.3
    assert step(blended) < 0.25 * step(tiled)


def texture_model(windows):
    """A stand-in salt detector that, like a CNN, is least sure near its window's edges: salt is
    where the local spread of grey levels is low, measured with zero padding at the window border."""
    out = []
    for w in windows.astype(np.float32):
        centred = w - 120.0
        mean = cv2.blur(centred, (9, 9), borderType=cv2.BORDER_CONSTANT)
        var = cv2.blur(centred**2, (9, 9), borderType=cv2.BORDER_CONSTANT) - mean**2
        out.append(1.0 / (1.0 + np.exp((np.sqrt(np.maximum(var, 0)) - 25.0) / 3.0)))
    return np.stack(out)


def iou(a, b):
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def test_overlapping_windows_score_at_least_as_well_as_tiling_on_the_synthetic_section():
    amplitudes, mask = make_volume(np.random.default_rng(3), 1, 500, 250, n_bodies=3)
    section, truth = amplitudes[0].T, mask[0].T.astype(bool)  # samples vertical
    grey = sections.amplitude_map(section, tile_stats.DEFAULT_TILE_STATS)(section)
    tiled = sections.segment_section(grey, texture_model, stride=TILE) > 0.5
    blended = sections.segment_section(grey, texture_model) > 0.5
    assert iou(blended, truth) >= iou(tiled, truth)
    assert iou(blended, truth) > 0.5  # the stand-in does find the salt


def test_amplitude_map_matches_the_training_percentile_and_median():
    rng = np.random.default_rng(1)
    amplitudes = 3000.0 * rng.standard_normal(200_000) + 50.0
    stats = {"median": 110.0, "abs_dev_percentiles": {"90.0": 30.0, "95.0": 40.0, "99.0": 70.0}}
    grey = sections.amplitude_map(amplitudes, stats, percentile=95.0)(amplitudes).astype(np.float64)
    assert abs(np.median(grey) - 110.0) <= 1.0
    assert abs(np.percentile(np.abs(grey - 110.0), 95) - 40.0) <= 1.0
    # an explicit clip: that amplitude away from the centre lands on the training spread
    fixed = sections.amplitude_map(amplitudes, stats, 95.0, clip=1000.0, centre=0.0)
    assert fixed(np.array([0.0, 1000.0, -1000.0, 1e9])).tolist() == [110, 150, 70, 255]


def test_amplitude_map_refuses_a_constant_input_and_an_unrecorded_percentile():
    with pytest.raises(SectionError, match="section.npy: amplitudes are constant"):
        sections.amplitude_map(np.zeros(1000), tile_stats.DEFAULT_TILE_STATS, name="section.npy")
    with pytest.raises(SectionError, match="percentile 99.99"):
        sections.amplitude_map(np.arange(10.0), tile_stats.DEFAULT_TILE_STATS, percentile=99.99)


def test_tile_stats_round_trip_and_the_documented_fallback(tmp_path):
    images = np.random.default_rng(2).integers(60, 200, (20, 101, 101), dtype=np.uint8)
    tile_stats.write_tile_stats(tmp_path, images)
    stats = json.loads((tmp_path / "tile_stats.json").read_text())
    assert stats["median"] == float(np.median(images))
    assert stats["abs_dev_percentiles"]["50.0"] == pytest.approx(np.percentile(np.abs(images - stats["median"]), 50))
    assert tile_stats.read_tile_stats(tmp_path) == stats
    said = []
    assert tile_stats.read_tile_stats(tmp_path / "older", log=said.append) is tile_stats.DEFAULT_TILE_STATS
    assert "tile_stats.json: not found" in said[0]


def test_check_section_names_the_problem():
    bad = np.ones((50, 60), np.float32)
    bad[7, 9] = np.nan
    with pytest.raises(SectionError, match=r"x.sgy line 3: NaN or infinite amplitudes \(1 values, first at sample 7, trace 9\)"):
        sections.check_section(bad, "x.sgy line 3")
    with pytest.raises(SectionError, match="thin.npy: 5 samples is too few"):
        sections.check_section(np.ones((5, 200)), "thin.npy")


def context_model(windows):
    """Salt where a window is dark, but only if the window also shows the body's bright top: a model
    that needs context, like the tile models, which find a body from its top reflection."""
    sees_top = (windows > 200).any(axis=(1, 2), keepdims=True)
    return ((windows < 60) & sees_top).astype(np.float32)


def test_a_coarser_scale_lets_windows_inside_a_body_larger_than_a_window_see_its_top():
    section = np.full((500, 400), 128, np.uint8)
    section[100:460, 50:350] = 30  # a body 360 x 300: most windows inside it never see its top
    section[96:100, 50:350] = 255  # its bright top
    body = section == 30
    alone = sections.segment_section(section, context_model) > 0.5
    merged = sections.segment_section(section, context_model, scales=(1.0, 0.5)) > 0.5
    coarse = sections.segment_section(section, context_model, scales=(0.5,)) > 0.5
    recall = [float((m & body).sum() / body.sum()) for m in (alone, merged, coarse)]
    # measured: 0.14 alone, 0.19 merged with 0.5, 0.28 at 0.5 alone
    assert recall[2] > recall[0] + 0.1 and recall[1] > recall[0] + 0.03
    assert not (merged | coarse)[section == 128].any()  # and the rest stays clear


def test_scales_resample_back_to_the_section_and_count_their_windows():
    rng = np.random.default_rng(2)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, (230, 310)).astype(np.float32), (0, 0), 12)
    grey = np.clip(np.rint((smooth - smooth.min()) * 255 / np.ptp(smooth)), 0, 255).astype(np.uint8)
    seen = []
    def counting(windows):
        seen.append(len(windows))
        return identity(windows)
    (prob, spread), = sections.segment_sections([grey], counting, 50, None, (1.0, 0.5, 2.0))
    assert prob.shape == grey.shape and seen == [sections.count_windows(*grey.shape, 50, (1.0, 0.5, 2.0))]
    assert np.abs(prob - grey / 255.0).max() < 0.03 and spread.max() < 0.03  # smooth: each scale gives it back
    # one scale of 1 is the plain path, exactly
    np.testing.assert_array_equal(sections.segment_section(grey, identity, scales=(1.0,)),
                                  sections.segment_section(grey, identity))


@pytest.mark.parametrize("text", ["0", "5", "1,1", "1,x", ""])
def test_scales_out_of_range_repeated_or_unreadable_are_refused(text):
    with pytest.raises(SectionError, match=f"--scale {text}: expected"):
        sections.check_scales(text)


def test_an_absent_trace_copies_the_nearest_live_one_the_earlier_on_a_tie():
    amplitudes = np.arange(8, dtype=np.float32)[:, None] * np.ones((8, 3), np.float32)
    live = np.array([0, 1, 1, 0, 0, 0, 1, 0], bool)
    got = sections.nearest_live_traces(amplitudes, live)
    np.testing.assert_array_equal(got[:, 0], [1, 1, 2, 2, 2, 6, 6, 6])  # trace 4: 2 and 6 tie, 2 taken
    np.testing.assert_array_equal(got[live], amplitudes[live])
    assert np.isnan(sections.nearest_live_traces(amplitudes, np.zeros(8, bool))).all()


def test_a_traces_leading_and_trailing_zeros_are_no_data_and_are_filled_by_its_data_mirrored():
    amplitudes = np.array([[0, 0, 1, 2, 3, 0], [0, 0, 0, 0, 0, 0], [5, 0, 6, 7, 0, 0], [0, 9, 8, 7, 6, 5]], np.float32)
    live = np.array([True, True, True, False])
    empty = sections.no_data(amplitudes, live)
    np.testing.assert_array_equal(empty, [[1, 1, 0, 0, 0, 1], [1] * 6, [0, 0, 0, 0, 1, 1], [1] * 6])  # the 0 inside is data
    np.testing.assert_array_equal(sections.no_data(amplitudes, live, mutes=False), [[0] * 6, [0] * 6, [0] * 6, [1] * 6])
    filled = sections.mirror_into_mutes(amplitudes, empty)
    np.testing.assert_array_equal(filled[0], [3, 2, 1, 2, 3, 2])  # mirrored across samples 2 and 4
    np.testing.assert_array_equal(filled[2], [5, 0, 6, 7, 6, 0])
    np.testing.assert_array_equal(filled[1], amplitudes[1])  # no data at all: left for nearest_live_traces
    np.testing.assert_array_equal(filled[3], amplitudes[3])
    short = np.array([[0, 0, 0, 0, 4, 0]], np.float32)  # one sample of data: it fills the whole mute
    np.testing.assert_array_equal(sections.mirror_into_mutes(short, sections.no_data(short, [True])), [[4] * 6])
