import dataclasses

import cv2
import numpy as np
import pytest

from salt_tf.run.config import Config
from salt_tf.tiles.pipeline import (
    ArraySequence,
    Augmenter,
    TileSequence,
    eval_dataset,
    resize,
    to_input,
    to_tile,
    train_dataset,
)


def tiles(n=12, seed=0):
    """Smooth random tiles whose masks are the image thresholded at its mean: aligned by construction."""
    rng = np.random.default_rng(seed)
    images = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (101, 101)).astype(np.float32), (0, 0), 6) for _ in range(n)])
    images = ((images - images.min((1, 2), keepdims=True)) / np.ptp(images, (1, 2), keepdims=True) * 255).astype(np.uint8)
    masks = (images > 127).astype(np.uint8)
    return images, masks


CONFIG = Config(size=64, batch_size=4, brightness_limit=0.0)


def test_augmentation_keeps_image_and_mask_aligned():
    images, masks = tiles()
    augment = Augmenter(dataclasses.replace(CONFIG, crop_prob=1.0, hflip_prob=0.5))
    for seed in range(20):
        image, mask = augment(images[seed % 12], masks[seed % 12], seed)
        assert image.shape == mask.shape == (64, 64)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        # The mask still equals the image thresholded at the same level wherever the image is
        # clearly on one side (linear and nearest interpolation differ only near the level).
        clear = np.abs(image - 127.5 / 255) > 0.1
        assert ((image > 127.5 / 255) == (mask > 0.5))[clear].mean() > 0.999, seed
        # The same check catches a misalignment of a few pixels.
        shifted = np.roll(mask, 3, axis=1)
        assert ((image > 127.5 / 255) == (shifted > 0.5))[clear].mean() < 0.999


def test_augmentations_vary_and_are_reproducible():
    images, masks = tiles()
    augment = Augmenter(CONFIG)
    a = [augment(images[0], masks[0], s)[0] for s in range(8)]
    b = [augment(images[0], masks[0], s)[0] for s in range(8)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len({x.tobytes() for x in a}) > 4


def test_train_dataset_shapes_and_reproducibility():
    images, masks = tiles()
    run1 = [(x.numpy(), y.numpy()) for x, y in train_dataset(images, masks, CONFIG, seed=3)]
    run2 = [(x.numpy(), y.numpy()) for x, y in train_dataset(images, masks, CONFIG, seed=3)]
    assert [x.shape for x, _ in run1] == [(4, 64, 64, 1)] * 3
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(run1, run2))
    assert 0.0 <= run1[0][0].min() and run1[0][0].max() <= 1.0
    ds = train_dataset(images, masks, CONFIG, seed=3)
    epoch1 = next(iter(ds))[0].numpy()
    epoch2 = next(iter(ds))[0].numpy()
    assert not np.array_equal(epoch1, epoch2)  # each iteration is a new epoch: new order, new draws
    other_seed = next(iter(train_dataset(images, masks, CONFIG, seed=4)))[0].numpy()
    assert not np.array_equal(run1[0][0], other_seed)


# --- the PyDataset path (JAX and PyTorch) ------------------------------------------------------


def batches(sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    return [sequence[k] for k in range(len(sequence))]


def test_tile_sequence_gives_tf_datas_batches_for_the_same_draws():
    """The two training paths augment alike: tf.data given the PyDataset's order and tile seeds
    gives the same batches, bit for bit (cropped, flipped, brightened, with --fit pad too)."""
    images, masks = tiles(10)
    for config in (dataclasses.replace(CONFIG, brightness_limit=0.2, brightness_prob=1.0, crop_prob=0.7),
                   dataclasses.replace(CONFIG, size=128, fit="pad")):
        sequence = TileSequence(images, masks, config, seed=7)
        ours = batches(sequence)
        assert len(ours) == 2 and [x.shape[0] for x, _ in ours] == [4, 4]  # the remainder dropped, as tf.data
        theirs = [(x.numpy(), y.numpy())
                  for x, y in train_dataset(images, masks, config, seed=0, order=sequence.draws(0))]
        for (x, y), (tx, ty) in zip(ours, theirs):
            np.testing.assert_array_equal(x, tx)
            np.testing.assert_array_equal(y, ty)


def test_tile_sequence_draws_anew_each_epoch_reproducibly():
    images, masks = tiles(10)
    first, again = TileSequence(images, masks, CONFIG, seed=7), TileSequence(images, masks, CONFIG, seed=7)
    epoch0 = batches(first)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epoch0, batches(again)))
    first.on_epoch_end()  # Keras calls it between epochs
    assert not np.array_equal(epoch0[0][0], first[0][0])
    assert not np.array_equal(epoch0[0][0], TileSequence(images, masks, CONFIG, seed=8)[0][0])
    # Endless (--steps-per-epoch): batch k of the stream is batch k % len of epoch k // len.
    endless = TileSequence(images, masks, CONFIG, seed=7, repeat=True)
    assert endless.num_batches is None
    np.testing.assert_array_equal(endless[3][0], first[1][0])
    np.testing.assert_array_equal(endless[0][0], epoch0[0][0])


def test_array_sequence_gives_eval_datasets_batches():
    images, masks = tiles(10)
    x, y = to_input(images, 64), resize(masks, 64, cv2.INTER_NEAREST).astype(np.float32)[..., None]
    ours = batches(ArraySequence(x, y, batch_size=4))
    theirs = [(a.numpy(), b.numpy()) for a, b in eval_dataset(images, masks, CONFIG)]
    assert [a.shape[0] for a, _ in ours] == [4, 4, 2]
    for (a, b), (ta, tb) in zip(ours, theirs):
        np.testing.assert_array_equal(a, ta)
        np.testing.assert_array_equal(b, tb)


def test_with_fit_pad_the_pipelines_keep_the_tiles_101():
    """--fit pad: training and validation tiles and masks stay 101x101 (the model pads them);
    validation is the tiles themselves, and a training crop is scaled back to 101."""
    images, masks = tiles()
    config = dataclasses.replace(CONFIG, size=128, fit="pad")
    x, y = next(iter(train_dataset(images, masks, config, seed=3)))
    assert x.shape == (4, 101, 101, 1) and y.shape == (4, 101, 101, 1)
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    vx, vy = next(iter(eval_dataset(images, masks, config)))
    np.testing.assert_array_equal(vx.numpy()[..., 0], images[:4] / np.float32(255))
    np.testing.assert_array_equal(vy.numpy()[..., 0], masks[:4])


@pytest.mark.parametrize("size", [128, 192, 256])
def test_validation_resize_round_trips_masks(size):
    """101 -> size -> 101 for masks: below 1% of pixels change, and only at boundaries."""
    _, masks = tiles(20, seed=1)
    up = resize(masks.astype(np.float32), size)
    back = to_tile(up) > 0.5
    changed = (back != masks.astype(bool)).mean()
    assert changed < 0.01, changed
    edges = np.stack([cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) for m in masks]) > 0
    assert not (back != masks.astype(bool))[~edges].any()


def test_eval_dataset_is_the_plain_resize_in_order():
    images, masks = tiles(5)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in eval_dataset(images, masks, CONFIG)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    np.testing.assert_array_equal(x, to_input(images, 64))
    assert x.shape == y.shape == (5, 64, 64, 1)
    assert set(np.unique(y)) <= {0.0, 1.0}


def test_datasets_run_without_the_autotuner():
    """Deleting an autotuned iterator waits for the autotuner's thread, and Keras deletes the
    training iterator every epoch (3-12 s stalls; salt_tf/tiles/pipeline.py): both datasets turn it off,
    even when the images come without masks."""
    images, masks = tiles(5)
    for dataset in (train_dataset(images, masks, CONFIG, seed=0), eval_dataset(images, masks, CONFIG),
                    eval_dataset(images, None, CONFIG)):
        assert dataset.options().autotune.enabled is False
