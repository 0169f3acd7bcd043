import keras
import numpy as np
import pytest
import tensorflow as tf

from salt_tf.model.layers import SCSE, FusedBatchNormalization, GroupedConv2D, ReflectPad2D


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


def test_a_model_saved_in_mixed_precision_loads_and_runs_under_another_policy(tmp_path):
    """A fine-tune saved under mixed_bfloat16 (section_context.py's) loaded by predict.py or segment.py,
    whose global policy is float32: the gates keep the layer's precision (they had the global one)."""
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 16)).astype("float32")
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        inputs = keras.Input((None, None, 16))
        model = keras.Model(inputs, SCSE(reduction=8, name="scse")(keras.layers.Conv2D(16, 1)(inputs)))
        expected = np.asarray(keras.ops.cast(model(x), "float32"))
        model.save(tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert restored.get_layer("scse").excite.dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(np.asarray(keras.ops.cast(restored(x), "float32")), expected, rtol=0, atol=1e-6)


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


# --- GroupedConv2D -------------------------------------------------------------------------------

def _assert_outputs_close(actual, expected, atol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=atol, atol=atol)


def _reference_grouped_conv(x, kernel, groups, strides, padding):
    """One keras.ops.conv per group, concatenated: sm's construction."""
    cin, cout = kernel.shape[-2], kernel.shape[-1] // groups
    return keras.ops.concatenate([
        keras.ops.conv(x[..., g * cin:(g + 1) * cin], kernel[..., g * cout:(g + 1) * cout],
                       strides, padding)
        for g in range(groups)], axis=-1)


def _numpy_grouped_conv(x, kernel, groups):
    """Plain NumPy, stride 1, valid padding."""
    kh, kw, cin, cout = kernel.shape
    cog = cout // groups
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # n,h,w,c,kh,kw
    out = [np.einsum("nhwcij,ijco->nhwo", windows[..., g * cin:(g + 1) * cin, :, :],
                     kernel[..., g * cog:(g + 1) * cog]) for g in range(groups)]
    return np.concatenate(out, axis=-1)


@pytest.mark.parametrize("groups, strides, padding", [(32, 1, "valid"), (32, 2, "valid"),
                                                       (4, 1, "same"), (4, 2, "same")])
def test_grouped_conv_matches_reference_with_gradients(groups, strides, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(0, 1, (2, 9, 9, 2 * groups)).astype("float32"))
    layer = GroupedConv2D(4 * groups, 3, groups=groups, strides=strides, padding=padding)
    layer.build(x.shape)
    kernel = layer.kernel

    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn()
            loss = tf.reduce_sum(y * tf.cos(y))  # non-uniform upstream gradient
        return [y, *tape.gradient(loss, [x, kernel])]

    ours = value_and_grads(lambda: layer(x))
    per_group = value_and_grads(lambda: layer._call_per_group(x))
    reference = value_and_grads(
        lambda: _reference_grouped_conv(x, kernel, groups, layer.strides, padding))
    assert tuple(ours[0].shape) == layer.compute_output_shape(tuple(x.shape))
    _assert_outputs_close(ours, reference, atol=1e-5)
    _assert_outputs_close(per_group, reference, atol=1e-5)
    if strides == 1 and padding == "valid":
        np.testing.assert_allclose(ours[0], _numpy_grouped_conv(x.numpy(), kernel.numpy(), groups),
                                   rtol=1e-5, atol=1e-5)


def test_grouped_conv_initialises_each_group_independently():
    layer = GroupedConv2D(128, 3, groups=32)
    layer.build((None, 8, 8, 128))
    kernel = layer.kernel.numpy()  # (3, 3, 4, 128): 32 blocks of 4 output channels
    blocks = kernel.reshape(3, 3, 4, 32, 4)
    assert not np.allclose(blocks[..., 0, :], blocks[..., 1, :])
    # Glorot uniform with one group's fans (as sm's per-group Conv2D): limit sqrt(6 / (36 + 36)).
    assert np.abs(kernel).max() <= np.sqrt(6 / 72)
    assert kernel.std() == pytest.approx(np.sqrt(6 / 72) / np.sqrt(3), rel=0.1)


def test_grouped_conv_config_round_trip():
    layer = GroupedConv2D(64, 3, groups=32, strides=2, padding="same", use_bias=True, name="g")
    clone = GroupedConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_name(GroupedConv2D) == "salt_tf>GroupedConv2D"


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=30, kernel_size=3, groups=32), "filters=30 is not divisible by groups=32"),
    (dict(filters=32, kernel_size=3, groups=32, padding="causal"), "padding must be"),
])
def test_grouped_conv_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupedConv2D(**kwargs)


def test_grouped_conv_rejects_indivisible_input_channels():
    with pytest.raises(ValueError,
                       match=r"input channels \(30\) must be .* divisible by groups=32"):
        GroupedConv2D(64, 3, groups=32).build((None, 8, 8, 30))


def test_reflect_pad_is_numpys_reflection_and_saves(tmp_path):
    x = np.random.default_rng(0).random((2, 101, 101, 1)).astype("float32")
    padding = ((13, 14), (13, 14))
    inputs = keras.Input((101, 101, 1))
    model = keras.Model(inputs, ReflectPad2D(padding)(inputs))
    expected = np.pad(x, ((0, 0), *padding, (0, 0)), mode="reflect")
    np.testing.assert_array_equal(model(x).numpy(), expected)
    assert model.output_shape == (None, 128, 128, 1)
    model.save(tmp_path / "pad.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "pad.keras")(x).numpy(), expected)


@pytest.mark.parametrize("kernel, strides, padding, policy", [
    (3, 1, "valid", "float32"), (3, 1, "same", "float32"), (1, 1, "same", "float32"), (7, 1, "valid", "float32"),
    (3, 2, "valid", "float32"),  # stride 2: Keras' own path
    (3, 1, "same", "mixed_bfloat16")])
def test_fast_conv_is_keras_conv_with_the_same_gradients(kernel, strides, padding, policy):
    from salt_tf.model.layers import FastConv2D

    rng = np.random.default_rng(kernel + strides)
    x = tf.constant(rng.normal(size=(2, 9, 9, 16)).astype("float32"))
    keras.mixed_precision.set_global_policy(policy)
    try:
        ours = FastConv2D(8, kernel, strides=strides, padding=padding, use_bias=True)
        theirs = keras.layers.Conv2D(8, kernel, strides=strides, padding=padding, use_bias=True)
        for layer in (ours, theirs):
            layer.build(x.shape)
        theirs.set_weights(ours.get_weights())
        results = []
        for layer in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.cast(layer(x), "float32")
                loss = tf.reduce_sum(y * tf.sin(y))  # an upstream gradient that varies per pixel
            results.append([y, *tape.gradient(loss, [x, *layer.trainable_variables])])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tolerance = 1e-5 if policy == "float32" else 2e-2
    for a, b in zip(*results):
        scale = float(np.abs(b).max())
        np.testing.assert_allclose(np.asarray(a, "float32"), np.asarray(b, "float32"), atol=tolerance * scale, rtol=0)
    assert ours._fast_backprop() == (strides == 1)


def test_fast_conv_saves_and_loads(tmp_path):
    from salt_tf.model.layers import FastConv2D

    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, FastConv2D(3, 3, padding="same", name="c")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("c")) is FastConv2D
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_bilinear_upsampling_is_keras_on_any_size_map(tmp_path):
    """The hypercolumn's upsampling: Keras' bilinear UpSampling2D's numbers, also traced on a map
    of unknown size (Keras' layer cannot: the any-size model of progressive resizing), and saved."""
    from salt_tf.model.layers import BilinearUpsampling2D
    from salt_tf.model.unet import build_unet

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32"))
    expected = keras.layers.UpSampling2D(4, interpolation="bilinear")(x)
    np.testing.assert_allclose(BilinearUpsampling2D(4)(x).numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    model = build_unet("resnet18", None, hypercolumn=True)  # as a warm-up trains it
    traced = tf.function(lambda t: model(t, training=True), input_signature=[tf.TensorSpec((None, None, None, 1))])
    assert tuple(traced(tf.zeros((1, 64, 64, 1))).shape) == (1, 64, 64, 1)
    model.save(tmp_path / "h.keras")
    loaded = keras.models.load_model(tmp_path / "h.keras")
    assert type(loaded.get_layer("hypercolumn_up0")) is BilinearUpsampling2D
    tiles = np.random.default_rng(1).random((1, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded(tiles).numpy(), model(tiles).numpy(), rtol=1e-5, atol=1e-5)
