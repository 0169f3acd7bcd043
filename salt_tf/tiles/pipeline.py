"""Data pipelines: albumentations augments the tiles; tf.data schedules the work on TensorFlow, a
``keras.utils.PyDataset`` (``TileSequence``) on JAX and PyTorch, which have no tf.data and, where
TensorFlow is not installed, cannot import it. ``train_data`` and ``eval_data`` pick the one of the
backend; both draw the same crops, flips and brightness for a tile and its seed (tested).

Training: with probability ``crop_prob`` a random crop of ``crop_min_area``..1 of the tile's area
scaled to ``size``, else a plain resize to ``size``; horizontal flip; small brightness changes —
on image and mask together (as in the original solution). Each tile's augmentation is drawn from
its own seed, taken from a seeded stream, so a run is reproducible for a seed however many threads
augment in parallel. Validation and test: the deterministic resize only, and ``to_tile`` maps
predictions back to 101x101 for scoring. With ``--fit pad`` every "size" here is the tile's own 101
(a crop is scaled back to 101): the model reflects its input out to ``--size`` and crops its output
back to 101 itself.
"""
from __future__ import annotations

import threading

import albumentations as A
import cv2
import keras
import numpy as np

from salt_tf.common import machine

TILE = 101

# tf.data's autotuner is off, with fixed parallelism: deleting an autotuned iterator waits for the
# autotuner's thread to wake from its sleep, and Keras deletes the training iterator at the start of
# every epoch. On this 2-core CPU (TF 2.21) that held 3-12 s of every other epoch with the CPU idle
# (a native stack of the stall: ``RootDataset::Iterator::~Iterator`` waiting in
# ``UnboundedThreadPool::LogicalThreadWrapper``), 19% of the 64x64 epochs' time;
# ``benchmarks/epoch_overhead.py`` compares the two. Augmenting a batch takes a few milliseconds
# against a training step of hundreds, so one augmenting thread per core and two batches ahead
# keep the step fed.
PARALLEL_CALLS = machine.usable_cores()
PREFETCH = 2


def without_autotune(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def resize(images: np.ndarray, size: int, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """Resize a batch (N, H, W) of tiles to (N, size, size)."""
    return np.stack([cv2.resize(im, (size, size), interpolation=interpolation) for im in images])


def to_tile(probs: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Map model-size probabilities (N, S, S[, 1]) back to (N, tile, tile): the inverse of the
    input resize. INTER_AREA averages the pixels that each tile pixel covers."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 4:
        probs = probs[..., 0]
    if probs.shape[1:] == (tile, tile):
        return probs
    return np.stack([cv2.resize(p, (tile, tile), interpolation=cv2.INTER_AREA) for p in probs])


def to_input(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 tiles (N, 101, 101) -> model input (N, size, size, 1) float32 in [0, 1]."""
    return (resize(images, size).astype(np.float32) / 255.0)[..., None]


def data_size(config) -> int:
    """The side of the tiles the model takes: ``config.size``, or the tile's own 101 with ``--fit pad``
    (the model pads them itself)."""
    return TILE if config.fit == "pad" else config.size


def augmentation(config) -> A.Compose:
    size = (data_size(config), data_size(config))
    return A.Compose(
        [
            A.RandomResizedCrop(size=size, scale=(config.crop_min_area, 1.0), p=config.crop_prob),
            # Tiles the crop left at 101x101 get the plain resize; cropped ones are already `size`.
            A.Resize(*size),
            A.HorizontalFlip(p=config.hflip_prob),
            A.RandomBrightnessContrast(
                brightness_limit=config.brightness_limit, contrast_limit=0.0, p=config.brightness_prob
            ),
        ]
    )


class Augmenter:
    """Apply the augmentation to one (image, mask) pair with a given seed; thread-safe."""

    def __init__(self, config):
        self.config = config
        self._local = threading.local()

    def _compose(self) -> A.Compose:
        compose = getattr(self._local, "compose", None)
        if compose is None:
            compose = self._local.compose = augmentation(self.config)
        return compose

    def __call__(self, image: np.ndarray, mask: np.ndarray, seed: int):
        compose = self._compose()
        compose.set_random_seed(int(seed))
        out = compose(image=image, mask=mask)
        return out["image"].astype(np.float32) / 255.0, out["mask"].astype(np.float32)


def train_dataset(images: np.ndarray, masks: np.ndarray, config, seed: int, order=None):
    """Shuffled, augmented, batched, prefetched (tf.data); a new draw every epoch, reproducible for a
    seed. ``order`` (indices, tile seeds) replaces the seeded draws with these, in this order, once."""
    import tensorflow as tf

    images = np.ascontiguousarray(images, dtype=np.uint8)
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    augment = Augmenter(config)
    size = data_size(config)

    def py_augment(index, tile_seed):
        image, mask = augment(images[index], masks[index], tile_seed)
        return image[..., None], mask[..., None]

    def tf_augment(index, tile_seed):
        image, mask = tf.numpy_function(
            py_augment, [index, tile_seed], [tf.float32, tf.float32], stateful=False
        )
        image.set_shape((size, size, 1))
        mask.set_shape((size, size, 1))
        return image, mask

    n = len(images)
    if order is None:
        indices = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).map(
            lambda s: s % (2**31)
        )
        pairs = tf.data.Dataset.zip(indices, seeds)
    else:
        pairs = tf.data.Dataset.from_tensor_slices(tuple(np.asarray(a, np.int64) for a in order))
    return without_autotune(
        pairs
        .map(tf_augment, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
        .batch(config.batch_size, drop_remainder=n >= config.batch_size)
        .prefetch(PREFETCH)
    )


def eval_dataset(images: np.ndarray, masks: np.ndarray | None, config):
    """The deterministic resize only, in order; masks (if given) resized nearest-neighbour (tf.data)."""
    import tensorflow as tf

    x = to_input(images, data_size(config))
    if masks is None:
        return without_autotune(tf.data.Dataset.from_tensor_slices(x).batch(config.batch_size).prefetch(PREFETCH))
    y = resize(masks, data_size(config), cv2.INTER_NEAREST).astype(np.float32)[..., None]
    return without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size).prefetch(PREFETCH))


# --- JAX and PyTorch: the same tiles through keras.utils.PyDataset --------------------------------


class TileSequence(keras.utils.PyDataset):
    """The training data of ``train_dataset`` for any backend: each epoch a permutation of the
    tiles and a seed per tile, drawn from ``(seed, epoch)``; batches augmented by the same
    ``Augmenter`` in ``PARALLEL_CALLS`` threads. ``repeat``: endless, epoch after epoch (for a
    ``steps_per_epoch`` that does not divide the tiles)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, config, seed: int, repeat: bool = False):
        super().__init__(workers=PARALLEL_CALLS, use_multiprocessing=False, max_queue_size=PREFETCH * PARALLEL_CALLS)
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.masks = np.ascontiguousarray(masks, dtype=np.uint8)
        self.augment, self.batch_size, self.seed, self.repeat = Augmenter(config), config.batch_size, int(seed), repeat
        n = len(self.images)
        self.batches = n // self.batch_size if n >= self.batch_size else 1  # tf.data's drop_remainder
        self.epoch = 0
        self._lock = threading.Lock()
        self._draws = {}

    def draws(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, tile seeds) of an epoch, in training order."""
        with self._lock:
            if epoch not in self._draws:
                rng = np.random.default_rng([self.seed, epoch])
                self._draws = {epoch: (rng.permutation(len(self.images)), rng.integers(0, 2**31, len(self.images)))}
            return self._draws[epoch]

    @property
    def num_batches(self):
        return None if self.repeat else self.batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, k: int):
        epoch, k = (k // self.batches, k % self.batches) if self.repeat else (self.epoch, k)
        indices, seeds = self.draws(epoch)
        chosen = slice(k * self.batch_size, (k + 1) * self.batch_size)
        pairs = [self.augment(self.images[i], self.masks[i], s) for i, s in zip(indices[chosen], seeds[chosen])]
        return np.stack([p[0] for p in pairs])[..., None], np.stack([p[1] for p in pairs])[..., None]

    def on_epoch_end(self):
        self.epoch += 1


class ArraySequence(keras.utils.PyDataset):
    """Arrays in batches, in order (``eval_dataset`` for any backend)."""

    def __init__(self, *arrays: np.ndarray, batch_size: int):
        super().__init__()
        self.arrays, self.batch_size = arrays, batch_size

    def __len__(self) -> int:
        return -(-len(self.arrays[0]) // self.batch_size)

    def __getitem__(self, k: int):
        batch = tuple(a[k * self.batch_size : (k + 1) * self.batch_size] for a in self.arrays)
        return batch if len(batch) > 1 else batch[0]


def train_data(images: np.ndarray, masks: np.ndarray, config, seed: int, repeat: bool = False):
    """Training batches for this backend: tf.data on TensorFlow (``train_dataset``), else ``TileSequence``."""
    if keras.backend.backend() == "tensorflow":
        dataset = train_dataset(images, masks, config, seed=seed)
        return dataset.repeat() if repeat else dataset
    return TileSequence(images, masks, config, seed, repeat=repeat)


def eval_data(images: np.ndarray, masks: np.ndarray | None, config):
    """Validation batches for this backend: tf.data on TensorFlow (``eval_dataset``), else ``ArraySequence``."""
    if keras.backend.backend() == "tensorflow":
        return eval_dataset(images, masks, config)
    x = to_input(images, data_size(config))
    if masks is None:
        return ArraySequence(x, batch_size=config.batch_size)
    y = resize(masks, data_size(config), cv2.INTER_NEAREST).astype(np.float32)[..., None]
    return ArraySequence(x, y, batch_size=config.batch_size)
