import numpy as np

from salt_tf.tiles import metrics
from salt_tf.model.keras_metrics import CompetitionScore


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
