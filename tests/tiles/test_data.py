import shutil
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from salt_tf.tiles import rle
from salt_tf.tiles.data import DataError, load_images, load_test, load_train, read_image, read_mask


def test_real_data_loads_and_agrees_with_train_csv(tgs_dir):
    start = time.perf_counter()
    train = load_train(tgs_dir)  # checks all 3,200 masks against their train.csv strings
    seconds = time.perf_counter() - start
    print(f"loaded {len(train.ids)} real training tiles in {seconds:.2f} s")
    assert train.images.shape == (3200, 101, 101) and train.images.dtype == np.uint8
    assert train.masks.shape == (3200, 101, 101) and train.masks.dtype == np.uint8
    assert set(np.unique(train.masks)) == {0, 1}
    assert train.depths.dtype == np.float32 and (train.depths > 0).all()
    table = train.table
    assert list(table.columns) == ["id", "z", "coverage"]
    # Documented in ../shared/tgs/README.md: about 39% empty, none fully covered.
    assert 0.37 < (table["coverage"] == 0).mean() < 0.41 and table["coverage"].max() < 1
    # Independent check against train.csv: re-encode every mask and compare strings.
    csv = pd.read_csv(tgs_dir / "train.csv", keep_default_na=False).set_index("id")
    assert all(rle.encode(m) == csv.loc[i, "rle_mask"] for i, m in zip(train.ids, train.masks))
    test = load_test(tgs_dir)
    assert test.images.shape == (1000, 101, 101)
    assert list(test.ids) == list(pd.read_csv(tgs_dir / "sample_submission.csv")["id"])


# --- small data sets written by the tests -------------------------------------------------------


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


@pytest.fixture
def tiny(tmp_path):
    """A valid 4-tile training set and 2-tile test set, in Kaggle's exact formats."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    ids = ["aaaa000001", "aaaa000002", "aaaa000003", "aaaa000004"]
    rows = []
    for k, tile_id in enumerate(ids):
        gray = rng.integers(0, 256, (101, 101), dtype=np.uint8)
        write_png(root / "train" / "images" / f"{tile_id}.png", np.dstack([gray] * 3))
        mask = np.zeros((101, 101), np.uint16)
        if k % 2:
            mask[30 + k :, : 20 * k] = 65535
        write_png(root / "train" / "masks" / f"{tile_id}.png", mask)
        rows.append((tile_id, rle.encode(mask)))
    pd.DataFrame(rows, columns=["id", "rle_mask"]).to_csv(root / "train.csv", index=False)
    test_ids = ["bbbb000001", "bbbb000002"]
    for tile_id in test_ids:
        write_png(root / "test" / "images" / f"{tile_id}.png", rng.integers(0, 256, (101, 101), dtype=np.uint8))
    pd.DataFrame({"id": test_ids, "rle_mask": "1 1"}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame({"id": ids + test_ids, "z": [100, 200, 300, 400, 500, 600]}).to_csv(root / "depths.csv", index=False)
    return root


def test_tiny_loads(tiny):
    train = load_train(tiny)
    assert list(train.ids) == ["aaaa000001", "aaaa000002", "aaaa000003", "aaaa000004"]
    assert train.masks[0].sum() == 0 and train.masks[1].sum() == 70 * 20
    np.testing.assert_array_equal(train.depths, [100, 200, 300, 400])
    test = load_test(tiny)
    assert list(test.ids) == ["bbbb000001", "bbbb000002"] and test.images.shape == (2, 101, 101)


def test_variants_one_channel_image_and_8bit_mask(tiny):
    path = tiny / "train" / "images" / "aaaa000002.png"
    gray = read_image(path)
    write_png(path, gray)  # 1-channel
    mask = read_mask(tiny / "train" / "masks" / "aaaa000002.png")
    write_png(tiny / "train" / "masks" / "aaaa000002.png", (mask * 255).astype(np.uint8))  # 8-bit 0/255
    train = load_train(tiny)
    np.testing.assert_array_equal(train.images[1], gray)
    np.testing.assert_array_equal(train.masks[1], mask)


def expect_error(root, *fragments, loader=load_train):
    with pytest.raises(DataError) as info:
        loader(root)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_missing_image(tiny):
    (tiny / "train" / "images" / "aaaa000003.png").unlink()
    expect_error(tiny, "train/images/aaaa000003.png", "file not found")


def test_missing_mask(tiny):
    (tiny / "train" / "masks" / "aaaa000001.png").unlink()
    expect_error(tiny, "train/masks/aaaa000001.png", "file not found")


def test_image_not_in_train_csv_is_not_dropped(tiny):
    shutil.copy(tiny / "train" / "images" / "aaaa000001.png", tiny / "train" / "images" / "cccc000009.png")
    expect_error(tiny, "cccc000009.png", "not listed in")


def test_unreadable_png(tiny):
    (tiny / "train" / "images" / "aaaa000002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    expect_error(tiny, "aaaa000002.png", "not a readable image")


def test_empty_file(tiny):
    (tiny / "train" / "masks" / "aaaa000002.png").write_bytes(b"")
    expect_error(tiny, "masks/aaaa000002.png", "not a readable image")


def test_wrong_size(tiny):
    write_png(tiny / "train" / "images" / "aaaa000004.png", np.zeros((96, 101), np.uint8))
    expect_error(tiny, "aaaa000004.png", "expected 101x101, got 96x101")


def test_color_image_refused(tiny):
    image = np.zeros((101, 101, 3), np.uint8)
    image[..., 2] = 9
    write_png(tiny / "train" / "images" / "aaaa000004.png", image)
    expect_error(tiny, "aaaa000004.png", "channels differ")


def test_mask_with_other_values(tiny):
    mask = np.zeros((101, 101), np.uint16)
    mask[5, 5] = 1000
    write_png(tiny / "train" / "masks" / "aaaa000001.png", mask)
    expect_error(tiny, "masks/aaaa000001.png", "holds only 0 (no salt) and 65535", "1 pixels of other values")


def test_id_missing_from_depths(tiny):
    depths = pd.read_csv(tiny / "depths.csv")
    depths[depths["id"] != "aaaa000002"].to_csv(tiny / "depths.csv", index=False)
    expect_error(tiny, "depths.csv", "no depth for 1 ids", "aaaa000002")


def test_mask_disagrees_with_train_csv(tiny):
    table = pd.read_csv(tiny / "train.csv", keep_default_na=False)
    table.loc[table["id"] == "aaaa000002", "rle_mask"] = "1 5"
    table.to_csv(tiny / "train.csv", index=False)
    expect_error(tiny, "masks/aaaa000002.png", "disagrees with its rle_mask")


def test_malformed_rle_in_train_csv(tiny):
    table = pd.read_csv(tiny / "train.csv", keep_default_na=False)
    table.loc[table["id"] == "aaaa000003", "rle_mask"] = "1 5 3"
    table.to_csv(tiny / "train.csv", index=False)
    expect_error(tiny, "train.csv", "aaaa000003", "odd number")


@pytest.mark.parametrize("name", ["train.csv", "depths.csv"])
def test_duplicate_ids(tiny, name):
    table = pd.read_csv(tiny / name, keep_default_na=False)
    pd.concat([table, table.iloc[[1]]]).to_csv(tiny / name, index=False)
    expect_error(tiny, name, f"id {table['id'].iloc[1]} appears more than once")


def test_missing_csv_and_columns(tiny):
    (tiny / "depths.csv").write_text("id,depth\naaaa000001,3\n")
    expect_error(tiny, "depths.csv", "missing z")
    (tiny / "train.csv").unlink()
    expect_error(tiny, "train.csv", "file not found")


def test_test_set_checks(tiny):
    (tiny / "test" / "images" / "bbbb000002.png").unlink()
    expect_error(tiny, "test/images/bbbb000002.png", "sample_submission.csv", loader=load_test)
    (tiny / "sample_submission.csv").unlink()
    assert list(load_test(tiny).ids) == ["bbbb000001"]


def test_load_images_folder_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .png tiles"):
        load_images(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="expected only .png tiles, found notes.txt"):
        load_images(tmp_path / "empty")
