"""A synthetic TGS salt data set, written in exactly the competition's layout.

Each tile is a 101x101 seismic section built the way a seismic image forms: a random reflectivity
series convolved with a Ricker wavelet gives the layered reflectors, and every pixel samples that
trace at a warped "time" that folds the layers (smooth vertical displacement varying with x), tilts
them and faults them (a displacement jump across a slanted line). A salt body is a smooth blob
(a thresholded mix of a tilt, a dome and smooth noise) that replaces the layers by dim, chaotic,
vertically streaky texture, drags the neighbouring layers upwards, and reflects strongly at its top
(a bright band just above its upper edge). Noise varies per tile, and each tile is min-max stretched
to 0..255 on its own, as the competition's tiles were.

The statistics follow the real training set (3,200 tiles): depths of 506 +- 210 ft within
50..959 ft, 39% of tiles without salt, salt most likely between 300 and 700 ft and least likely
above 200 ft, salt coverage spread from a few pixels to nearly the whole tile, never all of it.

Pure NumPy and OpenCV, no TensorFlow. ``generate`` writes the layout atomically; the command line is
``python -m salt_tf.tiles.synthetic OUT_DIR --n-train 400 --n-test 100 --seed 0``. Whole sections and
volumes from the same recipe: ``salt_tf.seismic.synthetic``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from salt_tf.common.atomic import building
from salt_tf.tiles.framing import stretch
from salt_tf.tiles.rle import encode

SIZE = 101  # the competition's tile side in pixels

# The recipe's version, in the name of the cached set (``embedded_set``):
# raised whenever the tiles a seed gives change, so that a set cached by an older recipe is not
# reused. 2: each tile min-max stretched to 0..255 (issue 38).
RECIPE_VERSION = 2

# Depths in feet: a normal truncated to the real range (50..959 ft) whose mean and spread match
# the real depths.csv (mean 506, std 210; the truncation trims the std from 250 to 210).
DEPTH_MEAN, DEPTH_STD, DEPTH_MIN, DEPTH_MAX = 506.0, 250.0, 50, 959

# Probability that a tile holds salt, by depth, read off the real training set in 100 ft bins
# (24% above 200 ft, 51% at 200-300 ft, ~70% at 300-700 ft, 60% at 700-800 ft, 51% below).
# Averaged over the depths it leaves 39.3% of tiles empty (real: 39%; expected_empty_share).
SALT_DEPTHS = np.array([50.0, 150.0, 250.0, 350.0, 450.0, 550.0, 650.0, 750.0, 850.0, 959.0])
SALT_PROBABILITIES = np.array([0.20, 0.25, 0.50, 0.68, 0.69, 0.70, 0.70, 0.60, 0.51, 0.48])

# Salt coverage of salty tiles ~ Beta(0.7, 1): its quantiles (5%: 0.014, 25%: 0.14, 50%: 0.37,
# 75%: 0.66) are close to the real ones (0.006, 0.11, 0.37, 0.67). Clipped so that a body has at
# least ~40 pixels and, as in the real set, never covers the whole tile.
COVERAGE_BETA = (0.7, 1.0)
COVERAGE_MIN, COVERAGE_MAX = 0.004, 0.985

MASK_SALT = 65535  # the real masks are 16-bit PNGs holding 0 and 65535

# Inside salt: incoherent noise blurred by a Gaussian of these widths (samples; across the traces,
# along them: streaky along the vertical), scaled to this standard deviation relative to the
# unit-variance layers, and faded in over this width at the salt's edge. Tiles and volumes share it,
# so that a model trained on the tiles meets the same salt in a synthetic volume.
CHAOS_SIGMA_ACROSS, CHAOS_SIGMA_ALONG, CHAOS_LEVEL = (0.6, 1.5), (2.0, 6.0), (0.1, 0.35)
CHAOS_EDGE = 0.7

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def salt_probability(depth: np.ndarray | float) -> np.ndarray:
    """Probability that a tile at ``depth`` feet holds salt (piecewise linear in depth)."""
    return np.interp(depth, SALT_DEPTHS, SALT_PROBABILITIES)


def depth_probabilities() -> tuple[np.ndarray, np.ndarray]:
    """Every depth ``draw_depth`` can return and its probability: a normal rounded to whole feet
    and truncated to DEPTH_MIN..DEPTH_MAX."""
    depths = np.arange(DEPTH_MIN, DEPTH_MAX + 1, dtype=np.float64)
    edges = np.concatenate([depths - 0.5, [DEPTH_MAX + 0.5]])
    scale = DEPTH_STD * math.sqrt(2.0)
    cdf = np.array([0.5 * (1.0 + math.erf((edge - DEPTH_MEAN) / scale)) for edge in edges])
    mass = np.diff(cdf)
    return depths, mass / mass.sum()


def draw_depth(rng: np.random.Generator) -> int:
    """A tile's depth in whole feet."""
    # Redraw rather than clip: the real depths do not pile up at their extremes.
    while True:
        depth = int(np.rint(rng.normal(DEPTH_MEAN, DEPTH_STD)))
        if DEPTH_MIN <= depth <= DEPTH_MAX:
            return depth


def expected_empty_share() -> float:
    """The share of tiles without salt that ``generate`` draws from, averaged over depths."""
    depths, weights = depth_probabilities()
    return float(1.0 - np.sum(weights * salt_probability(depths)))


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Unit-variance-ish noise that varies over about SIZE / cells pixels."""
    # Upsample a coarse grid past the tile and crop the centre, so the borders are as smooth and
    # as random as the middle (resizing straight to the tile would flatten the edges).
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = int(round(SIZE * (cells + 3) / cells))
    field = cv2.resize(grid, (big, big), interpolation=cv2.INTER_CUBIC)
    start = (big - SIZE) // 2
    return field[start : start + SIZE, start : start + SIZE]


def _salt_mask(rng: np.random.Generator) -> np.ndarray:
    """A smooth salt body, uint8 0/1: one piece of about a drawn share of the tile, never all."""
    y, x = _YY / (SIZE - 1), _XX / (SIZE - 1)
    # Salt rises from below, so the body mostly grows downwards (a tilted floor of salt) ...
    angle = rng.normal(np.pi / 2, 0.8)
    tilt = np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)
    # ... often with a dome (an ellipse whose convex top sits in the tile) ...
    cx, cy = rng.uniform(0.0, 1.0), rng.uniform(0.3, 1.3)
    rx, ry = rng.uniform(0.15, 0.8), rng.uniform(0.2, 0.9)
    dome = -np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    # ... and a wandering outline.
    noise = _smooth_noise(rng, int(rng.integers(2, 7)))
    weights = rng.dirichlet([1.0, 1.0, 0.7]) * [2.0, 1.5, 1.0]
    field = weights[0] * tilt + weights[1] * dome + weights[2] * 0.25 * noise
    # One body (the metric scores a tile's salt as one object): the connected piece of the
    # top-k pixels of the field that holds its peak, with k as large as keeps that piece within
    # the drawn pixel count. The piece grows with k, so a bisection finds it; and since it never
    # exceeds the count, the body never covers the whole tile.
    coverage = np.clip(rng.beta(*COVERAGE_BETA), COVERAGE_MIN, COVERAGE_MAX)
    n_salt = int(round(coverage * SIZE * SIZE))
    ranked = np.sort(field.ravel())[::-1]
    peak = np.unravel_index(np.argmax(field), field.shape)

    def body(k: int) -> np.ndarray:
        above = (field >= ranked[k - 1]).astype(np.uint8)
        _, labels = cv2.connectedComponents(above, connectivity=4)
        return (labels == labels[peak]).astype(np.uint8)

    lo, hi = n_salt, SIZE * SIZE  # body(lo) fits; find the largest k whose body still fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.count_nonzero(body(mid)) <= n_salt:
            lo = mid
        else:
            hi = mid - 1
    return body(lo)


def _ricker(wavelength: float) -> np.ndarray:
    """A Ricker (Mexican hat) wavelet with peak frequency 1 / wavelength, in pixel steps."""
    half = int(np.ceil(1.5 * wavelength))
    t = np.arange(-half, half + 1, dtype=np.float64)
    a = (np.pi * t / wavelength) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def reflector_trace(t: np.ndarray, reflectivity: np.ndarray, envelope_knots: np.ndarray,
           wavelength: float) -> np.ndarray:
    """One seismic trace over times ``t``: sparse reflectivity under a slow envelope (``0.4 +
    |knots|`` interpolated between every 40th time), convolved with a Ricker wavelet.

    The caller draws the random parts, each generator in its own order, so a seed keeps its data.
    """
    envelope = 0.4 + np.abs(np.interp(t, t[::40], envelope_knots))
    return np.convolve(reflectivity * envelope, _ricker(wavelength), mode="same")


def top_reflection(offsets: np.ndarray) -> np.ndarray:
    """The salt top's reflection by ``offsets`` (samples below the top, negative above): a bright
    lobe peaking 1.5 samples above the boundary and a weaker dark one just inside, like a Ricker
    wavelet, as the large impedance contrast at the top of salt gives."""
    return np.exp(-0.5 * (offsets + 1.5) ** 2) - 0.4 * np.exp(-0.5 * (offsets - 1.5) ** 2)


def _reflectors(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Folded, tilted, maybe faulted layered reflectors with unit standard deviation."""
    # One seismic trace with sparse (Laplace) reflectivity. Its extent covers every warped time
    # below (tilt, fold, fault and drag included).
    t = np.arange(-240, 360, dtype=np.float64)
    wavelength = float(np.exp(rng.uniform(np.log(3.5), np.log(14.0))))
    knots = rng.standard_normal(len(t[::40]))
    trace = reflector_trace(t, rng.laplace(size=len(t)), knots, wavelength)

    tau = _YY.astype(np.float64)
    tau = tau + np.clip(rng.normal(0.0, 0.35), -1.2, 1.2) * (_XX - SIZE / 2)  # dip
    fold_amplitude = rng.uniform(0.0, 14.0) * (1.0 + rng.uniform(-0.5, 0.5) * _YY / SIZE)
    fold_phase = rng.uniform(0.0, 2.0 * np.pi)
    tau += fold_amplitude * np.sin(2.0 * np.pi * _XX / rng.uniform(50.0, 260.0) + fold_phase)
    tau += rng.uniform(0.5, 2.0) * _smooth_noise(rng, 8)  # reflectors are never quite straight
    if rng.random() < 0.5:
        # A fault: a straight line at up to 50 degrees from vertical; one side drops by the throw.
        fx, fy = rng.uniform(10.0, SIZE - 10.0, size=2)
        phi = np.deg2rad(rng.uniform(-50.0, 50.0))
        side = (_XX - fx) * np.cos(phi) - (_YY - fy) * np.sin(phi) > 0
        tau += side * rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 20.0)
    if mask.any():
        # Layers next to salt are dragged up against it.
        tau += rng.uniform(0.0, 12.0) * cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 8.0)

    layers = np.interp(tau, t, trace)
    layers *= 1.0 + 0.3 * _smooth_noise(rng, 4)  # reflection strength varies along the layers
    layers -= layers.mean()
    return layers / (layers.std() + 1e-12)


def _salt_top(mask: np.ndarray) -> np.ndarray:
    """Salt pixels whose upper neighbour is sediment: the top of the salt, column by column.

    Salt reaching the tile's first row has no visible top there, so row 0 is never a top.
    """
    top = np.zeros_like(mask)
    top[1:] = mask[1:] & (1 - mask[:-1])
    return top


def with_salt_texture(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, blur) -> np.ndarray:
    """``image`` with the salt (``mask``) filled by low-amplitude incoherent texture, streaky along
    the vertical and faded in at the salt's edge (``CHAOS_*``): tiles and volumes share it.

    ``blur(array, across, along)`` is a Gaussian blur with those widths across and along the traces
    (``_blur_tile`` for a tile; a volume's blurs across both its inlines and its crosslines)."""
    noise = rng.standard_normal(image.shape).astype(np.float32)
    chaos = blur(noise, rng.uniform(*CHAOS_SIGMA_ACROSS), rng.uniform(*CHAOS_SIGMA_ALONG))
    chaos *= rng.uniform(*CHAOS_LEVEL) / (chaos.std() + 1e-12)
    soft = blur(mask.astype(np.float32), CHAOS_EDGE, CHAOS_EDGE)
    return image * (1.0 - soft) + chaos * soft


def _blur_tile(array: np.ndarray, across: float, along: float) -> np.ndarray:
    return cv2.GaussianBlur(array, (0, 0), sigmaX=across, sigmaY=along)  # tile rows are samples


def make_tile(rng: np.random.Generator, salty: bool) -> tuple[np.ndarray, np.ndarray]:
    """One tile drawn from ``rng``: (image uint8 (101, 101), mask uint8 (101, 101), 1 = salt).

    With ``salty`` the mask holds one connected body, never the whole tile; else it is empty.
    """
    mask = _salt_mask(rng) if salty else np.zeros((SIZE, SIZE), dtype=np.uint8)
    image = _reflectors(rng, mask)
    if salty:
        image = with_salt_texture(rng, image, mask, _blur_tile)
        # The top of salt reflects strongly, drawn row by row from each top pixel.
        top = _salt_top(mask).astype(np.float32)
        offsets = np.arange(-5, 5)  # row of the band minus row of the boundary
        band = np.zeros_like(top)
        for offset, weight in zip(offsets, top_reflection(offsets)):
            lo, hi = max(0, offset), min(SIZE, SIZE + offset)  # band[row] <- top[row - offset]
            band[lo:hi] += weight * top[lo - offset : hi - offset]
        band = cv2.GaussianBlur(band, (0, 0), sigmaX=1.0, sigmaY=0.3)
        strength = rng.uniform(1.8, 3.2) * (1.0 + 0.25 * _smooth_noise(rng, 3))
        image = image + band * strength
    noise = rng.normal(0.0, rng.uniform(0.05, 0.3), size=(SIZE, SIZE)).astype(np.float32)
    image = image + cv2.GaussianBlur(noise, (0, 0), 0.6)
    # Each tile min-max stretched to 0..255 on its own, as the competition's were (87.9% of the real
    # training tiles span exactly 0..255, nearly all others 0-3..252-255, 2.1% are constant): the
    # brightness and contrast of a tile follow from its own content, as in the real set.
    return stretch(image[None])[0], mask


def _draw_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct ids of 10 lowercase hex digits, like the real ones."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        for value in rng.integers(0, 16**10, size=count - len(ids)):
            name = f"{int(value):010x}"
            if name not in seen:
                seen.add(name)
                ids.append(name)
    return ids


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"{path}: OpenCV could not write the PNG")


def _write_csv(path: Path, header: str, rows: list[tuple[str, str]]) -> None:
    # Written by hand, "\n" line ends and no quoting, for byte-identical output across platforms.
    lines = [header] + [f"{a},{b}" for a, b in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")


def _build(root: Path, n_train: int, n_test: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = _draw_ids(rng, n_train + n_test)
    tile_rngs = rng.spawn(n_train + n_test)
    for folder in ("train/images", "train/masks", "test/images"):
        (root / folder).mkdir(parents=True)
    train_rows, depth_rows = [], []
    for i, (tile_id, tile_rng) in enumerate(zip(ids, tile_rngs)):
        depth = draw_depth(tile_rng)
        salty = bool(tile_rng.random() < salt_probability(depth))
        image, mask = make_tile(tile_rng, salty)
        depth_rows.append((tile_id, str(depth)))
        rgb = np.repeat(image[:, :, None], 3, axis=2)  # the real PNGs repeat gray in 3 channels
        if i < n_train:
            _write_png(root / "train" / "images" / f"{tile_id}.png", rgb)
            mask16 = mask.astype(np.uint16) * MASK_SALT
            _write_png(root / "train" / "masks" / f"{tile_id}.png", mask16)
            train_rows.append((tile_id, encode(mask)))
        else:
            _write_png(root / "test" / "images" / f"{tile_id}.png", rgb)
    # The real depths.csv mixes train and test ids in no particular order; so does this one.
    depth_rows = [depth_rows[j] for j in rng.permutation(len(depth_rows))]
    _write_csv(root / "train.csv", "id,rle_mask", train_rows)
    _write_csv(root / "depths.csv", "id,z", depth_rows)
    # Kaggle's sample submission predicts a single salt pixel, "1 1", for every test tile.
    _write_csv(root / "sample_submission.csv", "id,rle_mask", [(i, "1 1") for i in ids[n_train:]])


def generate(
    out_dir: str | os.PathLike, n_train: int = 400, n_test: int = 100, seed: int = 0
) -> Path:
    """Write a synthetic data set in the competition's layout to ``out_dir`` and return its path.

    Writes ``train/images/ID.png`` (8-bit, 3 identical channels), ``train/masks/ID.png`` (16-bit,
    0/65535), ``train.csv`` (id,rle_mask), ``depths.csv`` (id,z for train and test ids),
    ``test/images/ID.png`` and ``sample_submission.csv`` (id,rle_mask = "1 1"). The same seed
    gives byte-identical files. The set is built in a temporary folder next to ``out_dir`` and
    renamed into place, so ``out_dir`` is either complete or absent. Raises FileExistsError when
    ``out_dir`` exists and is not an empty folder.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        minimum = 0 if name == "seed" else 1  # the reader refuses a folder without tiles
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name}: expected an integer of at least {minimum}, got {value!r}")
    out_dir = Path(out_dir).absolute()
    with building(out_dir) as built:
        _build(built, int(n_train), int(n_test), int(seed))
    return out_dir


EMBEDDED = {"n_train": 400, "n_test": 100, "seed": 0}  # train.py's data when no --data is given


def embedded_set(cache: Path | None = None, log=print) -> Path:
    """The embedded synthetic data set (``EMBEDDED``), generated on first use into a cache folder
    named by the recipe's version (``~/.cache/salt_tf/synthetic-v2-n400-t100-seed0``)."""
    cache = cache or Path.home() / ".cache" / "salt_tf"
    root = cache / "synthetic-v{}-n{n_train}-t{n_test}-seed{seed}".format(RECIPE_VERSION, **EMBEDDED)
    if not (root / "train.csv").exists():
        log(f"No --data given: generating the synthetic data set into {root} (once)")
        generate(root, **EMBEDDED)
    else:
        log(f"No --data given: using the synthetic data set in {root}")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m salt_tf.tiles.synthetic",
        description="Write a synthetic seismic salt data set in the TGS competition's layout.",
    )
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", help="folder to create; it must not exist or must be empty"
    )
    parser.add_argument(
        "--n-train", type=int, default=400, help="number of labelled training tiles (default: 400)"
    )
    parser.add_argument(
        "--n-test", type=int, default=100, help="number of unlabelled test tiles (default: 100)"
    )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="random seed; the same seed writes byte-identical files (default: 0)",
    )
    args = parser.parse_args(argv)
    try:
        root = generate(args.out_dir, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {args.n_train} train and {args.n_test} test synthetic tiles "
          f"(seed {args.seed}) to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
