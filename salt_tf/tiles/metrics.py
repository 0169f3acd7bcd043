"""The TGS competition metric in NumPy.

Each image holds at most one salt object, so at a threshold t the prediction is a true positive
when IoU > t, else one false positive plus one false negative (precision 0). An image scores the
fraction of the thresholds 0.50, 0.55, ..., 0.95 that it clears; an empty truth scores 1 for an
empty prediction and 0 for any salt. The score is the mean over images.
"""
from __future__ import annotations

import numpy as np

# Competition rule: IoU thresholds 0.50:0.05:0.95, written as integers over 20 (10/20 .. 19/20)
# so that "IoU > t" is decided exactly: IoU exactly at a threshold does not clear it.
THRESHOLD_NUMERATORS = np.arange(10, 20)
THRESHOLD_DENOMINATOR = 20
THRESHOLDS = THRESHOLD_NUMERATORS / THRESHOLD_DENOMINATOR

# The label of a pixel nobody labelled (sparse labels on a section: test tiles, unknown cells): out
# of every loss, of the Keras metric (salt_tf.model.losses, salt_tf.model.keras_metrics) and, through
# ``split_labels``, of the NumPy scores below.
UNLABELLED = 255
LABEL_VALUES = (0, 1, UNLABELLED)  # every value sparse labels may hold


def truth_of(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A run's masks (0/1 tiles, or 0/1/``UNLABELLED`` windows of a survey) -> (truth, labelled or
    None when every pixel is labelled), for the ``labelled=`` of the scores here."""
    masks = np.asarray(masks)
    return split_labels(masks) if (masks == UNLABELLED).any() else (masks, None)


def split_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse labels (0 not salt, 1 salt, ``UNLABELLED``) -> (truth, labelled), two bool arrays of
    their shape, for the ``labelled=`` of the scores here. Any other value is an error: a 0/255 or
    0/65535 mask would otherwise read as unlabelled everywhere."""
    labels = np.asarray(labels)
    odd = ~np.isin(labels, LABEL_VALUES)
    if odd.any():
        raise ValueError(f"labels must be 0 (not salt), 1 (salt) or {UNLABELLED} (not labelled); "
                         f"found {labels[odd].flat[0].item()} at {odd.sum()} pixels")
    return labels == 1, labels != UNLABELLED


def _as_batch(masks: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise ValueError(f"{name}: expected masks of shape (N, H, W), got {masks.shape}")
    return masks.reshape(len(masks), -1) != 0


def image_scores(truth: np.ndarray, pred: np.ndarray, labelled: np.ndarray | None = None) -> np.ndarray:
    """Per-image competition score for binary masks (non-zero = salt), shape (N,). With ``labelled``
    (``split_labels``) only labelled pixels count, as in the losses and the Keras metric, and an
    image with none labelled scores NaN (no image to score)."""
    truth, pred = _as_batch(truth, "truth"), _as_batch(pred, "pred")
    if truth.shape != pred.shape:
        raise ValueError(f"truth and pred differ in shape: {truth.shape} vs {pred.shape}")
    if labelled is not None:
        labelled = _as_batch(labelled, "labelled")
        if labelled.shape != truth.shape:
            raise ValueError(f"labelled and truth differ in shape: {labelled.shape} vs {truth.shape}")
        truth, pred = truth & labelled, pred & labelled
    intersection = np.count_nonzero(truth & pred, axis=1).astype(np.int64)
    union = np.count_nonzero(truth | pred, axis=1).astype(np.int64)
    # IoU > n/20  <=>  20 * intersection > n * union, in exact integer arithmetic.
    clears = (THRESHOLD_DENOMINATOR * intersection)[:, None] > THRESHOLD_NUMERATORS[None] * union[:, None]
    scores = np.where(union == 0, 1.0, clears.mean(axis=1))
    if labelled is not None:
        scores = np.where(labelled.any(axis=1), scores, np.nan)
    return scores


def competition_score(truth: np.ndarray, pred: np.ndarray, labelled: np.ndarray | None = None) -> float:
    """Mean per-image competition score over a batch of binary masks (over the images that have a
    labelled pixel, with ``labelled``; an error when none has)."""
    scores = image_scores(truth, pred, labelled)
    if np.isnan(scores).all():
        raise ValueError("no image has a labelled pixel: nothing to score")
    return float(np.nanmean(scores))


# The probability thresholds the tuning tries: 0.05, 0.075, ..., 0.95.
PROBABILITY_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.025), 4)


def best_threshold(
    truth: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None, labelled: np.ndarray | None = None
) -> tuple[float, float]:
    """The probability threshold that maximises the competition score, and that score."""
    if thresholds is None:
        thresholds = PROBABILITY_THRESHOLDS
    scores = [competition_score(truth, probs > t, labelled) for t in thresholds]
    best = int(np.argmax(scores))
    return float(thresholds[best]), float(scores[best])


def boundary_threshold(
    truth: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | None = None, labelled: np.ndarray | None = None
) -> tuple[float, float]:
    """The probability threshold that maximises the pixel IoU over all images together, and that IoU.

    It places salt boundaries where they are, which whole sections need (``segment.py``); the
    competition threshold (``best_threshold``) also trades boundaries for empty images, whose whole
    score a few stray pixels cost, and so sits higher for a Lovasz-trained model."""
    if thresholds is None:
        thresholds = PROBABILITY_THRESHOLDS
    truth, probs = _as_batch(truth, "truth").ravel(), np.asarray(probs, dtype=np.float32).ravel()
    if truth.shape != probs.shape:
        raise ValueError(f"truth and probs differ in size: {truth.size} vs {probs.size}")
    if labelled is not None:  # unlabelled pixels are out of the pooled IoU
        keep = _as_batch(labelled, "labelled").ravel()
        if keep.shape != truth.shape:
            raise ValueError(f"labelled and truth differ in size: {keep.size} vs {truth.size}")
        truth, probs = truth[keep], probs[keep]
    # Counts per threshold from one sort instead of a pass per threshold.
    order = np.sort(probs)
    salt_probs = np.sort(probs[truth])
    above = len(order) - np.searchsorted(order, thresholds, side="right")  # predicted salt
    hits = len(salt_probs) - np.searchsorted(salt_probs, thresholds, side="right")  # ... that is salt
    union = above + len(salt_probs) - hits
    ious = np.where(union > 0, hits / np.maximum(union, 1), 1.0)
    best = int(np.argmax(ious))
    return float(thresholds[best]), float(ious[best])


def remove_small(masks: np.ndarray, min_area: int) -> np.ndarray:
    """Empty every mask with fewer than ``min_area`` salt pixels (a tiny prediction on an empty
    tile costs a whole image's score, a missed tiny body costs the same, and tiny bodies are rare)."""
    masks = np.asarray(masks, dtype=bool)
    if min_area <= 0:
        return masks
    keep = masks.reshape(len(masks), -1).sum(axis=1) >= min_area
    return masks & keep.reshape((-1,) + (1,) * (masks.ndim - 1))  # (N, H, W) or (N, H, W, 1)


MIN_AREAS = (0, 10, 20, 40, 60, 80, 120, 160, 240, 320)


def tune_postprocessing(truth: np.ndarray, probs: np.ndarray, labelled: np.ndarray | None = None) -> dict:
    """Choose the probability threshold, then the minimum salt area, on out-of-fold predictions
    (over the labelled pixels only, with ``labelled``).

    Returns the choice and the score before (threshold 0.5, no minimum area) and after. A minimum
    area is kept only when it strictly improves the score, so it is off when it does not help.
    """
    threshold, score = best_threshold(truth, probs, labelled=labelled)
    before = competition_score(truth, probs > 0.5, labelled)
    min_area, after = 0, score
    binary = probs > threshold
    for area in MIN_AREAS[1:]:
        candidate = competition_score(truth, remove_small(binary, area), labelled)
        if candidate > after:
            min_area, after = area, candidate
    return {"threshold": threshold, "min_area": int(min_area), "score_before": before, "score_after": after}
