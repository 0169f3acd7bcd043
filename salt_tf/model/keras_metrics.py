"""The competition score as a Keras metric, so that fit() can monitor it on logits.

Same rule as salt_tf.tiles.metrics (the NumPy reference): per image, the fraction of IoU thresholds
0.50:0.05:0.95 cleared (strictly), empty truth + empty prediction = 1; mean over images. Pixels
labelled ``UNLABELLED`` (above 1) are out of each image's IoU, and an image with none labelled is
out of the mean, as in the losses (salt_tf.model.losses).
"""
from __future__ import annotations

import keras
from keras import ops

from salt_tf.model.losses import labels_of
from salt_tf.tiles.metrics import THRESHOLD_DENOMINATOR, THRESHOLD_NUMERATORS


def image_scores(y_true, logits):
    """Per-image competition score of ``logits > 0`` against ``y_true > 0.5``, shape (B,), over each
    image's labelled pixels (``y_true`` above 1, ``UNLABELLED``, is out of it)."""
    flat = (ops.shape(logits)[0], -1)
    truth, labelled = (ops.reshape(v, flat) > 0.5 for v in labels_of(y_true))
    pred = ops.logical_and(ops.reshape(ops.cast(logits, "float32") > 0.0, flat), labelled)
    intersection = ops.sum(ops.cast(ops.logical_and(truth, pred), "float32"), axis=-1)
    union = ops.sum(ops.cast(ops.logical_or(truth, pred), "float32"), axis=-1)
    numerators = ops.convert_to_tensor(THRESHOLD_NUMERATORS, dtype="float32")
    # Pixel counts are exact in float32 (< 2**24), so the comparison is exact too.
    clears = THRESHOLD_DENOMINATOR * intersection[:, None] > numerators[None, :] * union[:, None]
    scores = ops.mean(ops.cast(clears, "float32"), axis=-1)
    return ops.where(union == 0, 1.0, scores)


@keras.saving.register_keras_serializable(package="salt_tf")
class CompetitionScore(keras.metrics.Metric):
    """Mean per-image competition score over every image seen since the last reset."""

    def __init__(self, name: str = "score", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        scores = image_scores(y_true, y_pred[..., :1])  # channel 0: a model's auxiliary heads follow it
        weights = ops.ones_like(scores) if sample_weight is None else ops.reshape(
            ops.cast(sample_weight, "float32"), (-1,)
        )
        # an image with no labelled pixel is no image to score
        labelled = ops.reshape(labels_of(y_true)[1], (ops.shape(scores)[0], -1))
        weights = weights * ops.max(labelled, axis=-1)
        self.total.assign(self.total + ops.sum(scores * weights))
        self.count.assign(self.count + ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)
