import numpy as np
import pytest

from salt_tf.tiles.metrics import (
    THRESHOLDS,
    UNLABELLED,
    best_threshold,
    boundary_threshold,
    competition_score,
    image_scores,
    remove_small,
    split_labels,
)


def masks_with_iou(intersection, only_truth, only_pred, shape=(10, 10)):
    truth = np.zeros(shape, np.uint8).ravel()
    pred = np.zeros(shape, np.uint8).ravel()
    truth[:intersection] = pred[:intersection] = 1
    truth[intersection : intersection + only_truth] = 1
    pred[intersection + only_truth : intersection + only_truth + only_pred] = 1
    return truth.reshape(shape), pred.reshape(shape)


def test_thresholds_are_the_competitions():
    np.testing.assert_allclose(THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_empty_cases():
    empty, salt = np.zeros((5, 5)), np.eye(5)
    assert competition_score(empty, empty) == 1.0
    assert competition_score(empty, salt) == 0.0
    assert competition_score(salt, empty) == 0.0
    assert competition_score(salt, salt) == 1.0


@pytest.mark.parametrize(
    "inter, only_truth, only_pred, expected",
    [
        (1, 1, 0, 0.0),  # IoU 0.5 exactly does not clear 0.50
        (11, 9, 0, 0.1),  # IoU 0.55 exactly: clears 0.50 only
        (3, 1, 0, 0.5),  # IoU 0.75 exactly: clears 0.50..0.70
        (19, 1, 0, 0.9),  # IoU 0.95 exactly: clears all but 0.95
        (60, 20, 20, 0.2),  # IoU 60/100 = 0.6 exactly, errors on both sides: clears 0.50, 0.55
        (99, 0, 1, 1.0),  # IoU 0.99
        (7, 2, 1, 0.4),  # IoU 0.7: clears 0.50..0.65
    ],
)
def test_iou_at_and_between_thresholds(inter, only_truth, only_pred, expected):
    truth, pred = masks_with_iou(inter, only_truth, only_pred)
    assert image_scores(truth, pred)[0] == pytest.approx(expected)


def test_batch_mean_and_vectorised():
    rng = np.random.default_rng(0)
    truth = rng.random((50, 101, 101)) < 0.3
    truth[:20] = False
    pred = truth.copy()
    pred[10:30] = False  # 10 empty/empty (1), 10 salt/empty (0)
    pred[30:40, :50] = ~pred[30:40, :50]
    per_image = image_scores(truth, pred)
    assert per_image.shape == (50,)
    assert (per_image[:10] == 1).all() and (per_image[20:30] == 0).all()
    expected = [image_scores(t, p)[0] for t, p in zip(truth, pred)]
    np.testing.assert_array_equal(per_image, expected)
    assert competition_score(truth, pred) == pytest.approx(np.mean(expected))


def test_accepts_channel_axis_and_rejects_mismatch():
    m = np.ones((2, 4, 4, 1))
    assert competition_score(m, m) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        competition_score(np.ones((2, 4, 4)), np.ones((2, 4, 5)))


def test_best_threshold_finds_the_separating_value():
    truth = np.zeros((4, 8, 8), np.uint8)
    truth[:2, :4] = 1
    probs = np.where(truth == 1, 0.7, 0.4)
    threshold, score = best_threshold(truth, probs)
    assert 0.4 <= threshold < 0.7 and score == 1.0


def test_boundary_threshold_maximises_pixel_iou_over_all_images():
    rng = np.random.default_rng(0)
    truth = rng.random((5, 9, 9)) < 0.4
    probs = rng.random((5, 9, 9)).astype(np.float32)
    thresholds = np.round(np.arange(0.05, 0.951, 0.025), 4)
    brute = [(truth & (probs > t)).sum() / (truth | (probs > t)).sum() for t in thresholds]
    threshold, iou = boundary_threshold(truth, probs)
    assert threshold == thresholds[int(np.argmax(brute))] and iou == pytest.approx(max(brute))


def test_boundary_threshold_sits_below_the_competition_one_when_empty_images_need_a_high_cut():
    # Salt at 0.6 with a ramp of 0.45 at its edge; an empty image with a stray 0.5 blob. Pixel IoU
    # keeps the ramp (cut below 0.45); the competition score must drop the blob (cut at 0.5 or above).
    truth = np.zeros((2, 10, 10), bool)
    truth[0, 4:] = True
    probs = np.where(truth, 0.6, 0.1).astype(np.float32)
    probs[0, 4] = 0.45
    probs[1, :2, :2] = 0.5
    threshold, iou = boundary_threshold(truth, probs)
    assert 0.1 <= threshold < 0.45 and iou == pytest.approx(60 / 64)
    assert best_threshold(truth, probs)[0] >= 0.5


def test_unlabelled_pixels_are_out_of_the_numpy_scores_exactly():
    rng = np.random.default_rng(3)
    truth = rng.random((4, 12, 12)) < 0.4
    pred = rng.random((4, 12, 12)) < 0.4
    unlabelled = np.zeros_like(truth)
    unlabelled[:, :, 6:] = True  # the right half of every image is nobody's
    sparse = np.where(unlabelled, UNLABELLED, truth).astype(np.uint8)
    got_truth, labelled = split_labels(sparse)
    # whatever is predicted or true where nobody labelled, the scores are the left halves' own
    flipped = pred ^ unlabelled
    left = image_scores(truth[:, :, :6], pred[:, :, :6])
    np.testing.assert_array_equal(image_scores(got_truth, pred, labelled), left)
    np.testing.assert_array_equal(image_scores(got_truth, flipped, labelled), left)
    t, iou = boundary_threshold(got_truth, np.where(unlabelled, 1.0, pred * 0.8 + 0.1), labelled=labelled)
    assert (t, iou) == boundary_threshold(truth[:, :, :6], (pred * 0.8 + 0.1)[:, :, :6])
    # an image nobody labelled is out of the mean; no labelled image at all is an error
    labelled[0] = False
    assert competition_score(got_truth, pred, labelled) == pytest.approx(left[1:].mean())
    with pytest.raises(ValueError, match="no image has a labelled pixel"):
        competition_score(got_truth, pred, np.zeros_like(labelled))


@pytest.mark.parametrize("value", [2, 254, 65535])
def test_split_labels_refuses_values_that_are_not_labels(value):
    labels = np.zeros((3, 3), np.int64)
    labels[1, 1] = value
    with pytest.raises(ValueError, match=f"found {value} at 1 pixels"):
        split_labels(labels)


def test_small_masks_are_emptied_per_image_with_or_without_a_channel_axis():
    """Four 4x4 masks with 16, 4, 0 and 5 salt pixels, at least 5 kept: as (N, H, W) and as
    (N, H, W, 1), where N == H once let a keep flag of image k land on row k of every image."""
    masks = np.zeros((4, 4, 4), bool)
    masks[0] = True
    masks[1, 0] = True
    masks[3, :, 0], masks[3, 0, 1] = True, True
    expected = masks & np.array([True, False, False, True])[:, None, None]
    np.testing.assert_array_equal(remove_small(masks, 5), expected)
    np.testing.assert_array_equal(remove_small(masks[..., None], 5), expected[..., None])
