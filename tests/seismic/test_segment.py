"""segment.py and salt_tf/seismic/segment.py on the synthetic section and volume: outputs in the input's
layout, SEG-Y geometry and headers kept, blending exact for a stand-in identity model, the run's
ensemble through predict_probs, and every bad input refused with nothing written."""
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import segyio
from scripts import load_script

from salt_tf.common.errors import SectionError
from salt_tf.inference.predict import load_ensemble, predict_probs
from salt_tf.run import tile_stats
from salt_tf.seismic import interpret, sections
from salt_tf.seismic import synthetic as synthetic_sections
from salt_tf.seismic.segment import run
from salt_tf.seismic.seiswrite import write_segy_volume

CLI = load_script("segment.py", "segment_cli")


def identity(windows):
    return windows.astype(np.float32) / 255.0


def quiet(line):
    pass


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic_sections.write_sections(tmp_path_factory.mktemp("sections") / "set", seed=5,
                                    section=(230, 120), volume=(14, 70, 90))


def grey_of(amplitudes, summary):
    m = summary["amplitude_map"]
    return sections.AmplitudeMap(m["centre"], m["gain"], m["grey_median"])(amplitudes)


def test_npy_section_with_identity_model_gives_back_the_mapped_section(synth, tmp_path):
    out = tmp_path / "out"
    summary = run(None, synth / "section.npy", out, model=identity, threshold=0.4, truth=synth / "section_mask.npy",
                  progress=False, log=quiet)
    amplitudes = np.load(synth / "section.npy")
    probs = np.load(out / "probability.npy")
    assert probs.dtype == np.float16 and probs.shape == amplitudes.shape  # (traces, samples), as the input
    expected = grey_of(amplitudes, summary) / 255.0
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=1e-3)  # float16 rounding only
    np.testing.assert_array_equal(np.load(out / "mask.npy"), probs.astype(np.float32) > 0.4)
    assert (out / "figures" / "section.png").stat().st_size > 10_000
    assert json.loads((out / "segment.json").read_text())["windows"] == summary["windows"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


def test_the_mask_leaves_out_salt_patches_smaller_than_the_runs_minimum_area(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "report.json").write_text(json.dumps({"threshold": 0.5, "min_area": 30, "boundary_threshold": 0.9}))
    tile_stats.write_tile_stats(run_dir, np.random.default_rng(1).integers(40, 220, (30, 101, 101), dtype=np.uint8))
    section = np.random.default_rng(2).normal(0, 1, (120, 150)).astype(np.float32)  # (traces, samples)
    section[10:30, 40:60] = 50.0  # 400 pixels of salt (grey 255 through the map)
    section[80:85, 100:105] = 50.0  # 25 pixels
    np.save(tmp_path / "section.npy", section)
    masks = {}
    for name, given in (("run's", None), ("none", 0)):
        summary = run(run_dir, tmp_path / "section.npy", tmp_path / name, model=identity, windows="global", min_area=given,
                      progress=False, log=quiet)
        salt = np.load(tmp_path / name / "probability.npy").astype(np.float32) > 0.9
        masks[name] = np.load(tmp_path / name / "mask.npy").astype(bool)
        assert salt[10:30, 40:60].all() and salt[80:85, 100:105].all()  # the probability keeps both
        if given is None:
            assert (summary["min_area"], summary["min_area_source"]) == (30, "report.json min_area")
            np.testing.assert_array_equal(masks[name], interpret.drop_small_patches(salt, 30))
        else:
            assert (summary["min_area"], summary["min_area_source"]) == (0, "given")
            np.testing.assert_array_equal(masks[name], salt)
    assert masks["run's"][10:30, 40:60].all() and not masks["run's"][80:85, 100:105].any()
    assert masks["none"][80:85, 100:105].all()
    assert json.loads((tmp_path / "run's" / "segment.json").read_text())["min_area"] == 30


def test_scales_are_recorded_and_resampled_back_to_the_input(synth, tmp_path):
    summary = run(None, synth / "section.npy", tmp_path / "out", model=identity, scales="1,0.5", windows="global",
                  progress=False, log=quiet)
    amplitudes = np.load(synth / "section.npy")
    probs = np.load(tmp_path / "out" / "probability.npy").astype(np.float32)
    assert probs.shape == amplitudes.shape and summary["amplitude_map"]["scales"] == [1.0, 0.5]
    assert summary["windows"] == sections.count_windows(amplitudes.shape[1], amplitudes.shape[0], 50, (1.0, 0.5))
    # the identity's mean over the two scales: the section itself blurred a little by the coarse one
    expected = grey_of(amplitudes, summary) / 255.0
    assert 0.0 < np.abs(probs - expected).mean() < 0.1
    assert np.load(tmp_path / "out" / "uncertainty.npy").astype(np.float32).max() > 0  # the scales differ


@pytest.mark.parametrize("direction", ["inline", "crossline", "both"])
def test_segy_volume_keeps_its_geometry_and_headers(synth, tmp_path, direction):
    out = tmp_path / "out"
    sections = 3 if direction == "both" else 0  # the section figures once (0.9 s each)
    summary = run(None, synth / "volume.sgy", out, direction=direction, lines=(2, 13), model=identity,
                  progress=False, log=quiet, n_figures=sections)
    cube = np.load(synth / "volume.npy")[1:13]
    probs = np.load(out / "probability.npy").astype(np.float32)
    assert probs.shape == cube.shape
    # identity model: every direction gives the mapped amplitudes back
    np.testing.assert_allclose(probs, grey_of(cube, summary) / 255.0, atol=1e-3)
    with segyio.open(synth / "volume.sgy") as src, segyio.open(out / "probability.sgy") as f:
        assert list(f.ilines) == list(range(2, 14)) and list(f.xlines) == list(src.xlines)
        assert list(f.samples) == list(src.samples) and f.text[0] == src.text[0]
        for t in range(f.tracecount):
            assert f.header[t] == src.header[t + 70]
        np.testing.assert_array_equal(segyio.tools.cube(f), probs)
    made = ["domain_check.png", "top_of_salt.png"]
    if sections:
        made += ["disagreement.png", "inline_13.png", "inline_2.png", "inline_8.png"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(made)


def test_section_smaller_than_a_tile_is_padded(tmp_path):
    small = np.random.default_rng(0).normal(0, 1, (40, 30)).astype(np.float32)
    np.save(tmp_path / "small.npy", small)
    summary = run(None, tmp_path / "small.npy", tmp_path / "out", model=identity, progress=False, log=quiet)
    probs = np.load(tmp_path / "out" / "probability.npy").astype(np.float32)
    np.testing.assert_allclose(probs, grey_of(small, summary) / 255.0, atol=1e-3)


# --- the run's ensemble, through the command ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A run folder as training leaves it, with one tiny exported model (32x32 input)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(keras.layers.Conv2D(4, 1, activation="tanh")(inputs)))
    folder = tmp_path_factory.mktemp("tiny") / "run"
    model.export(str(folder / "fold0" / "saved_model"), verbose=False)
    (folder / "report.json").write_text(json.dumps({"threshold": 0.45, "min_area": 0, "boundary_threshold": 0.4}))
    tile_stats.write_tile_stats(folder, np.random.default_rng(1).integers(40, 220, (30, 101, 101), dtype=np.uint8))
    return folder


def test_cli_runs_the_ensemble_through_predict_probs(synth, tiny_export, tmp_path, capsys):
    out = tmp_path / "out"
    code = CLI.main(["--run", str(tiny_export), "--input", str(synth / "volume.npy"), "--out", str(out),
                     "--lines", "1:2", "--stride", "40", "--figures", "1"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "segment.json").read_text())
    # whole sections are cut at the run's boundary threshold, not its competition one
    assert summary["threshold"] == 0.4 and summary["threshold_source"] == "report.json boundary_threshold"
    assert summary["tile_stats"] == "training tiles"
    ensemble = load_ensemble(tiny_export)
    cube = np.load(synth / "volume.npy")
    for k in (1, 2):
        grey = grey_of(cube[k].T, summary)
        expected = sections.segment_section(grey, lambda w: predict_probs(ensemble, w, progress=False), stride=40)
        np.testing.assert_allclose(np.load(out / "probability.npy")[k - 1].astype(np.float32), expected.T, atol=1e-3)
    assert (np.load(out / "mask.npy") == (np.load(out / "probability.npy").astype(np.float32) > 0.4)).all()
    assert "windows/s" in capsys.readouterr().err


# --- bad input: a clear error naming the file, nothing written ---------------------------------


def bad_input(case, folder: Path, synth: Path):
    folder.mkdir()
    rng = np.random.default_rng(0)
    if case == "not a SEG-Y":
        (folder / "v.sgy").write_bytes(rng.bytes(5000))
        return folder / "v.sgy", {}, "v.sgy: not a readable SEG-Y file"
    if case in ("NaN", "infinite"):
        cube = np.load(synth / "volume.npy").copy()
        cube[3, 10, 20] = np.nan if case == "NaN" else np.inf
        write_segy_volume(folder / "v.sgy", cube)
        return folder / "v.sgy", {}, "v.sgy line 4: NaN or infinite amplitudes (1 values, first at trace 10, sample 20)"
    if case == "NaN in a line the amplitude sample skips":  # found while streaming, inside the temporary
        cube = rng.normal(size=(20, 30, 40)).astype(np.float32)
        cube[7, 10, 20] = np.nan
        np.save(folder / "v.npy", cube)
        return folder / "v.npy", {}, "v.npy line 7: NaN or infinite amplitudes (1 values, first at trace 10, sample 20)"
    if case == "constant":
        np.save(folder / "flat.npy", np.full((200, 150), 3.0, np.float32))
        return folder / "flat.npy", {}, "flat.npy: amplitudes are constant"
    if case == "all zeros":
        np.save(folder / "zero.npy", np.zeros((200, 150), np.float32))
        return folder / "zero.npy", {}, "zero.npy: no data: every trace is absent or all zeros"
    if case == "too small":
        np.save(folder / "thin.npy", rng.normal(size=(300, 6)).astype(np.float32))
        return folder / "thin.npy", {}, "thin.npy: 6 samples is too few"
    if case == "scale":
        return synth / "section.npy", {"scales": "1,0"}, "--scale 1,0: expected distinct factors within 0.1..4"
    if case == "inline range":
        return synth / "volume.sgy", {"lines": (4, 19)}, "volume.sgy: inline range 4..19 outside the volume's inlines 1..14"
    if case == "crossline of a 2-D section":
        return synth / "section.sgy", {"direction": "crossline"}, "section.sgy: --direction crossline needs a 3-D volume"
    if case == "negative minimum area":
        return synth / "section.npy", {"min_area": -1}, "--min-area -1: must be at least 0"
    if case == "truth of another shape":
        return synth / "section.npy", {"truth": synth / "volume_mask.npy"}, "volume_mask.npy: true mask of shape"
    raise AssertionError(case)


BAD = ["not a SEG-Y", "NaN", "infinite", "NaN in a line the amplitude sample skips", "constant", "all zeros", "too small", "scale", "inline range", "crossline of a 2-D section",
       "truth of another shape", "negative minimum area"]


@pytest.fixture(scope="module")
def context_export(tmp_path_factory):
    """A run as section_context.py exports a fine-tune: fold0/model.keras of any input size, the start's
    config and report.json's ``context`` (20 px around each window, read at 48x48)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 5, padding="same")(keras.layers.Conv2D(4, 1, activation="tanh")(inputs)))
    folder = tmp_path_factory.mktemp("context") / "run"
    (folder / "fold0").mkdir(parents=True)
    model.save(folder / "fold0" / "model.keras")
    (folder / "config.json").write_text(json.dumps({"size": 32}))
    context = {"margin": 20, "size": 48, "threshold": 0.55, "min_area": 7}
    (folder / "report.json").write_text(json.dumps({"threshold": 0.45, "min_area": 0, "boundary_threshold": 0.4,
                                                    "context": context}))
    tile_stats.write_tile_stats(folder, np.random.default_rng(1).integers(40, 220, (30, 101, 101), dtype=np.uint8))
    return folder


def test_a_run_that_reads_with_context_gets_each_window_with_its_margin_and_its_context_threshold(synth, context_export,
                                                                                                   tmp_path, capsys):
    """A run fine-tuned with context (section_context.py's export: a model.keras of any input size and
    report.json's ``context``): segment.py cuts windows of 101 + 2 x margin around the usual centres,
    reads them at the context's input size, blends the centres, and cuts at the context's threshold."""
    folder = context_export
    out = tmp_path / "out"
    code = CLI.main(["--run", str(folder), "--input", str(synth / "section.npy"), "--out", str(out), "--figures", "0"])
    assert code == 0, capsys.readouterr().err
    assert "with 20 px of context around each" in capsys.readouterr().out
    summary = json.loads((out / "segment.json").read_text())
    assert summary["amplitude_map"]["context"] == 20
    assert (summary["threshold"], summary["threshold_source"]) == (0.55, "report.json context threshold")
    assert (summary["min_area"], summary["min_area_source"]) == (7, "report.json context min_area")
    ensemble = load_ensemble(folder)
    seen = []

    def model_of(windows):
        seen.append(windows.shape[1:])
        return predict_probs(ensemble, windows, progress=False)

    grey = grey_of(np.load(synth / "section.npy"), summary).T
    expected = sections.segment_section(grey, model_of, margin=20)
    assert seen == [(141, 141)]
    np.testing.assert_allclose(np.load(out / "probability.npy").astype(np.float32), expected.T, atol=1e-3)
    alone = sections.segment_section(grey, lambda w: predict_probs(ensemble, w, progress=False))
    assert np.abs(alone - expected).max() > 0.01  # the margin changes what the model reads


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_and_nothing_is_written(case, synth, tmp_path):
    path, options, message = bad_input(case, tmp_path / "in", synth)
    with pytest.raises(SectionError) as err:
        run(None, path, tmp_path / "out" / "seg", model=identity, progress=False, log=quiet, **options)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_existing_output_is_refused_by_the_command(synth, tiny_export, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    code = CLI.main(["--run", str(tiny_export), "--input", str(synth / "section.npy"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "out: output exists; refusing to overwrite it" in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())


def test_large_grayscale_image_keeps_its_layout(synth, tmp_path):
    import cv2

    rng = np.random.default_rng(4)
    image = np.clip(rng.normal(120, 30, (150, 260)), 0, 255).astype(np.uint8)  # rows = samples
    cv2.imwrite(str(tmp_path / "line.tif"), image)
    summary = run(None, tmp_path / "line.tif", tmp_path / "out", model=identity, progress=False, log=quiet)
    probs = np.load(tmp_path / "out" / "probability.npy").astype(np.float32)
    assert probs.shape == image.shape
    np.testing.assert_allclose(probs, grey_of(image.astype(np.float32), summary) / 255.0, atol=1e-3)


def test_cli_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        CLI.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--run", "--input", "--out", "--direction", "--lines", "--stride", "--amp-percentile", "--amp-clip",
                 "--threshold", "--truth", "--figures", "--no-tta", "--batch-size", "--scale", "--window-norm"):
        assert flag in text


def test_missing_run_folder_is_refused_by_the_command(synth, tmp_path, capsys):
    code = CLI.main(["--run", str(tmp_path / "nope"), "--input", str(synth / "section.sgy"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "nope: run folder not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
