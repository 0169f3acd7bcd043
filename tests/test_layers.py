import keras
import numpy as np
import pytest
import tensorflow as tf

from salt_tf.layers import SCSE, FusedBatchNormalization


def test_shape_is_preserved():
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 32)).astype("float32")
    assert SCSE()(x).shape == x.shape
    assert SCSE(reduction=4)(x[..., :5]).shape == (2, 8, 8, 5)  # fewer channels than r: one hidden unit


def test_open_gates_double_the_input():
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 32)).astype("float32")
    layer = SCSE()
    layer(x)
    # Zero kernels and a large bias make sigmoid(...) == 1 for both gates: x*1 + x*1.
    for dense in (layer.squeeze, layer.excite):
        dense.kernel.assign(np.zeros(dense.kernel.shape))
    layer.excite.bias.assign(np.full(layer.excite.bias.shape, 100.0))
    layer.spatial.kernel.assign(np.zeros(layer.spatial.kernel.shape))
    layer.spatial.bias.assign([100.0])
    np.testing.assert_allclose(layer(x), 2 * x, rtol=1e-6)
    # Closing the channel gate leaves the spatial path alone: x*0 + x*1.
    layer.excite.bias.assign(np.full(layer.excite.bias.shape, -100.0))
    np.testing.assert_allclose(layer(x), x, rtol=1e-6, atol=1e-6)


def test_gates_follow_the_paper():
    """Compare with a direct computation of x*sigmoid(W2 relu(W1 mean(x))) + x*sigmoid(w.x)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 5, 16)).astype("float32")
    layer = SCSE(reduction=4)
    y = np.asarray(layer(x))
    w1, b1 = (v.numpy() for v in layer.squeeze.weights)
    w2, b2 = (v.numpy() for v in layer.excite.weights)
    ws, bs = (v.numpy() for v in layer.spatial.weights)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    channel = sigmoid(np.maximum(x.mean((1, 2)) @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]
    spatial = sigmoid(x @ ws.reshape(16, 1) + bs)
    np.testing.assert_allclose(y, x * channel + x * spatial, rtol=1e-5, atol=1e-6)


def test_serialises(tmp_path):
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, SCSE(reduction=8, name="scse")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.get_layer("scse").reduction == 8
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-6)


# --- FusedBatchNormalization ---------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_matches_keras(policy):
    """Same outputs and moving statistics as Keras' layer, in training and inference, in float32
    and under the bfloat16 policy; scale=False (sm's bn_data) too."""
    x = tf.random.stateless_normal((4, 12, 12, 8), seed=(1, 2)) * 3.0 + 1.5
    for scale in (True, False):
        keras.utils.set_random_seed(0)
        ours = FusedBatchNormalization(momentum=0.9, scale=scale, dtype=policy)
        theirs = keras.layers.BatchNormalization(momentum=0.9, scale=scale, dtype=policy)
        ours.build(x.shape)
        theirs.build(x.shape)
        if scale:  # non-trivial gamma and beta
            for layer in (ours, theirs):
                layer.gamma.assign(np.linspace(0.5, 2.0, 8))
                layer.beta.assign(np.linspace(-1.0, 1.0, 8))
        xin = tf.cast(x, ours.compute_dtype)
        for _ in range(2):  # two updates of the moving statistics
            a = ours(xin, training=True)
            b = theirs(xin, training=True)
        tol = 1e-5 if policy == "float32" else 2e-2
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(tf.cast(a, tf.float32)), np.asarray(tf.cast(b, tf.float32)), atol=tol * 4)
        np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-4)
        # The moving statistics did move (a layer that skipped the update would fail here).
        assert np.abs(ours.moving_mean.numpy()).max() > 0.2
        a = ours(xin, training=False)
        b = theirs(xin, training=False)
        np.testing.assert_allclose(np.asarray(tf.cast(a, tf.float32)), np.asarray(tf.cast(b, tf.float32)), atol=tol * 4)


def test_fused_batch_norm_gradients_match_keras():
    x = tf.random.stateless_normal((2, 8, 8, 4), seed=(3, 4)) * 2.0 + 0.5
    grads = []
    for cls in (FusedBatchNormalization, keras.layers.BatchNormalization):
        layer = cls()
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * tf.range(4, dtype=tf.float32))
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_saves_and_loads(tmp_path):
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, FusedBatchNormalization(name="bn")(inputs))
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 4)).astype("float32")
    model(x, training=True)  # move the statistics away from 0/1
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert type(restored.get_layer("bn")) is FusedBatchNormalization
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_fused_batch_norm_falls_back_on_other_inputs():
    """A 2-D input (not what the fused kernel takes) still normalises, through Keras' code."""
    layer = FusedBatchNormalization()
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(64, 5)).astype("float32")
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-2)
