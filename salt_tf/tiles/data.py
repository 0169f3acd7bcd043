"""Read a data set in Kaggle's TGS layout into arrays, checking every file on the way.

Layout (under ``root``)::

    train/images/ID.png   train/masks/ID.png   train.csv (id,rle_mask)
    test/images/ID.png    sample_submission.csv (id,rle_mask; optional)
    depths.csv (id,z)

Images may be 8-bit grayscale or 8-bit 3-channel copies of a grayscale tile (as Kaggle ships
them). Masks may be 8-bit (0/255) or 16-bit (0/65535), 1 or 3 channels. Any problem raises
DataError naming the file and what is wrong; nothing is skipped silently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from salt_tf.tiles import rle

TILE_SHAPE = (101, 101)


def real_data_dir() -> Path:
    """The real competition data for tests and benchmarks: ``$SALT_TF_TGS_DIR``, else
    ``../shared/tgs`` beside the project root. It is read in place, never copied into the project."""
    default = Path(__file__).resolve().parents[3] / "shared" / "tgs"
    return Path(os.environ.get("SALT_TF_TGS_DIR", default))


def real_seismic_dir() -> Path:
    """Real seismic beyond the tiles (the jigsaw mosaics, real SEG-Y files, the CGG section) for tests
    and benchmarks: ``$SALT_TF_REALDATA_DIR``, else ``../shared/realdata`` beside the project root.
    Read in place, never copied into the project (its licences forbid it)."""
    default = Path(__file__).resolve().parents[3] / "shared" / "realdata"
    return Path(os.environ.get("SALT_TF_REALDATA_DIR", default))


class DataError(ValueError):
    """A file of the data set is missing, unreadable or inconsistent with the others."""


@dataclass(frozen=True)
class TrainData:
    ids: np.ndarray  # (N,) str
    images: np.ndarray  # (N, 101, 101) uint8
    masks: np.ndarray  # (N, 101, 101) uint8, 1 = salt
    depths: np.ndarray  # (N,) float32, feet

    @property
    def table(self) -> pd.DataFrame:
        coverage = self.masks.reshape(len(self.masks), -1).mean(axis=1)
        return pd.DataFrame({"id": self.ids, "z": self.depths, "coverage": coverage})


@dataclass(frozen=True)
class TestData:
    ids: np.ndarray
    images: np.ndarray
    depths: np.ndarray

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"id": self.ids, "z": self.depths})


def _read_png(path: Path) -> np.ndarray:
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    array = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if array is None:
        raise DataError(f"{path}: not a readable image (empty or corrupt PNG)")
    return array


def _check_shape(path: Path, array: np.ndarray, shape: tuple[int, int]) -> None:
    if array.shape[:2] != shape:
        got = "x".join(map(str, array.shape[:2]))
        raise DataError(f"{path}: expected {shape[0]}x{shape[1]}, got {got}")


def read_image(path: str | os.PathLike, shape: tuple[int, int] = TILE_SHAPE) -> np.ndarray:
    """Read one tile as a (H, W) uint8 array."""
    path = Path(path)
    image = _read_png(path)
    _check_shape(path, image, shape)
    if image.dtype != np.uint8:
        raise DataError(f"{path}: expected an 8-bit image, got {image.dtype}")
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[..., :3]
        if image.shape[2] not in (1, 3):
            raise DataError(f"{path}: expected 1 or 3 channels, got {image.shape[2]}")
        if (image != image[..., :1]).any():
            raise DataError(f"{path}: expected a grayscale tile, but its channels differ")
        image = image[..., 0]
    return np.ascontiguousarray(image)


def read_mask(path: str | os.PathLike, shape: tuple[int, int] = TILE_SHAPE) -> np.ndarray:
    """Read one mask as a (H, W) uint8 array of 0/1."""
    path = Path(path)
    mask = _read_png(path)
    _check_shape(path, mask, shape)
    if mask.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: expected an 8- or 16-bit mask, got {mask.dtype}")
    if mask.ndim == 3:
        if (mask != mask[..., :1]).any():
            raise DataError(f"{path}: expected a one-channel mask, but its channels differ")
        mask = mask[..., 0]
    full = np.iinfo(mask.dtype).max
    odd = mask[(mask != 0) & (mask != full)]
    if odd.size:
        raise DataError(
            f"{path}: a mask holds only 0 (no salt) and {full} (salt), "
            f"found {odd.size} pixels of other values (e.g. {int(odd[0])})"
        )
    return (mask == full).astype(np.uint8)


def read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV of strings that must have ``columns`` and unique ids; DataError otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: expected columns {','.join(columns)}, missing {','.join(missing)} "
            f"(found {','.join(table.columns)})"
        )
    dup = table["id"][table["id"].duplicated()]
    if len(dup):
        raise DataError(f"{path}: id {dup.iloc[0]} appears more than once")
    return table


def read_depths(root: str | os.PathLike) -> pd.Series:
    """depths.csv as a Series of float depths indexed by id."""
    path = Path(root) / "depths.csv"
    table = read_csv(path, ("id", "z"))
    z = pd.to_numeric(table["z"], errors="coerce")
    if z.isna().any():
        bad = table["id"][z.isna()].iloc[0]
        raise DataError(f"{path}: depth of id {bad} is not a number")
    return pd.Series(z.to_numpy(dtype=np.float32), index=table["id"].to_numpy())


def _depths_for(ids: np.ndarray, depths: pd.Series, root: Path) -> np.ndarray:
    missing = [i for i in ids if i not in depths.index]
    if missing:
        raise DataError(
            f"{root / 'depths.csv'}: no depth for {len(missing)} ids (e.g. {', '.join(missing[:3])})"
        )
    return depths.loc[ids].to_numpy(dtype=np.float32)


def _folder_ids(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    names = sorted(os.listdir(folder))
    others = [n for n in names if not n.endswith(".png")]
    if others:
        raise DataError(f"{folder}: expected only .png tiles, found {others[0]}")
    if not names:
        raise DataError(f"{folder}: no .png tiles in this folder")
    return [n[: -len(".png")] for n in names]


def _match(listed: list[str], found: list[str], listed_in: Path, folder: Path) -> None:
    missing = sorted(set(listed) - set(found))
    if missing:
        raise DataError(f"{folder / (missing[0] + '.png')}: file not found (id listed in {listed_in})")
    extra = sorted(set(found) - set(listed))
    if extra:
        raise DataError(
            f"{folder / (extra[0] + '.png')}: id not listed in {listed_in} "
            f"({len(extra)} such files); refusing to drop it silently"
        )


def load_train(root: str | os.PathLike, shape: tuple[int, int] = TILE_SHAPE) -> TrainData:
    """Load every training tile, its mask and depth; check each mask against train.csv."""
    root = Path(root)
    table = read_csv(root / "train.csv", ("id", "rle_mask"))
    ids = table["id"].to_numpy(dtype=str)
    _match(list(ids), _folder_ids(root / "train" / "images"), root / "train.csv", root / "train" / "images")
    _match(list(ids), _folder_ids(root / "train" / "masks"), root / "train.csv", root / "train" / "masks")
    depths = _depths_for(ids, read_depths(root), root)
    images = np.empty((len(ids), *shape), dtype=np.uint8)
    masks = np.empty((len(ids), *shape), dtype=np.uint8)
    for i, (tile_id, run_lengths) in enumerate(zip(ids, table["rle_mask"])):
        images[i] = read_image(root / "train" / "images" / f"{tile_id}.png", shape)
        mask_path = root / "train" / "masks" / f"{tile_id}.png"
        masks[i] = read_mask(mask_path, shape)
        try:
            expected = rle.decode(run_lengths, shape)
        except rle.RLEError as err:
            raise DataError(f"{root / 'train.csv'}: rle_mask of id {tile_id}: {err}") from None
        if not np.array_equal(expected, masks[i]):
            differ = int((expected != masks[i]).sum())
            raise DataError(
                f"{mask_path}: disagrees with its rle_mask in {root / 'train.csv'} "
                f"({differ} pixels differ)"
            )
    return TrainData(ids=ids, images=images, masks=masks, depths=depths)


def load_images(folder: str | os.PathLike, ids=None, shape: tuple[int, int] = TILE_SHAPE):
    """Read the tiles of ``folder`` (all of them, sorted, or exactly ``ids``): (ids, images)."""
    folder = Path(folder)
    if ids is None:
        ids = _folder_ids(folder)
    ids = np.asarray(ids, dtype=str)
    images = np.empty((len(ids), *shape), dtype=np.uint8)
    for i, tile_id in enumerate(ids):
        images[i] = read_image(folder / f"{tile_id}.png", shape)
    return ids, images


def load_test(root: str | os.PathLike, shape: tuple[int, int] = TILE_SHAPE) -> TestData:
    """Load the test tiles; if sample_submission.csv exists, its ids must match the folder."""
    root = Path(root)
    folder = root / "test" / "images"
    ids = _folder_ids(folder)
    listing = root / "sample_submission.csv"
    if listing.exists():
        listed = list(read_csv(listing, ("id",))["id"])
        _match(listed, ids, listing, folder)
        ids = listed
    ids, images = load_images(folder, ids, shape)
    return TestData(ids=ids, images=images, depths=_depths_for(ids, read_depths(root), root))
