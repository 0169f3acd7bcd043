"""segment.py on SEG-Y as surveys come (dead corners, other header bytes, any trace order, integer
and IBM samples) and what it hands interpreters: uncertainty, top and base of salt, bodies, the
domain check; every bad setting refused with one error line and nothing written."""
import csv
import json

import cv2
import numpy as np
import pytest
import segyio
from scipy import ndimage
from scripts import load_script

from salt_tf.run import tile_stats
from salt_tf.seismic import sections
from salt_tf.seismic import synthetic as synthetic_sections
from salt_tf.seismic.segment import run
from salt_tf.seismic.seiswrite import write_segy_volume
from salt_tf.tiles.framing import stretch

CLI = load_script("segment.py", "segment_cli_surveys")


def identity(windows):
    return windows.astype(np.float32) / 255.0


def quiet(line):
    pass


def segment(path, out, **options):
    options = {"model": identity, "progress": False, "log": quiet, "warn": quiet, "min_body": 1, **options}
    return run(None, path, out, **options)


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """The synthetic volume (14 inlines x 70 crosslines x 90 samples) and its mask."""
    cube, mask = synthetic_sections.make_volume(np.random.default_rng(5), 14, 70, 90)
    return cube, mask, tmp_path_factory.mktemp("surveys")


def ragged(shape):
    live = np.ones(shape, bool)
    live[:3, :20] = False  # a dead corner
    live[-1, 60:] = False  # a ragged edge
    live[6, 33] = False  # one missing trace inside
    return live


SURVEYS = {  # (a) .. (g) of the issue: write_segy_volume options
    "regular": {},
    "dead corner and ragged edge": {"live": True},
    "inline/crossline at bytes 9/21": {"iline_byte": 9, "xline_byte": 21},
    "crossline sorted": {"order": "crossline"},
    "shuffled": {"order": "shuffled", "live": True},
    "2-byte integers": {"sample_format": 3},
    "IBM float": {"sample_format": 1},
}


@pytest.fixture(scope="module")
def regular(volume):
    cube, _, folder = volume
    write_segy_volume(folder / "regular.sgy", cube)
    summary = segment(folder / "regular.sgy", folder / "regular_out", n_figures=0)
    return np.load(folder / "regular_out" / "probability.npy").astype(np.float32), summary["amplitude_map"]


@pytest.mark.parametrize("name", SURVEYS)
def test_every_survey_variant_gives_the_regular_files_probability_and_keeps_its_headers(volume, regular, name, tmp_path):
    cube, _, _ = volume
    expected, amap = regular
    options = dict(SURVEYS[name])
    live = ragged(cube.shape[:2]) if options.pop("live", False) else np.ones(cube.shape[:2], bool)
    write_segy_volume(tmp_path / "v.sgy", cube, live=live, **options)
    out = tmp_path / "out"
    same_map = {"clip": sections.training_spread(tile_stats.DEFAULT_TILE_STATS, 95.0) / amap["gain"], "centre": amap["centre"]}
    summary = segment(tmp_path / "v.sgy", out, iline_byte=options.get("iline_byte"), xline_byte=options.get("xline_byte"),
                      n_figures=0, **same_map)
    assert summary["geometry"]["absent_traces"] == np.count_nonzero(~live)
    probs = np.load(out / "probability.npy").astype(np.float32)
    # float16 rounding; integer and IBM samples may move a grey level by one
    tolerance = 1.5 / 255 if options.get("sample_format") in (1, 3) else 1e-3
    np.testing.assert_allclose(probs[live], expected[live], atol=tolerance)
    assert np.isnan(probs[~live]).all() and np.isnan(np.load(out / "uncertainty.npy")[~live]).all()
    assert not np.load(out / "mask.npy")[~live].any() and not np.load(out / "bodies.npy")[~live].any()
    with segyio.open(tmp_path / "v.sgy", ignore_geometry=True) as src, \
            segyio.open(out / "probability.sgy", ignore_geometry=True) as got:
        assert got.tracecount == src.tracecount and got.bin[segyio.BinField.Format] == 5
        inline, xline = (src.attributes(b)[:] for b in (options.get("iline_byte", 189), options.get("xline_byte", 193)))
        for t in range(src.tracecount):
            assert got.header[t] == src.header[t]  # exactly the input's headers, in its order
        np.testing.assert_array_equal(got.trace.raw[:], probs[inline - 1, xline - 1].astype(np.float16).astype(np.float32))


def test_the_identity_model_gives_the_truths_surfaces_intervals_and_bodies_exactly(tmp_path):
    """Amplitudes +-1000 on a known mask: the identity stand-in maps them above and below 0.5."""
    truth = np.zeros((9, 40, 60), np.uint8)
    truth[1:7, 5:25, 20:45] = 1  # a big body ...
    truth[2:5, 8:18, 50:56] = 1  # ... a second body below it on the same traces (two intervals)
    truth[3:6, 22:24, 45:50] = 1  # ... that joins the big body through these voxels (overhang)
    truth[7, 30:33, 5:8] = 1  # a small body of 9 voxels, under --min-body
    truth[0:2, 35:39, 10:30] = 1  # a third body, 160 voxels
    cube = np.where(truth == 1, 1000.0, -1000.0).astype(np.float32)
    write_segy_volume(tmp_path / "v.sgy", cube, first_inline=50, first_xline=300, order="shuffled")
    np.save(tmp_path / "truth.npy", truth)
    summary = segment(tmp_path / "v.sgy", tmp_path / "out", clip=1000.0, centre=0.0, min_body=10, threshold=0.5,
                      truth=tmp_path / "truth.npy")
    out = tmp_path / "out"
    np.testing.assert_array_equal(np.load(out / "mask.npy"), truth)
    against = summary["against_truth"]
    assert against["voxel_iou"] == 1.0 and against["top_within_3_samples"] == 1.0 and against["top_mean_abs_samples"] == 0
    assert against["traces_both_salt"] == np.count_nonzero(truth.any(axis=2))

    assert against["top_mean_signed_samples"] == 0 and against["top_within_3_samples_gentle"] == 1.0
    assert against["top_within_3_samples_1_trace"] == 1.0
    assert against["traces_gentle_top"] == against["traces_both_salt"]  # every top here is flat

    rows = list(csv.DictReader(open(out / "salt_surfaces.csv")))
    salty = [(i, j) for i in range(9) for j in range(40) if truth[i, j].any()]
    assert [(int(r["inline"]) - 50, int(r["crossline"]) - 300) for r in rows] == salty
    for r in rows:
        trace = truth[int(r["inline"]) - 50, int(r["crossline"]) - 300]
        samples = np.flatnonzero(trace)
        runs = np.count_nonzero(np.diff(np.concatenate([[0], trace])) == 1)
        assert (int(r["top_sample"]), int(r["base_sample"]), int(r["intervals"])) == (samples[0], samples[-1], runs)
        assert float(r["top_z"]) == 4.0 * samples[0] and float(r["base_z"]) == 4.0 * samples[-1]  # 4 ms samples
        assert float(r["cdp_x"]) == 100000 + 25.0 * (int(r["crossline"]) - 300)  # coordinate scalar applied
    assert summary["surfaces"]["traces_with_several_intervals"] == sum(int(r["intervals"]) > 1 for r in rows) > 0

    labels, n = ndimage.label(truth, structure=ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(labels.ravel())[1:]
    kept = [k + 1 for k in np.argsort(-sizes, kind="stable") if sizes[k] >= 10]
    expected = np.zeros_like(labels)
    for body, k in enumerate(kept, start=1):
        expected[labels == k] = body
    np.testing.assert_array_equal(np.load(out / "bodies.npy"), expected)
    table = list(csv.DictReader(open(out / "bodies.csv")))
    assert [int(r["voxels"]) for r in table] == [int(sizes[k - 1]) for k in kept] and len(table) == 3
    for r, k in zip(table, kept):
        where = np.argwhere(labels == k)
        lo, hi = where.min(0), where.max(0)
        assert (int(r["inline_min"]), int(r["inline_max"])) == (50 + lo[0], 50 + hi[0])
        assert (int(r["crossline_min"]), int(r["crossline_max"])) == (300 + lo[1], 300 + hi[1])
        assert (int(r["sample_min"]), int(r["sample_max"])) == (lo[2], hi[2])
    assert (out / "figures" / "top_of_salt.png").stat().st_size > 5_000


def test_uncertainty_is_high_where_the_members_disagree_and_zero_elsewhere(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(0, 100, (12, 50, 40)).astype(np.float32)
    cube[4:8, 10:30, 10:25] = 5000.0  # a bright block: grey 255 after the mapping
    np.save(tmp_path / "v.npy", cube)

    def ensemble(windows):  # four members: the same answer, but +-0.1 on bright pixels
        base = identity(windows)
        bright = (windows == 255).astype(np.float32)
        return np.stack([base + d * bright for d in (-0.1, 0.1, -0.1, 0.1)])

    for direction in ("inline", "both"):
        out = tmp_path / direction
        summary = segment(tmp_path / "v.npy", out, model=ensemble, direction=direction, clip=300.0, centre=0.0,
                          n_figures=0)  # the sections' figures: tests/test_figures.py
        spread = np.load(out / "uncertainty.npy").astype(np.float32)
        region = np.zeros(cube.shape, bool)
        region[4:8, 10:30, 10:25] = True
        np.testing.assert_allclose(spread[region], 0.1, atol=1e-3)
        assert np.all(spread[~region] == 0)
        assert summary["uncertainty"].startswith("standard deviation of the ensemble members")
        means = summary["domain_check"]["lines"]["mean_uncertainty"]
        assert means[5] > 0.01 and means[0] == 0
    assert not (tmp_path / "both" / "uncertainty.sgy").exists()
    disagreement = json.loads((tmp_path / "both" / "segment.json").read_text())["disagreement_per_line"]
    assert len(disagreement) == 12 and max(disagreement) < 1e-3  # both passes see the same pixels
    assert (tmp_path / "both" / "figures" / "disagreement.png").is_file()


def test_an_input_unlike_the_training_tiles_gets_one_warning_line(volume, tmp_path):
    cube, _, _ = volume
    np.save(tmp_path / "v.npy", cube)
    said = []
    summary = segment(tmp_path / "v.npy", tmp_path / "ok", warn=said.append, n_figures=0)  # no section figures
    assert summary["domain_check"]["warning"] is None and not said
    summary = segment(tmp_path / "v.npy", tmp_path / "hot", clip=50.0, warn=said.append, n_figures=0)  # 20x the gain
    assert len(said) == 1 and said[0].startswith("warning: input unlike the training tiles")
    assert summary["domain_check"]["clipped_low"] > 0.2
    assert (tmp_path / "hot" / "figures" / "domain_check.png").is_file()


# --- every bad setting: one error line, exit 2, nothing written ----------------------------------


@pytest.fixture(scope="module")
def segy(volume):
    cube, _, folder = volume
    write_segy_volume(folder / "bytes921.sgy", cube, iline_byte=9, xline_byte=21)
    return folder / "bytes921.sgy"


@pytest.mark.parametrize("flags, message", [
    (["--figures", "-1"], "--figures -1: must be at least 0"),
    (["--threshold", "1.5"], "--threshold 1.5: must be a probability in [0, 1)"),
    (["--threshold", "-0.1"], "--threshold -0.1: must be a probability in [0, 1)"),
    (["--min-body", "0"], "--min-body 0: must be at least 1"),
    (["--snap-top", "-2"], "--snap-top -2: must be at least 0"),
    (["--snap-polarity", "up"], "--snap-polarity 'up': expected one of peak, trough"),
    (["--window-norm", "tile"], "--window-norm 'tile': expected one of minmax, global"),
    (["--iline-byte", "0"], "header byte 0: must lie within 1..237"),
    (["--iline-byte", "9", "--xline-byte", "9"], "--iline-byte and --xline-byte are both 9"),
    (["--iline-byte", "190"], "header byte 190: no trace header field starts there (near it: 185, 189, 193, 197)"),
    ([], "bytes921.sgy: no inline/crossline numbers at bytes 189/193, but bytes 9/21: 14 inlines x 70 crosslines"),
    (["--out-in-a-file"], "cannot create the output folder"),
])
def test_bad_settings_are_one_error_line_and_nothing_is_written(segy, tmp_path, capsys, flags, message):
    (tmp_path / "file.txt").write_text("not a folder")
    out = tmp_path / ("file.txt/out" if flags == ["--out-in-a-file"] else "out")
    flags = [] if flags == ["--out-in-a-file"] else flags
    code = CLI.main(["--run", str(tmp_path / "unused"), "--input", str(segy), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("code", [0, 4])
def test_a_sample_format_code_that_names_no_format_is_refused_not_read_as_ibm_float(segy, tmp_path, capsys, code):
    """segyio reads codes 0 and 4 as 4-byte IBM float, silently for 0: this file's IEEE floats would
    come out as other numbers. One error line naming the file, the byte and the code."""
    data = bytearray(segy.read_bytes())
    data[3224:3226] = code.to_bytes(2, "big")
    (tmp_path / "v.sgy").write_bytes(bytes(data))
    code_ = CLI.main(["--run", str(tmp_path / "unused"), "--input", str(tmp_path / "v.sgy"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code_ == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {tmp_path / 'v.sgy'}: sample format code {code} at byte 3225 of the binary header")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.sgy"]


@pytest.mark.parametrize("axis, traces, strict, near", [(1, 1, 20 / 30, 1.0), (1, 2, 19 / 30, 20 / 30),
                                                         (0, 1, 0.0, 5 / 6)])
def test_a_flank_a_trace_aside_is_within_3_samples_of_a_neighbouring_true_top(tmp_path, axis, traces, strict, near):
    """A flank that steps 8 samples a trace (crosslines 10-20) or a line; the truth handed in is what
    the identity model finds, moved ``traces`` traces along ``axis``. The strict count fails every
    trace whose top moved; the count against the true tops next to each trace forgives a move of
    one trace (but on the last line, which has no next one), not of two."""
    i, j = np.meshgrid(np.arange(6), np.arange(30), indexing="ij")
    top = (lambda i, j: 20 + 8 * np.clip(j - 10, 0, 10)) if axis == 1 else (lambda i, j: 20 + 8 * i)
    found_top = top(i, j)
    true_top = top(i - traces, j) if axis == 0 else top(i, j - traces)
    z = np.arange(150)
    found, truth = ((z >= t[..., None]).astype(np.uint8) for t in (found_top, true_top))
    write_segy_volume(tmp_path / "v.sgy", np.where(found == 1, 1000.0, -1000.0).astype(np.float32))
    np.save(tmp_path / "truth.npy", truth)
    against = segment(tmp_path / "v.sgy", tmp_path / "out", clip=1000.0, centre=0.0, threshold=0.5,
                      truth=tmp_path / "truth.npy")["against_truth"]
    assert against["traces_both_salt"] == 6 * 30
    assert against["top_within_3_samples"] == pytest.approx(strict)
    assert against["top_within_3_samples_1_trace"] == pytest.approx(near)


def band(windows):
    """A stand-in that calls mid-bright grey salt: not the dark sediment, not a clipped reflection."""
    return ((windows > 140) & (windows < 250)).astype(np.float32)


@pytest.mark.parametrize("polarity", ["peak", "trough"])
def test_snapping_moves_the_top_of_salt_onto_the_reflection_a_flank_away(tmp_path, polarity):
    """A dome whose flanks step 5 samples a trace; the model finds it one trace narrower than the
    truth (5 samples deep on the 16 flank traces), and a one-sample top-salt reflection (+-6000:
    strong enough to beat the step up into the salt's +1000, which has salt below it) lies just
    above the true top on every trace. Snapped within 6 samples, every top lands on the
    reflection, 1 sample above the true first salt sample (on zero-phase data the peak sits on the
    boundary); within 4 the flanks' reflection is out of reach and their tops stay where the mask
    put them."""
    j = np.arange(40)
    found_top = 20 + 5 * np.clip(np.abs(j - 20) - 4, 0, 8)  # crest over traces 16..24, flanks to 60
    true_top = 20 + 5 * np.clip(np.abs(j - 20) - 5, 0, 8)  # the same dome one trace wider
    flank = found_top != true_top
    z = np.arange(90)
    found, truth = (np.broadcast_to(z >= t[:, None], (3, 40, 90)).astype(np.uint8) for t in (found_top, true_top))
    cube = np.where(found == 1, 1000.0, -1000.0).astype(np.float32)
    cube[:, j, true_top - 1] = 6000.0 if polarity == "peak" else -6000.0
    write_segy_volume(tmp_path / "v.sgy", cube)
    np.save(tmp_path / "truth.npy", truth)
    for window in (6, 4):
        out = tmp_path / f"snap{window}"
        summary = segment(tmp_path / "v.sgy", out, model=band, clip=1000.0, centre=0.0, threshold=0.5,
                          truth=tmp_path / "truth.npy", snap_top=window, snap_polarity=polarity)
        np.testing.assert_array_equal(np.load(out / "mask.npy"), found)  # the mask is the model's, unsnapped
        against = summary["against_truth"]
        assert against["traces_both_salt"] == 3 * 40
        assert against["mask_top_within_3_samples"] == pytest.approx(np.mean(~flank)) == 24 / 40
        tops = np.array([int(r["top_sample"]) for r in csv.DictReader(open(out / "salt_surfaces.csv"))]).reshape(3, 40)
        if window == 6:
            np.testing.assert_array_equal(tops, np.broadcast_to(true_top - 1, (3, 40)))
            assert against["top_within_3_samples"] == 1.0 and against["top_mean_signed_samples"] == -1
        else:
            np.testing.assert_array_equal(tops, np.broadcast_to(np.where(flank, found_top, true_top - 1), (3, 40)))
            assert against["top_within_3_samples"] == pytest.approx(24 / 40)
        assert summary["snap_top"] == {"samples": window, "polarity": polarity}
        assert summary["surfaces"]["top"] == f"the strongest {polarity} within {window} samples of the mask's first salt sample"
    if polarity == "trough":  # snapped to peaks, the trough's traces go to the salt's first sample, 5 deep
        wrong = segment(tmp_path / "v.sgy", tmp_path / "wrong", model=band, clip=1000.0, centre=0.0, threshold=0.5,
                        truth=tmp_path / "truth.npy", snap_top=6, snap_polarity="peak")
        assert wrong["against_truth"]["top_within_3_samples"] == pytest.approx(24 / 40)


@pytest.mark.parametrize("shift", [2, 5])
def test_a_top_of_salt_off_by_known_samples_is_scored_so(tmp_path, shift):
    """A dome whose right flank dips 4 samples per trace; the truth handed in lies ``shift`` samples
    deeper than what the identity model finds."""
    found = np.zeros((2, 30, 90), np.uint8)
    for j in range(30):
        found[:, j, 20 + max(0, 4 * (j - 15)):] = 1  # flat top at 20 on traces 0..15, then the flank
    truth = np.zeros_like(found)
    truth[..., shift:] = found[..., :-shift]
    write_segy_volume(tmp_path / "v.sgy", np.where(found == 1, 1000.0, -1000.0).astype(np.float32))
    np.save(tmp_path / "truth.npy", truth)
    against = segment(tmp_path / "v.sgy", tmp_path / "out", clip=1000.0, centre=0.0, threshold=0.5,
                      truth=tmp_path / "truth.npy")["against_truth"]
    assert against["traces_both_salt"] == 2 * 30 and against["top_mean_signed_samples"] == -shift
    assert against["top_within_3_samples"] == (1.0 if shift <= 3 else 0.0)
    assert against["traces_gentle_top"] == 2 * 15  # traces 0..14; trace 15 steps 4 to trace 16


# --- real files (../shared/realdata/small_real_segy, read in place) ----------------------------

def test_the_usgs_line_and_the_f3_crops_segment_as_they_come(realdata_dir, tmp_path):
    said = []
    real = realdata_dir / "small_real_segy"
    summary = segment(real / "31_81_PR.sgy", tmp_path / "usgs", log=said.append)
    assert summary["geometry"]["read_as"].startswith("read as one 2-D line of 534 traces")
    assert any("read as one 2-D line" in line for line in said)  # the log says how it was read
    assert np.load(tmp_path / "usgs" / "probability.npy").shape == (534, 1501)
    # 75 samples, fewer than a window: reflection-padded into the windows, cut back to the crop
    summary = segment(real / "segyio_f3.sgy", tmp_path / "f3", direction="both")
    assert summary["geometry"]["lines"] == 23 and "read_as" not in summary["geometry"]
    assert np.isfinite(summary["disagreement_per_line"]).all()  # the mute left out of the inline/crossline means
    probability = np.load(tmp_path / "f3" / "probability.npy")
    with segyio.open(real / "segyio_f3.sgy") as f:  # 12-39 zeros atop every trace: the mute, no data
        muted = np.stack([sections.no_data(f.iline[n], np.ones(18, bool)) for n in f.ilines])
    assert 0.15 < muted.mean() < 0.2 and muted[..., 0].all() and not muted[..., 40:].any()
    assert probability.shape == (23, 18, 75) and np.isnan(probability[muted]).all() and np.isfinite(probability[~muted]).all()
    with segyio.open(tmp_path / "f3" / "probability.sgy", ignore_geometry=True) as f:
        assert f.tracecount == 414 and f.bin[segyio.BinField.Format] == 5  # IEEE float, not the input's integers
        assert np.isfinite(f.trace.raw[:]).all()  # no data written as 0, not NaN


# --- windows as the model learned them -----------------------------------------------------------

def test_on_the_tile_grid_minmax_windows_are_the_tiles_predict_py_reads(tiny_data, tmp_path):
    """A section assembled from tiles, each stretched to 0..255 on its own (as the competition
    released them), given as raw amplitudes: at stride 101 every window the model gets is a tile,
    byte for byte the array predict.py loads (``load_images``) and passes to the same ensemble."""
    from salt_tf.tiles.data import load_images

    ids, images = load_images(tiny_data / "test" / "images")
    tiles = stretch(images[:6].astype(np.float32))  # 0..255 each, as the real tiles span
    assert all(t.min() == 0 and t.max() == 255 for t in tiles)
    grid = tiles.reshape(2, 3, 101, 101).transpose(0, 2, 1, 3).reshape(202, 303)  # 2 x 3 tiles, samples down
    amplitudes = 0.37 * grid.astype(np.float32) - 11.0  # any gain and offset: the stretch undoes them
    np.save(tmp_path / "section.npy", amplitudes.T)  # (traces, samples)
    seen = []

    def model(windows):
        seen.append(windows.copy())
        return identity(windows)

    summary = segment(tmp_path / "section.npy", tmp_path / "out", model=model, stride=101, windows="minmax")
    assert summary["amplitude_map"]["windows"] == "minmax"
    got = np.concatenate(seen)
    assert got.dtype == np.uint8 and got.shape == (6, 101, 101)
    np.testing.assert_array_equal(got, tiles)  # windows in row-major grid order, as the tiles were laid
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "probability.npy").astype(np.float32),
                                  (grid.T / 255.0).astype(np.float16).astype(np.float32))


def test_minmax_windows_see_the_nearest_live_trace_across_a_gap_not_a_grey_band(tmp_path):
    """Traces 40-59 of inline 0 are absent: each window stretched on its own gets the nearest live
    trace there (39 for 40-49, 60 for 50-59), so the seismic goes on across the gap; on real sections
    a flat grey band beside live data was read as salt (benchmarks/RESULTS.md). No data stays NaN."""
    cube = np.random.default_rng(3).normal(0, 100, (2, 120, 101)).astype(np.float32)
    live = np.ones((2, 120), bool)
    live[0, 40:60] = False
    write_segy_volume(tmp_path / "gap.sgy", cube, live=live)
    seen = []

    def model(windows):
        seen.append(windows.copy())
        return identity(windows)

    segment(tmp_path / "gap.sgy", tmp_path / "out", model=model, stride=101, windows="minmax")
    filled = cube[0].copy()
    filled[40:50], filled[50:60] = cube[0, 39], cube[0, 60]
    got = np.concatenate(seen)
    expected = stretch(filled[:101].T[None])[0]  # the line's first window, traces 0-100, across the gap
    assert any(np.array_equal(w, expected) for w in got)
    assert not any((w == 128).all(axis=0).any() for w in got)  # no trace of one flat grey level
    probability = np.load(tmp_path / "out" / "probability.npy")
    assert np.isnan(probability[0, 40:60]).all() and np.isfinite(probability[live]).all()


def test_a_mute_is_no_data_and_its_windows_see_the_trace_mirrored_not_a_flat_band(tmp_path):
    """The zeros atop each trace (a mute: 20-49 samples, sloping) and below it (the last 5) hold no data.
    On the real SEG-Y files such flat bands, each window stretched on its own, were read as salt on
    83 of the 534 traces of a line with none (benchmarks/RESULTS.md). Now the windows see each trace's
    data mirrored across its mute, the mute is NaN in probability.npy and 0 in the mask and SEG-Y, and
    a zero inside the data stays data. A grey image's black is data, not a mute."""
    rng = np.random.default_rng(4)
    cube = rng.normal(0, 100, (1, 120, 160)).astype(np.float32)
    first = 20 + np.arange(120) // 4
    muted = (np.arange(160) < first[:, None]) | (np.arange(160) >= 155)
    cube[0][muted] = 0.0
    cube[0, 7] = 0.0  # a dead trace: no data throughout
    cube[0, 3, 80] = 0.0  # data
    write_segy_volume(tmp_path / "mute.sgy", cube)
    seen = []

    def model(windows):
        seen.append(windows.copy())
        return identity(windows)

    summary = segment(tmp_path / "mute.sgy", tmp_path / "out", model=model, windows="minmax")
    got = np.concatenate(seen)  # (windows, samples, traces)
    runs = (np.diff(got.astype(np.int16), axis=1) == 0)
    assert not (runs[:, :-3] & runs[:, 1:-2] & runs[:, 2:-1] & runs[:, 3:]).any()  # no 5 equal samples down a trace
    muted[7] = True
    probability = np.load(tmp_path / "out" / "probability.npy").reshape(120, 160)  # one line: a 2-D file
    assert np.isnan(probability[muted]).all() and np.isfinite(probability[~muted]).all()
    assert np.isnan(np.load(tmp_path / "out" / "uncertainty.npy").reshape(120, 160)[muted]).all()
    assert not np.load(tmp_path / "out" / "mask.npy").reshape(120, 160)[muted].any()
    with segyio.open(tmp_path / "out" / "probability.sgy", ignore_geometry=True) as f:
        written = segyio.tools.collect(f.trace[:])
    assert (written[muted] == 0).all() and np.allclose(written[~muted], probability[~muted], atol=1e-3)
    assert summary["amplitude_map"]["mutes"] and summary["domain_check"]["samples"] == (~muted).sum()
    image = np.full((101, 60), 90, np.uint8)
    image[:10] = 0  # black rows on top of a grey image: data
    image[10:] = rng.integers(0, 256, (91, 60))
    cv2.imwrite(str(tmp_path / "section.png"), image)
    summary = segment(tmp_path / "section.png", tmp_path / "image_out")
    assert not summary["amplitude_map"]["mutes"] and np.isfinite(np.load(tmp_path / "image_out" / "probability.npy")).all()


def test_the_run_decides_how_windows_are_made_unless_told(tmp_path):
    from salt_tf.seismic.segment import window_norm

    stretched = stretch(np.random.default_rng(0).normal(0, 1, (20, 101, 101)))
    dull = np.random.default_rng(1).integers(60, 190, (20, 101, 101), dtype=np.uint8)
    assert tile_stats.window_norm(stretched) == ("minmax", 1.0)
    assert tile_stats.window_norm(dull) == ("global", 0.0)
    tile_stats.write_tile_stats(tmp_path, stretched)
    stats = tile_stats.read_tile_stats(tmp_path)
    assert window_norm(stats, None) == ("minmax", "the run's tiles: 100% span 0..255")
    assert window_norm(stats, "global") == ("global", "--window-norm")
    assert window_norm(tile_stats.DEFAULT_TILE_STATS, None)[0] == "global"  # runs recorded before: as then
