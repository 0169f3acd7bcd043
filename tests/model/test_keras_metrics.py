import numpy as np

from salt_tf.model.keras_metrics import CompetitionScore
from salt_tf.tiles import metrics


def test_agrees_with_numpy_metric_over_batches():
    rng = np.random.default_rng(0)
    metric = CompetitionScore()
    truths, preds = [], []
    for _ in range(4):
        truth = np.zeros((8, 32, 32, 1), np.float32)
        for i in range(8):
            if rng.random() < 0.6:
                r, c = rng.integers(0, 24, 2)
                truth[i, r : r + rng.integers(4, 9), c : c + rng.integers(4, 9)] = 1
        # Logits that mostly agree, with noise: IoUs spread over the thresholds.
        logits = np.where(truth > 0, 1.0, -1.0) + rng.normal(0, 1.0, truth.shape).astype(np.float32)
        logits[0] = -5  # an empty prediction
        metric.update_state(truth, logits)
        truths.append(truth)
        preds.append(logits > 0)
    expected = metrics.competition_score(np.concatenate(truths), np.concatenate(preds))
    assert 0.05 < expected < 0.95
    np.testing.assert_allclose(float(metric.result()), expected, atol=1e-6)
    metric.reset_state()
    empty = np.zeros((2, 8, 8, 1), np.float32)
    metric.update_state(empty, empty - 1)
    assert float(metric.result()) == 1.0


def test_unlabelled_pixels_and_wholly_unlabelled_images_are_out_of_the_score():
    rng = np.random.default_rng(1)
    truth = (rng.random((6, 16, 16, 1)) < 0.4).astype(np.float32)
    logits = np.where(truth > 0, 1.0, -1.0) + rng.normal(0, 1.2, truth.shape).astype(np.float32)
    unlabelled = rng.random(truth.shape) < 0.3
    unlabelled[5] = True  # an image nobody labelled
    sparse = np.where(unlabelled, metrics.UNLABELLED, truth).astype(np.float32)
    metric = CompetitionScore()
    metric.update_state(sparse, logits)
    # the same as scoring each labelled image with its unlabelled pixels blanked in truth and prediction
    blank_truth = np.where(unlabelled, 0, truth)[:5]
    blank_pred = np.where(unlabelled, False, logits > 0)[:5]
    np.testing.assert_allclose(float(metric.result()), metrics.competition_score(blank_truth, blank_pred), atol=1e-6)
    # and the NumPy score given the sparse labels themselves agrees, image by image
    truth_np, labelled = metrics.split_labels(sparse.astype(np.uint8))
    scores = metrics.image_scores(truth_np, logits > 0, labelled)
    assert np.isnan(scores[5]) and not np.isnan(scores[:5]).any()
    np.testing.assert_allclose(float(metric.result()), metrics.competition_score(truth_np, logits > 0, labelled),
                               atol=1e-6)
    # salt predicted only where nobody labelled costs nothing
    metric.reset_state()
    metric.update_state(np.where(unlabelled, metrics.UNLABELLED, 0.0)[:1].astype(np.float32),
                        np.where(unlabelled, 5.0, -5.0)[:1].astype(np.float32))
    assert float(metric.result()) == 1.0
