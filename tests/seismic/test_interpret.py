"""salt_tf/seismic/interpret.py: surfaces against a per-trace loop, streamed bodies against scipy's 3-D
labelling, the domain check's warning rule, and the inline/crossline disagreement by hand."""
import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from salt_tf.run import tile_stats
from salt_tf.seismic import interpret, qc
from salt_tf.seismic.interpret import BodyLabeller, snap_top, top_dip, trace_surfaces
from salt_tf.seismic.qc import Disagreement, DomainCheck

# --- surfaces ---------------------------------------------------------------------------------------


def surfaces_by_loop(mask):
    top, base, intervals = [], [], []
    for trace in mask.astype(bool):
        salt = [i for i, v in enumerate(trace) if v]
        top.append(salt[0] if salt else -1)
        base.append(salt[-1] if salt else -1)
        intervals.append(sum(1 for i, v in enumerate(trace) if v and (i == 0 or not trace[i - 1])))
    return top, base, intervals


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=st.integers(0, 1)))
def test_surfaces_match_a_per_trace_loop(mask):
    got = trace_surfaces(mask)
    assert all(g.dtype == np.int32 and g.shape == (mask.shape[0],) for g in got)
    assert [list(g) for g in got] == [list(e) for e in surfaces_by_loop(mask)]


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 8), st.integers(1, 12)), elements=st.integers(0, 1)),
       st.integers(0, 12))
def test_small_patches_are_dropped_as_scipy_labels_them(mask, min_area):
    labels, n = ndimage.label(mask)  # 4-connectivity, as bodies within a line
    want = np.zeros(mask.shape, bool)
    for k in range(1, n + 1):
        if (labels == k).sum() >= min_area:
            want |= labels == k
    got = interpret.drop_small_patches(mask, min_area)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want if min_area > 1 else mask.astype(bool))


def test_a_patch_touching_another_only_at_a_corner_is_its_own_patch():
    mask = np.zeros((6, 6), bool)
    mask[:3, :3] = True  # 9 pixels
    mask[3:5, 3:5] = True  # 4 pixels, diagonal to the first
    got = interpret.drop_small_patches(mask, 5)
    assert got[:3, :3].all() and not got[3:].any()


def test_surfaces_flag_an_overhang():
    mask = np.zeros((3, 10), bool)
    mask[0, 2:5] = mask[0, 7:] = True  # salt, sediment below an overhang, salt again
    mask[2, 4:6] = True
    top, base, intervals = trace_surfaces(mask)
    assert list(top) == [2, -1, 4] and list(base) == [9, -1, 5] and list(intervals) == [2, 0, 1]
    with pytest.raises(ValueError, match="traces, samples"):
        trace_surfaces(mask[0])


def test_top_dip_is_the_steepest_step_to_a_salty_neighbour():
    top = np.array([-1, 10, 10, 12, 30, -1, 5, -1, 7, 7])
    dip = top_dip(top)
    assert dip.dtype == np.float32
    np.testing.assert_array_equal(dip, [np.nan, 0, 2, 18, 18, np.nan, np.inf, np.nan, 0, 0])


def snap_by_loop(top, amplitudes, window, sign, centre, scale, penalty, probability=None, support=0.0, base=None):
    snapped = []
    for j, (t, trace) in enumerate(zip(top, (np.asarray(amplitudes, np.float32) - centre) * sign)):
        p = [0.0] * len(trace) if probability is None else list(probability[j])

        def strength(s):
            below, above = p[s + 1:s + 5], p[max(s - 4, 0):s]
            rise = sum(below) / max(len(below), 1) - sum(above) / max(len(above), 1)
            return (trace[s] / scale - penalty * abs(s - t) + support * rise, -s)

        peaks = [s for s in range(max(t - window, 1), min(t + window, len(trace) - 2) + 1)
                 if t >= 0 and trace[s] > 0 and trace[s] > trace[s - 1] and trace[s] >= trace[s + 1]
                 and (base is None or s <= base[j])]
        snapped.append(max(peaks, key=strength) if peaks else t)
    return snapped


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_snapping_matches_a_per_trace_loop(data):
    amplitudes = data.draw(arrays(np.int8, st.tuples(st.integers(1, 5), st.integers(1, 15))))  # ties and plateaus
    top = data.draw(arrays(np.int64, amplitudes.shape[:1], elements=st.integers(-1, amplitudes.shape[1] - 1)))
    window, polarity = data.draw(st.integers(0, 6)), data.draw(st.sampled_from(["peak", "trough"]))
    centre = data.draw(st.sampled_from([0.0, -20.5, 3.0]))
    scale, penalty = data.draw(st.sampled_from([1.0, 2.0])), data.draw(st.sampled_from([0.0, 0.25, 4.0]))
    probability = data.draw(st.none() | arrays(np.float64, amplitudes.shape, elements=st.sampled_from([0.0, 0.5, 1.0])))
    support = data.draw(st.sampled_from([0.0, 64.0]))  # 64: a multiple of the means' steps, for exact ties
    base = data.draw(st.none() | st.just(top + data.draw(st.integers(0, 3))))
    got = snap_top(top, amplitudes, window, polarity, centre, scale, probability, base, penalty, support)
    assert got.dtype == np.int32
    assert list(got) == snap_by_loop(top, amplitudes, window, 1 if polarity == "peak" else -1, centre, scale, penalty,
                                     probability, support, base)


def test_snapping_finds_the_strongest_event_near_the_top_and_only_there():
    trace = np.zeros(40, np.float32)
    trace[[12, 17, 30]] = [2.0, 5.0, 9.0]  # a weak peak, the top-salt peak, a brighter one too far away
    trace[22] = -7.0
    amplitudes = np.stack([trace] * 4)
    top = np.array([20, 20, -1, 35])
    assert list(snap_top(top, amplitudes, 4)) == [17, 17, -1, 35]  # 30 lies 5 from trace 3's top: out of reach
    assert list(snap_top(top, amplitudes, 10)) == [30, 30, -1, 30]
    assert list(snap_top(top, amplitudes, 10, base=np.array([29, 30, 40, 40]))) == [17, 30, -1, 30]  # not below the salt
    assert list(snap_top(top, amplitudes, 4, "trough")) == [22, 22, -1, 35]
    assert list(snap_top(top, amplitudes, 0)) == [20, 20, -1, 35]
    flat = np.where(np.arange(40) < 20, -1.0, 1.0)[None]  # a step, no reflection: the top stays
    assert list(snap_top(np.array([20]), flat, 6)) == [20]
    assert list(snap_top(top, amplitudes + 100, 4, centre=100)) == [17, 17, -1, 35]  # from the centre
    # 30 is 9 - 10 = -1 at a penalty of 1 per sample from trace 0's top, 17 is 5 - 3 = 2
    assert list(snap_top(top, amplitudes, 10, penalty=1.0)) == [17, 17, -1, 30]
    assert list(snap_top(top, amplitudes, 10, scale=10.0, penalty=0.1)) == [17, 17, -1, 30]
    salt = np.zeros(amplitudes.shape, np.float32)
    salt[:, 18:] = 1.0  # salt below 17 only: 17's rise is 1, 30's 0 (salt above and below it)
    assert list(snap_top(top, amplitudes, 10, probability=salt, penalty=0.0, support=3.9)) == [30, 30, -1, 30]
    assert list(snap_top(top, amplitudes, 10, probability=salt, penalty=0.0, support=4.1)) == [17, 17, -1, 30]
    with pytest.raises(ValueError, match="polarity 'up'"):
        snap_top(top, amplitudes, 4, "up")


# --- bodies -----------------------------------------------------------------------------------------

SIX = ndimage.generate_binary_structure(3, 1)


def stream_bodies(volume, min_voxels):
    labeller = BodyLabeller()
    provisional = [labeller.add(line) for line in volume]  # pass 1 (a memory-mapped file in segment)
    table = labeller.finish(min_voxels)
    return np.stack([labeller.relabel(p) for p in provisional]), table


def expected_bodies(volume, min_voxels):
    """scipy on the whole array: components by size, largest first, ties by scipy's (raster) order."""
    ref, n = ndimage.label(volume, SIX)
    sizes = np.bincount(ref.ravel(), minlength=n + 1)[1:]
    order = sorted(range(1, n + 1), key=lambda k: (-sizes[k - 1], k))
    kept = [k for k in order if sizes[k - 1] >= min_voxels]
    lookup = np.zeros(n + 1, np.int32)
    lookup[kept] = np.arange(1, len(kept) + 1)
    boxes = ndimage.find_objects(ref)
    rows = [(i + 1, sizes[k - 1], *(v for s in boxes[k - 1] for v in (s.start, s.stop - 1)))
            for i, k in enumerate(kept)]
    return lookup[ref], rows


def check_bodies(volume, min_voxels=1):
    labels, table = stream_bodies(volume, min_voxels)
    want_labels, want_rows = expected_bodies(volume, min_voxels)
    assert labels.dtype == np.int32
    assert np.array_equal(labels, want_labels)
    assert list(table) == list(interpret.BODY_COLUMNS)
    assert [tuple(int(table[c][i]) for c in interpret.BODY_COLUMNS) for i in range(len(table["id"]))] == want_rows
    return labels, table


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 5), st.integers(1, 8), st.integers(1, 8))),
       st.integers(1, 6))
def test_streamed_bodies_match_scipy_3d_labelling(volume, min_voxels):
    check_bodies(volume, min_voxels)


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8))),
       st.integers(0, 6))
def test_a_lines_patches_under_the_minimum_area_are_left_out_of_its_labels(volume, min_area):
    # segment.py labels each line once: its mask is the labels > 0, its small patches out of both.
    labeller = BodyLabeller()
    provisional = [labeller.add(line, min_area) for line in volume]
    dropped = np.stack([interpret.drop_small_patches(line, min_area) for line in volume])
    assert np.array_equal(np.stack(provisional) > 0, dropped)
    table = labeller.finish(2)
    labels = np.stack([labeller.relabel(p) for p in provisional])
    want_labels, want_rows = expected_bodies(dropped, 2)
    assert np.array_equal(labels, want_labels)
    assert [tuple(int(table[c][i]) for c in interpret.BODY_COLUMNS) for i in range(len(table["id"]))] == want_rows


def test_a_patch_of_exactly_the_minimum_area_stays():
    line = np.zeros((8, 8), bool)
    line[0, :4] = True  # 4 pixels: kept at 4
    line[5, 5:8] = True  # 3 pixels: out
    labels = BodyLabeller().add(line, 4)
    assert labels[0, :4].all() and not labels[5].any() and set(np.unique(labels)) == {0, 1}


def test_bodies_on_a_dense_random_volume():
    volume = np.random.default_rng(0).random((12, 30, 25)) < 0.45  # near percolation: long merges
    labels, table = check_bodies(volume, min_voxels=4)
    assert len(table["id"]) > 5 and table["voxels"][0] > 10 * table["voxels"][-1]


def test_a_u_shape_merges_two_arms_lines_later():
    # Two arms, separate in lines 0..4, joined by a bottom in line 5: one body, first met in line 0.
    volume = np.zeros((7, 9, 6), bool)
    volume[:6, 1, 2:4] = True
    volume[:6, 7, 2:4] = True
    volume[5, 1:8, 2:4] = True
    volume[6, 4, 0] = True  # a one-voxel speck, dropped by min_voxels=2
    labels, table = check_bodies(volume, min_voxels=2)
    assert set(np.unique(labels)) == {0, 1}
    assert [int(table[c][0]) for c in interpret.BODY_COLUMNS] == [1, 24 + 14 - 4, 0, 5, 1, 7, 2, 3]
    # ... and the other way up (an arch): one body that splits, still one.
    check_bodies(volume[::-1].copy(), min_voxels=1)


def test_bodies_are_numbered_by_size_then_by_first_appearance():
    volume = np.zeros((2, 10, 10), bool)
    volume[1, 0, 0:3] = True  # 3 voxels, first in trace order but in the second line
    volume[0, 5, 5:8] = True  # 3 voxels, in the first line: met first
    volume[1, 8, 0:5] = True  # 5 voxels: the largest
    _, table = check_bodies(volume)
    assert list(table["voxels"]) == [5, 3, 3]
    assert list(table["line_min"]) == [1, 0, 1]  # the tie goes to the body in the earlier line


def test_one_line_is_plain_2d_labelling():
    mask = np.random.default_rng(1).random((40, 30)) < 0.5
    labeller = BodyLabeller()
    provisional = labeller.add(mask)
    table = labeller.finish(min_voxels=1)
    ref, n = ndimage.label(mask)
    assert len(table["id"]) == n and set(table["line_max"]) == {0}
    assert np.array_equal(labeller.relabel(provisional) > 0, mask)
    # the same partition as scipy's 2-D labels
    pairs = {(a, b) for a, b in zip(ref[mask], labeller.relabel(provisional)[mask])}
    assert len(pairs) == n


def test_body_labeller_refuses_misuse():
    labeller = BodyLabeller()
    labeller.add(np.ones((3, 4)))
    with pytest.raises(ValueError, match="previous lines"):
        labeller.add(np.ones((3, 5)))
    with pytest.raises(RuntimeError, match="before finish"):
        labeller.relabel(np.zeros((3, 4), np.int32))
    assert list(labeller.finish(13)["id"]) == []  # the only body has 12 voxels
    assert labeller.relabel(np.ones((3, 4), np.int32)).max() == 0
    with pytest.raises(RuntimeError, match="after finish"):
        labeller.add(np.ones((3, 4)))
    assert list(BodyLabeller().finish()["voxels"]) == []  # no lines at all


# --- domain check -----------------------------------------------------------------------------------


def grey_from_training(rng, shape):
    """Grey levels drawn from the training histogram: a bin by its share, a level within it."""
    shares = np.asarray(qc.DEFAULT_TRAINING_HISTOGRAM) / sum(qc.DEFAULT_TRAINING_HISTOGRAM)
    bins = rng.choice(tile_stats.BINS, size=shape, p=shares)
    return (bins * tile_stats.BIN_WIDTH + rng.integers(0, tile_stats.BIN_WIDTH, shape)).astype(np.uint8)


def mapped(amplitudes, gain):
    return np.clip(np.rint(120 + gain * amplitudes), 0, 255).astype(np.uint8)


def test_default_histogram_is_the_real_training_tiles(tgs_dir):
    paths = sorted((tgs_dir / "train" / "images").glob("*.png"))
    assert len(paths) == 3200
    tiles = np.stack([cv2.imread(str(p))[..., 0] for p in paths])
    assert np.allclose(tile_stats.tile_histogram(tiles), qc.DEFAULT_TRAINING_HISTOGRAM, atol=1e-5)
    counts = tile_stats.grey_histogram(tiles)
    assert abs(counts[0] / counts.sum() - 0.02107) < 1e-4 and abs(counts[255] / counts.sum() - 0.00043) < 1e-5


def test_a_well_mapped_input_gives_no_warning():
    rng = np.random.default_rng(0)
    check = DomainCheck()
    for k in range(5):
        low, high = check.add_line(grey_from_training(rng, (200, 150)), line_number=100 + k)
        assert low < 0.01 and high < 0.01
        check.record(100 + k, mean_probability=0.3, mean_uncertainty=float("nan") if k == 0 else 0.05)
    summary = check.summary()
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary  # strict JSON: no NaN
    assert summary["warning"] is None and summary["distance"] < 0.02 and summary["samples"] == 5 * 200 * 150
    assert summary["lines"]["line"] == [100, 101, 102, 103, 104]
    assert summary["lines"]["mean_uncertainty"][:2] == [None, 0.05]
    assert len(summary["input_histogram"]) == len(summary["training_histogram"]) == tile_stats.BINS


def test_too_much_gain_warns_of_clipping():
    rng = np.random.default_rng(1)
    amplitudes = rng.laplace(0, 1, (4, 100, 80))
    good, bad = DomainCheck(), DomainCheck()
    for line in amplitudes:
        good.add_line(mapped(line, 28))  # 95th percentile of |a| (3.0) -> 84 grey levels, as sections maps
        bad.add_line(mapped(line, 280))  # ten times the gain
    assert good.summary()["warning"] is None
    warning = bad.summary()["warning"]
    assert "clipped" in warning and "too high" in warning and "\n" not in warning
    assert bad.summary()["clipped_low"] > 0.3


def test_too_little_gain_warns_of_the_histogram_distance():
    check = DomainCheck()
    check.add_line(mapped(np.random.default_rng(2).laplace(0, 1, (100, 80)), 28 * 0.1))
    summary = check.summary()
    assert summary["clipped_low"] == summary["clipped_high"] == 0.0 and summary["distance"] > 0.6
    assert "histogram" in summary["warning"] and "too low" in summary["warning"]


def test_dead_traces_are_left_out():
    rng = np.random.default_rng(3)
    grey = grey_from_training(rng, (100, 60))
    grey[:40] = 0  # no data: zero amplitude would be clipped if counted
    live = np.arange(100) >= 40
    check = DomainCheck()
    assert check.add_line(grey, live)[0] < 0.01
    assert check.summary()["warning"] is None and check.summary()["samples"] == 60 * 60
    assert DomainCheck().add_line(grey)[0] > 0.4
    with pytest.raises(ValueError, match="live mask"):
        check.add_line(grey, live[:-1])


def test_a_training_histogram_from_tile_stats_is_accepted():
    tiles = grey_from_training(np.random.default_rng(4), (50, 101, 101))
    recorded = json.loads(json.dumps(tile_stats.tile_histogram(tiles)))
    assert len(recorded) == tile_stats.BINS and abs(sum(recorded) - 1) < 1e-4
    check = DomainCheck(recorded)
    check.add_line(tiles[0])
    assert check.summary()["distance"] < 0.05 and check.summary()["warning"] is None


# --- inline versus crossline ----------------------------------------------------------------------


def test_disagreement_per_inline_by_hand():
    d = Disagreement(3)
    inline = np.array([[0.0, 1.0], [0.5, 0.5], [0.2, 0.2]])
    d.add(inline, np.array([[0.0, 0.0], [0.5, 0.5], [0.4, 0.0]]))  # crossline 0: |diff| rows 1, 0, 0.4
    d.add(inline, np.array([[1.0, 1.0], [0.0, 0.0], [9.0, 9.0]]), live=np.array([True, True, False]))
    got = d.per_line()
    assert np.allclose(got, [(1 + 1) / 4, (0 + 1.0) / 4, 0.4 / 2])
    assert np.isnan(Disagreement(2).per_line()).all()
    muted = Disagreement(2)  # NaN: no data (a mute), left out of the mean
    muted.add(np.array([[np.nan, 0.5, 0.5], [np.nan] * 3]), np.array([[np.nan, 0.0, 0.3], [np.nan] * 3]))
    assert np.allclose(muted.per_line()[0], 0.35) and np.isnan(muted.per_line()[1])
    with pytest.raises(ValueError, match="3 lines"):
        d.add(np.zeros((2, 2)), np.zeros((2, 2)))


def test_the_synthetic_volume_passes_and_ten_times_its_gain_warns():
    from salt_tf.seismic import sections
    from salt_tf.seismic import synthetic as synthetic_sections

    amplitudes, _ = synthetic_sections.make_volume(np.random.default_rng(0), 4, 80, 120)
    amap = sections.amplitude_map(amplitudes, tile_stats.DEFAULT_TILE_STATS)
    loud = sections.AmplitudeMap(amap.centre, 10 * amap.gain, amap.median)
    good, bad = DomainCheck(), DomainCheck()
    for line in amplitudes:
        good.add_line(amap(line))
        bad.add_line(loud(line))
    assert good.summary()["warning"] is None and good.summary()["distance"] < 0.35
    assert "clipped" in bad.summary()["warning"]


def test_label_next_ranks_the_unlabelled_lines_by_uncertainty_plus_disagreement():
    from salt_tf.seismic.qc import label_next

    per_line = {"line": [10, 11, 12, 13, 14], "mean_uncertainty": [0.05, 0.20, 0.10, None, 0.12]}
    disagreement = np.array([0.0, 0.01, 0.30, 0.2, np.nan])
    rows = label_next(per_line, disagreement, labelled=[11])
    # 11 is labelled; 13 has no live trace (no uncertainty); 12 leads by its disagreement; NaN counts 0
    assert [r["line"] for r in rows] == [12, 14, 10] and [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["score"] == pytest.approx(0.40) and rows[1]["score"] == pytest.approx(0.12)
    assert [r["line"] for r in label_next(per_line, None, labelled=[])] == [11, 14, 12, 10]
