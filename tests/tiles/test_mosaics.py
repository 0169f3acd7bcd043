"""salt_tf/tiles/mosaics.py: mosaics read and assembled exactly from their tiles, labels only where a
train mask exists, and each tile's own stretch undone so that neighbours continue."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from salt_tf.tiles import framing, mosaics
from salt_tf.tiles.data import DataError, read_image, read_mask
from salt_tf.tiles.mosaics import TILE, UNLABELLED


def _write_tiles(root, grid, image, mask, train):
    """Cut (image, mask) into the grid's 101x101 cells and write each id as a train tile (with its
    mask) or a test tile, min-max stretched on its own as the competition released them."""
    for (r, c), tile_id in np.ndenumerate(grid):
        if not tile_id:
            continue
        cell = image[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        grey = np.rint(255 * (cell - cell.min()) / (cell.max() - cell.min())).astype(np.uint8)
        folder = root / ("train" if tile_id in train else "test")
        (folder / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "images" / f"{tile_id}.png"), grey)
        if tile_id in train:
            (folder / "masks").mkdir(parents=True, exist_ok=True)
            cell_mask = mask[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            cv2.imwrite(str(folder / "masks" / f"{tile_id}.png"), cell_mask.astype(np.uint16) * 65535)


@pytest.fixture
def section(tmp_path):
    """A smooth 2 x 3 tile section: ids a..e, one cell empty, 'c' and 'e' test tiles, 'x' in no folder."""
    y, x = np.mgrid[0 : 2 * TILE, 0 : 3 * TILE].astype(np.float64)
    image = np.sin(x / 17.0) * np.cos(y / 23.0) + 0.002 * x + 0.5 * np.sin(y / 9.0 + x / 40.0)
    mask = (y > 120 + 20 * np.sin(x / 30.0)).astype(np.uint8)
    grid = np.array([["a", "b", "c"], ["d", "", "e"]], dtype=object)
    _write_tiles(tmp_path, grid, image, mask, train={"a", "b", "d"})
    (tmp_path / "m.csv").write_text('"a","b","c"\n"d",,"e","x"\n')
    return tmp_path, image, mask


def test_a_mosaic_is_its_tiles_with_labels_only_on_train_tiles(section):
    root, _, mask = section
    got = mosaics.assemble(root / "m.csv", root / "train", [root / "test" / "images"])
    assert got.ids.shape == (2, 4) and got.image.shape == got.label.shape == (2 * TILE, 4 * TILE)
    assert got.known.tolist() == [[True, True, True, False], [True, False, True, False]]
    for r, c, tile_id in ((0, 0, "a"), (0, 1, "b"), (1, 0, "d")):
        image, label = got.tile(r, c)
        np.testing.assert_array_equal(image, read_image(root / "train" / "images" / f"{tile_id}.png"))
        np.testing.assert_array_equal(label, read_mask(root / "train" / "masks" / f"{tile_id}.png"))
        np.testing.assert_array_equal(label, mask[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE])
    np.testing.assert_array_equal(got.tile(0, 2)[0], read_image(root / "test" / "images" / "c.png"))
    for r, c in ((0, 2), (1, 2), (1, 1), (0, 3), (1, 3)):  # test tiles, the empty cell, 'x': unlabelled
        assert (got.tile(r, c)[1] == UNLABELLED).all()
    assert not got.tile(1, 1)[0].any() and not got.tile(1, 3)[0].any()


def test_continuous_undoes_each_tiles_stretch_up_to_one_affine_map(section):
    root, image, _ = section
    got = mosaics.assemble(root / "m.csv", root / "train", [root / "test" / "images"])
    flat = mosaics.continuous(got)
    known = np.kron(got.known, np.ones((TILE, TILE), bool))
    truth = np.zeros(got.image.shape)
    truth[: image.shape[0], : image.shape[1]] = image
    # one gain and offset for the whole (connected) section maps it onto the truth
    a = np.stack([flat[known], np.ones(known.sum())], axis=1)
    fit, *_ = np.linalg.lstsq(a, truth[known], rcond=None)
    residual = truth[known] - a @ fit
    assert residual.std() < 0.07 * truth[known].std()  # 5.0% on this section, the edges' own noise
    # the stretched tiles themselves are far from any single affine map of the truth
    a = np.stack([got.image[known].astype(np.float64), np.ones(known.sum())], axis=1)
    fit, *_ = np.linalg.lstsq(a, truth[known], rcond=None)
    assert (truth[known] - a @ fit).std() > 0.3 * truth[known].std()  # 38.7%
    assert not flat[~known].any()


def test_a_bad_mosaic_names_the_file(tmp_path):
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(DataError, match="empty.csv: expected a grid of tile ids"):
        mosaics.read_grid(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="no mosaic_"):
        mosaics.mosaic_paths(tmp_path)


def test_a_real_mosaic_is_its_tiles(realdata_dir, tgs_dir):
    paths = mosaics.mosaic_paths(realdata_dir / "mosaics")
    assert len(paths) == 377
    got = mosaics.assemble(realdata_dir / "mosaics" / "mosaic_10_121.csv", tgs_dir / "train",
                           [tgs_dir / "test" / "images", realdata_dir / "test_tiles"])
    assert got.ids.shape == (1, 10) and got.known.any()
    for (r, c), tile_id in np.ndenumerate(got.ids):
        if (tgs_dir / "train" / "images" / f"{tile_id}.png").is_file():
            np.testing.assert_array_equal(got.tile(r, c)[0], read_image(tgs_dir / "train" / "images" / f"{tile_id}.png"))
            np.testing.assert_array_equal(got.tile(r, c)[1], read_mask(tgs_dir / "train" / "masks" / f"{tile_id}.png"))
        elif got.known[r, c]:
            assert (got.tile(r, c)[1] == UNLABELLED).all()


def test_windows_across_the_grid_avoid_excluded_tiles_and_are_framed_as_tiles(section):
    root, image, mask = section
    got = mosaics.assemble(root / "m.csv", root / "train", [root / "test" / "images"])
    images, labels = mosaics.sample_windows([got], 10, seed=3, exclude={"d"}, min_labelled=0.2, tries=400)
    assert images.shape == labels.shape == (10, TILE, TILE) and images.dtype == np.uint8
    assert all(w.min() == 0 and w.max() == 255 for w in images)  # each stretched on its own
    assert ((labels == UNLABELLED) | (labels <= 1)).all()
    assert (np.mean(labels != UNLABELLED, axis=(1, 2)) >= 0.2).all()
    # never a pixel of tile d (row 1, column 0): no window reaches below row 101 left of column 101
    flat = mosaics.continuous(got)
    again, _ = mosaics.sample_windows([got], 10, seed=3, exclude={"d"}, min_labelled=0.2, tries=400)
    np.testing.assert_array_equal(images, again)  # seeded
    found = 0
    for w in images:  # each window is somewhere in the section, off the tile grid mostly
        for y in range(0, flat.shape[0] - TILE + 1):
            for x in range(0, flat.shape[1] - TILE + 1):
                if np.array_equal(framing.stretch(flat[None, y : y + TILE, x : x + TILE])[0], w):
                    assert not (y + TILE > TILE and x < TILE), (y, x)
                    found += 1
                    break
            else:
                continue
            break
    assert found == len(images)
