"""Synthetic whole sections and volumes with known salt, for ``segment.py``: the tiles' recipe
(``salt_tf.tiles.synthetic``) in 3-D, at any size, as SEG-Y amplitudes rather than grey levels.

``python -m salt_tf.seismic.synthetic OUT_DIR [--seed S]`` writes them (``write_sections``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from salt_tf.common.atomic import building
from salt_tf.seismic.seiswrite import write_segy_line, write_segy_volume
from salt_tf.tiles.synthetic import reflector_trace, top_reflection, with_salt_texture


def _smooth_field(rng: np.random.Generator, coords: list[np.ndarray], scale: float, waves: int = 12) -> np.ndarray:
    """Smooth noise of about unit variance varying over ``scale`` pixels: a sum of random plane
    waves, which works on a grid of any dimension (the tiles' ``synthetic._smooth_noise`` is 2-D only)."""
    field = np.zeros(np.broadcast_shapes(*(c.shape for c in coords)), dtype=np.float64)
    for _ in range(waves):
        k = rng.normal(0.0, 1.0 / scale, size=len(coords))
        field += np.cos(sum(ki * c for ki, c in zip(k, coords)) + rng.uniform(0.0, 2.0 * np.pi))
    return field * np.sqrt(2.0 / waves)


def _blur_volume(array: np.ndarray, across: float, along: float) -> np.ndarray:
    return ndimage.gaussian_filter(array, (across, across, along))  # (inlines, crosslines, samples)


def make_volume(rng: np.random.Generator, n_inlines: int = 12, n_xlines: int = 160, n_samples: int = 200,
                n_bodies: int = 2, amplitude: float = 1000.0, shape: str = "dome", wavelength=(4.0, 8.0),
                noise: float = 0.15, top_strength: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """A post-stack volume with salt domes: (amplitudes float32, mask uint8), both (inlines,
    crosslines, samples), segyio's cube layout; ``n_inlines=1`` gives a 2-D section.

    The same recipe as ``make_tile``, in 3-D: layered reflectors (``reflector_trace``)
    sampled at a warped time that dips, folds and is dragged up against the salt; salt domes rising
    from the bottom (a paraboloid top with a wandering outline), dim chaotic texture inside and a
    strong reflection at their top. Amplitudes are zero-mean in raw units (``amplitude`` ~ their
    standard deviation), as a SEG-Y holds them, not grey levels.

    Another survey than the tiles': ``shape="sheet"`` makes tabular salt
    sheets (a wandering top and base) instead of domes, ``wavelength`` the range of the wavelet's
    wavelength in samples, ``noise`` the noise level against unit-variance layers, ``top_strength``
    the top of salt's reflection.
    """
    il, xl, z = np.meshgrid(np.arange(n_inlines, dtype=np.float64), np.arange(n_xlines, dtype=np.float64),
                            np.arange(n_samples, dtype=np.float64), indexing="ij")
    plane = [il[:, :, 0], xl[:, :, 0]]
    top = np.full((n_inlines, n_xlines), np.inf)
    base = np.full((n_inlines, n_xlines), np.inf)
    for _ in range(n_bodies):
        ci, cx = rng.uniform(0, n_inlines), rng.uniform(0.15, 0.85) * n_xlines
        ri, rx = rng.uniform(0.4, 1.0) * max(n_inlines, 40), rng.uniform(0.12, 0.3) * n_xlines
        crest = rng.uniform(0.25, 0.55) * n_samples
        d2 = ((plane[0] - ci) / ri) ** 2 + ((plane[1] - cx) / rx) ** 2
        if shape == "sheet":  # flat-topped, a tenth to a third of the section thick, tapering at its rim
            inside = d2 < 1.0
            sheet_top = crest + 6.0 * _smooth_field(rng, plane, 20.0) + 10.0 * d2
            thick = rng.uniform(0.1, 0.3) * n_samples * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
            top = np.where(inside & (sheet_top < top), sheet_top, top)
            base = np.where(inside & (sheet_top < top + 1e-9), sheet_top + thick, base)
        else:
            top = np.minimum(top, crest + 1.2 * n_samples * d2 + 4.0 * _smooth_field(rng, plane, 15.0))
    mask = ((z >= top[:, :, None]) & (z <= base[:, :, None])).astype(np.uint8)

    t = np.arange(-2 * n_samples, 3 * n_samples, dtype=np.float64)
    reflectivity = rng.laplace(size=len(t))
    knots = rng.standard_normal(len(t[::40]))
    trace = reflector_trace(t, reflectivity, knots, float(rng.uniform(*wavelength)))
    tau = z + rng.normal(0, 0.15) * xl + rng.normal(0, 0.15) * il
    tau += rng.uniform(3.0, 10.0) * _smooth_field(rng, [il, xl, z], 60.0)
    above = np.clip(top[:, :, None] - z, 0.0, None)
    tau += rng.uniform(5.0, 15.0) * np.exp(-above / 25.0) * (mask == 0)  # layers dragged up against the salt
    image = np.interp(tau, t, trace)
    image /= image.std() + 1e-12
    image = with_salt_texture(rng, image, mask, _blur_volume)  # the tiles' salt
    image += top_strength * top_reflection(z - top[:, :, None])
    image += rng.normal(0.0, noise, size=image.shape)
    return (amplitude * image).astype(np.float32), mask


def write_sections(out_dir: str | os.PathLike, seed: int = 0, section: tuple[int, int] = (600, 300),
                   volume: tuple[int, int, int] = (12, 160, 200)) -> Path:
    """Write a large 2-D section and a small 3-D volume with their known salt masks, for
    ``segment.py``: ``section.npy`` (traces, samples), ``section.sgy`` (2-D line), ``section_mask.npy``,
    ``volume.npy`` (inlines, crosslines, samples), ``volume.sgy`` (3-D, inlines from 1), ``volume_mask.npy``.
    The folder is built beside ``out_dir`` and renamed into place; it must not exist or be empty.
    """
    out_dir = Path(out_dir).absolute()
    with building(out_dir) as built:
        rng_section, rng_volume = np.random.default_rng(seed).spawn(2)
        amplitudes, mask = make_volume(rng_section, 1, *section, n_bodies=3)
        np.save(built / "section.npy", amplitudes[0])
        np.save(built / "section_mask.npy", mask[0])
        write_segy_line(built / "section.sgy", amplitudes[0])
        amplitudes, mask = make_volume(rng_volume, *volume)
        np.save(built / "volume.npy", amplitudes)
        np.save(built / "volume_mask.npy", mask)
        write_segy_volume(built / "volume.sgy", amplitudes)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m salt_tf.seismic.synthetic",
        description="Write a large synthetic 2-D section and a small 3-D volume (.npy and SEG-Y, with known "
                    "salt masks) for segment.py.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to create; it must not exist or must be empty")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed writes byte-identical files (default: 0)")
    args = parser.parse_args(argv)
    try:
        root = write_sections(args.out_dir, seed=args.seed)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote a synthetic 2-D section and 3-D volume (seed {args.seed}) to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
