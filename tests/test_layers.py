import keras
import numpy as np

from salt_tf.layers import SCSE


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
