"""FusedAdamW against Keras' AdamW: the same updates, the same variables, saved and loaded alike."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from salt_tf.training.optimizers import FusedAdamW


def _updates(optimizer: keras.optimizers.Optimizer, traced: bool):
    """Start weights, weights and optimizer variables after six steps of fixed gradients (weight
    decay included), and the op types of the traced step (None eager)."""
    rng = np.random.default_rng(0)
    weights = [keras.Variable(rng.normal(size=shape).astype("float32")) for shape in [(5, 3), (3,)]]
    start = [w.numpy() for w in weights]
    apply = tf.function(lambda grads: optimizer.apply(grads, weights)) if traced else \
        (lambda grads: optimizer.apply(grads, weights))
    steps = [[tf.constant(rng.normal(size=w.shape).astype("float32")) for w in weights] for _ in range(6)]
    for grads in steps:
        apply(grads)
    ops = {op.type for op in apply.get_concrete_function(steps[0]).graph.get_operations()} if traced else None
    return start, [w.numpy() for w in weights], [v.numpy() for v in optimizer.variables], ops


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_fused_adamw_updates_as_keras_adamw(traced):
    settings = dict(learning_rate=0.01, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-6)
    start, keras_weights, keras_state, keras_ops = _updates(keras.optimizers.AdamW(**settings), traced)
    _, fused_weights, fused_state, fused_ops = _updates(FusedAdamW(**settings), traced)
    assert max(float(np.abs(w - w0).max()) for w, w0 in zip(keras_weights, start)) > 0.05  # the steps moved them
    for ours, theirs in zip(fused_weights, keras_weights):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    # the same variables in the same order (step count, then a momentum and a velocity per weight):
    # a checkpoint's optimizer arrays fit either
    assert [v.shape for v in fused_state] == [v.shape for v in keras_state]
    for ours, theirs in zip(fused_state, keras_state):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    if traced:  # and the fused kernel is what did it
        assert "ResourceApplyAdam" in fused_ops and "ResourceApplyAdam" not in keras_ops


def test_fused_adamw_saves_and_loads_with_the_model(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(FusedAdamW(learning_rate=0.003, weight_decay=0.02), "mse")
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, FusedAdamW)
    assert loaded.optimizer.weight_decay == pytest.approx(0.02)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.003)
