"""Tests for salt_tf/seismic/synthetic.py: synthetic sections and volumes for segment.py, and its command line."""
from __future__ import annotations

import numpy as np
import pytest

from salt_tf.seismic import synthetic as synthetic_sections


def test_volume_has_salt_domes_with_a_dim_interior_and_is_reproducible():
    amplitudes, mask = synthetic_sections.make_volume(np.random.default_rng(4), 3, 120, 150)
    again, mask_again = synthetic_sections.make_volume(np.random.default_rng(4), 3, 120, 150)
    assert np.array_equal(amplitudes, again) and np.array_equal(mask, mask_again)
    assert amplitudes.dtype == np.float32 and mask.shape == amplitudes.shape == (3, 120, 150)
    assert 0.03 < mask.mean() < 0.6
    # salt rises from below: every trace's salt is one run reaching the last sample
    salt_rows = mask.sum(axis=2)
    assert np.array_equal(mask[..., -1], (salt_rows > 0).astype(np.uint8))
    assert np.abs(amplitudes[mask == 1]).mean() < 0.5 * np.abs(amplitudes[mask == 0]).mean()
    assert abs(np.median(amplitudes)) < 0.1 * amplitudes.std()  # zero-mean raw amplitudes, like a SEG-Y


def test_write_sections_writes_npy_and_segy_that_agree(tmp_path):
    import segyio

    out = synthetic_sections.write_sections(tmp_path / "s", seed=1, section=(130, 60), volume=(4, 50, 60))
    assert sorted(p.name for p in out.iterdir()) == ["section.npy", "section.sgy", "section_mask.npy",
                                                     "volume.npy", "volume.sgy", "volume_mask.npy"]
    with segyio.open(out / "volume.sgy") as f:
        np.testing.assert_array_equal(segyio.tools.cube(f), np.load(out / "volume.npy"))
    with segyio.open(out / "section.sgy", ignore_geometry=True) as f:
        np.testing.assert_array_equal(f.trace.raw[:], np.load(out / "section.npy"))
    assert np.load(out / "section_mask.npy").shape == (130, 60)
    with pytest.raises(FileExistsError):
        synthetic_sections.write_sections(out, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_cli_writes_the_sections_of_the_library_and_refuses_a_non_empty_folder(tmp_path, capsys):
    assert synthetic_sections.main([str(tmp_path / "cli"), "--seed", "2"]) == 0
    assert "seed 2" in capsys.readouterr().out
    library = synthetic_sections.write_sections(tmp_path / "lib", seed=2)
    for name in ("section.npy", "volume.npy", "volume_mask.npy"):
        assert np.array_equal(np.load(tmp_path / "cli" / name), np.load(library / name))
    with pytest.raises(SystemExit) as exit_info:
        synthetic_sections.main([str(tmp_path / "cli")])
    assert exit_info.value.code == 2 and "not empty" in capsys.readouterr().err


def test_another_survey_has_sheets_of_salt_another_wavelet_noise_and_scale():
    from salt_tf.seismic.synthetic import make_volume

    domes, dome_mask = make_volume(np.random.default_rng(1))
    sheets, sheet_mask = make_volume(np.random.default_rng(1), shape="sheet", wavelength=(10.0, 16.0), noise=0.4,
                                     top_strength=1.2, amplitude=0.02)
    assert sheets.std() < 0.05 < 500 < domes.std()
    # domes reach the bottom of the volume; sheets have a base of salt with sediment below it
    assert dome_mask[:, :, -1].any() and not sheet_mask[:, :, -1].any() and sheet_mask.any()
    salty = sheet_mask.any(axis=2)
    assert (sheet_mask.sum(axis=2)[salty] < 0.35 * sheet_mask.shape[2]).all()
