"""Losses on logits, written with keras.ops so that they stay backend-neutral and serialisable.

The Lovasz hinge (Berman, Triki & Blaschko, arXiv 1705.08790) is a convex surrogate of the
Jaccard loss; like the original solution we compute it per image and average, which suits a
metric that scores each image on its own IoU.

Labels are 1 salt, 0 not salt, and any value above 1 (``UNLABELLED``, 255, as sparse labels on a
section keep it) for a pixel nobody labelled: such pixels are out of every loss exactly, as if the
image had only its labelled pixels, and their logits get zero gradient.
"""
from __future__ import annotations

import keras
from keras import ops

from salt_tf.tiles.metrics import UNLABELLED

OUT_OF_REACH = -1e4  # a masked pixel's hinge error: sorted last, and relu (or elu + 1) of it is 0


def labels_of(y_true):
    """The 0/1 labels of ``y_true``, 0 where unlabelled, and the labelled pixels as 1.0 (same shape)."""
    y_true = ops.cast(y_true, "float32")
    labelled = ops.cast(y_true <= 1.0, "float32")
    return y_true * labelled, labelled


def _flatten(y_true, y_pred):
    """(labels, logits, labelled) of each image as (B, pixels), as ``labels_of`` gives them."""
    flat = (ops.shape(y_pred)[0], -1)
    labels, labelled = labels_of(y_true)
    return ops.reshape(labels, flat), ops.reshape(ops.cast(y_pred, "float32"), flat), ops.reshape(labelled, flat)


def lovasz_hinge_per_image(y_true, y_pred, elu: bool = False):
    """Lovasz hinge of each image in the batch, shape (B,). ``y_pred`` are logits. Unlabelled pixels
    sort after every labelled one with a hinge of 0: the labelled pixels' weights are those of the
    image without them."""
    labels, logits, labelled = _flatten(y_true, y_pred)
    signs = 2.0 * labels - 1.0
    errors = ops.where(labelled > 0, 1.0 - logits * signs, OUT_OF_REACH)
    # Sort each image's errors in decreasing order and carry the labels along.
    order = ops.flip(ops.argsort(errors, axis=-1), axis=-1)
    errors_sorted = ops.take_along_axis(errors, order, axis=-1)
    labels_sorted = ops.take_along_axis(labels, order, axis=-1)
    # Gradient of the Lovasz extension of the Jaccard loss at the sorted errors (Alg. 1 of the paper).
    positives = ops.sum(labels_sorted, axis=-1, keepdims=True)
    intersection = positives - ops.cumsum(labels_sorted, axis=-1)
    union = positives + ops.cumsum(1.0 - labels_sorted, axis=-1)
    jaccard = 1.0 - intersection / union
    grad = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
    grad = ops.stop_gradient(grad)
    # elu(e) + 1 is a smooth, everywhere-positive stand-in for relu(e), an option of the original.
    hinge = ops.elu(errors_sorted) + 1.0 if elu else ops.relu(errors_sorted)
    return ops.sum(hinge * grad, axis=-1)


def symmetric_lovasz_per_image(y_true, y_pred, elu: bool = False):
    """The mean of the Lovasz hinge on salt and on its complement, lovasz(logits, y) and
    lovasz(-logits, 1 - y), of each image, shape (B,): the background's IoU counts as much as the
    salt's (tugstugi/pytorch-saltnet), and an empty tile has a salt-free object to score."""
    labels, labelled = labels_of(y_true)
    complement = ops.where(labelled > 0, 1.0 - labels, UNLABELLED)
    return 0.5 * (lovasz_hinge_per_image(y_true, y_pred, elu) + lovasz_hinge_per_image(complement, -y_pred, elu))


def lovasz_per_image(y_true, y_pred, elu: bool = False, symmetric: bool = False):
    return (symmetric_lovasz_per_image if symmetric else lovasz_hinge_per_image)(y_true, y_pred, elu)


def bce_per_image(y_true, y_pred):
    """Mean binary cross-entropy on logits over each image's labelled pixels, shape (B,) (0 for an
    image with none)."""
    labels, logits, labelled = _flatten(y_true, y_pred)
    # max(x, 0) - x*z + log(1 + exp(-|x|)): the numerically stable form.
    per_pixel = ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per_pixel * labelled, axis=-1) / ops.maximum(ops.sum(labelled, axis=-1), 1.0)


@keras.saving.register_keras_serializable(package="salt_tf")
class LovaszHinge(keras.losses.Loss):
    """Per-image Lovasz hinge on logits (``symmetric``: ``symmetric_lovasz_per_image``), averaged
    over the batch."""

    def __init__(self, elu: bool = False, symmetric: bool = False, name: str = "lovasz_hinge", **kwargs):
        super().__init__(name=name, **kwargs)
        self.elu, self.symmetric = elu, symmetric

    def call(self, y_true, y_pred):
        return lovasz_per_image(y_true, y_pred, self.elu, self.symmetric)

    def get_config(self):
        return {**super().get_config(), "elu": self.elu, "symmetric": self.symmetric}


@keras.saving.register_keras_serializable(package="salt_tf")
class BCEWithLogits(keras.losses.Loss):
    """Binary cross-entropy on logits, averaged over pixels and images."""

    def __init__(self, name: str = "bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return bce_per_image(y_true, y_pred)


@keras.saving.register_keras_serializable(package="salt_tf")
class BCELovasz(keras.losses.Loss):
    """``bce_weight * BCE + lovasz_weight * Lovasz hinge``, both on logits."""

    def __init__(
        self, bce_weight: float = 1.0, lovasz_weight: float = 1.0, elu: bool = False, symmetric: bool = False,
        name: str = "bce_lovasz", **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.bce_weight, self.lovasz_weight, self.elu, self.symmetric = bce_weight, lovasz_weight, elu, symmetric

    def call(self, y_true, y_pred):
        return self.bce_weight * bce_per_image(y_true, y_pred) + self.lovasz_weight * (
            lovasz_per_image(y_true, y_pred, self.elu, self.symmetric)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "bce_weight": self.bce_weight,
            "lovasz_weight": self.lovasz_weight,
            "elu": self.elu,
            "symmetric": self.symmetric,
        }


@keras.saving.register_keras_serializable(package="salt_tf")
class WithAuxiliary(keras.losses.Loss):
    """A loss for a model with auxiliary heads (``salt_tf.model.unet._auxiliary``: channel 0 the logits,
    then the image head's map if ``empty_weight``, then one map per supervised decoder stage):
    ``main`` on the logits, + ``supervision_weight`` x ``main`` on each stage's map, averaged over
    the stages and counted on tiles with salt only (0 on empty ones), + ``empty_weight`` x the
    binary cross-entropy of the image head against "the tile has salt" (tugstugi/pytorch-saltnet:
    0.1 and 0.05), on tiles where that is known (labelled salt, or every pixel labelled)."""

    def __init__(self, main, supervision_weight: float = 0.0, empty_weight: float = 0.0, name: str = "with_auxiliary",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.main = keras.saving.deserialize_keras_object(main) if isinstance(main, dict) else main
        self.supervision_weight, self.empty_weight = supervision_weight, empty_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        per_image = self.main.call(y_true, y_pred[..., :1])
        labels, labelled = labels_of(y_true)
        flat = (ops.shape(labels)[0], -1)
        has_salt = ops.cast(ops.max(ops.reshape(labels, flat), axis=-1) > 0.5, "float32")
        # "the tile has salt" is known where salt is labelled or every pixel is: else no image-head term
        known = ops.maximum(has_salt, ops.cast(ops.min(ops.reshape(labelled, flat), axis=-1) > 0.5, "float32"))
        first = 1
        if self.empty_weight:
            per_image += self.empty_weight * known * bce_per_image(has_salt[:, None], y_pred[:, 0, 0, 1:2])
            first = 2
        if self.supervision_weight:
            stages = [self.main.call(y_true, y_pred[..., k:k + 1]) for k in range(first, y_pred.shape[-1])]
            per_image += self.supervision_weight * has_salt * ops.mean(ops.stack(stages), axis=0)
        return per_image

    def get_config(self):
        return {**super().get_config(), "main": keras.saving.serialize_keras_object(self.main),
                "supervision_weight": self.supervision_weight, "empty_weight": self.empty_weight}


def phase_loss(config, phase: int) -> keras.losses.Loss:
    """A training phase's loss from a ``salt_tf.run.config.Config``: phase 1 BCE (+ a weighted Lovasz
    hinge), phase 2 the Lovasz hinge (+ a weighted BCE); with the auxiliary heads' terms
    (``WithAuxiliary``) when the config gives them a weight."""
    main = _main_loss(config, phase)
    if config.supervision_weight or config.empty_weight:
        return WithAuxiliary(main, config.supervision_weight, config.empty_weight)
    return main


def _main_loss(config, phase: int) -> keras.losses.Loss:
    lovasz = dict(elu=config.lovasz_elu, symmetric=config.lovasz_symmetric)
    if phase == 1:
        if config.phase1_lovasz_weight:
            return BCELovasz(bce_weight=1.0, lovasz_weight=config.phase1_lovasz_weight, **lovasz)
        return BCEWithLogits()
    if config.phase2_bce_weight:
        return BCELovasz(bce_weight=config.phase2_bce_weight, lovasz_weight=1.0, **lovasz)
    return LovaszHinge(**lovasz)
