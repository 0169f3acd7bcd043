"""The U-Net builder: shapes, options, save/load and SavedModel round trips, encoder weights."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from salt_tf.model.encoders import build_encoder
from salt_tf.model.unet import all_layers, build_unet, export_saved_model, inference_model


def tiles(n=2, size=64, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype("float32")


@pytest.fixture(scope="module")
def unets():
    """One U-Net per encoder at 64x64, built once for the module."""
    return {name: build_unet(name, 64) for name in ("resnet18", "resnet34", "resnext50")}


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnext50"])
def test_logits_shape_and_dtype_at_64(unets, name):
    out = unets[name](tiles())
    assert out.shape == (2, 64, 64, 1) and out.dtype == tf.float32
    assert unets[name].input_shape == (None, 64, 64, 1)
    # Logits, not probabilities: a sigmoid would keep them inside (0, 1).
    assert float(tf.reduce_min(out)) < 0 or float(tf.reduce_max(out)) > 1


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnext50"])
def test_logits_shape_at_128(name):
    model = build_unet(name, 128)
    assert model(tiles(1, 128)).shape == (1, 128, 128, 1)


def test_101_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="101 is not a multiple of 32.*resize them to 128"):
        build_unet("resnet18", 101)


def test_options_change_the_parameter_count_as_expected():
    base = build_unet("resnet18", 64)
    plain = build_unet("resnet18", 64, scse=False)
    hyper = build_unet("resnet18", 64, hypercolumn=True)
    # scSE per decoder stage with C channels: C*(C/16)+C/16 + (C/16)*C+C + C+1 parameters.
    expected_scse = 0
    for c in (256, 128, 64, 32, 16):
        h = max(1, c // 16)
        expected_scse += c * h + h + h * c + c + c + 1
    assert base.count_params() - plain.count_params() == expected_scse
    # The hypercolumn head sees 256+128+64+32+16 channels instead of 16: 3x3 kernel, one output.
    assert hyper.count_params() - base.count_params() == 9 * (256 + 128 + 64 + 32)
    assert not any("scse" in layer.name for layer in plain.layers)
    assert any(layer.name == "hypercolumn" for layer in hyper.layers)


def test_decoder_widths_and_the_light_decoder(tmp_path, eager):
    def decoder_convs(model, kind):
        return [layer for layer in model.layers if layer.name.startswith("decoder_stage") and isinstance(layer, kind)]

    base = build_unet("resnet18", 64)
    narrow = build_unet("resnet18", 64, decoder_filters=(128, 64, 32, 16, 16))
    assert [c.filters for c in decoder_convs(narrow, keras.layers.Conv2D)] == [128, 128, 64, 64, 32, 32, 16, 16, 16, 16]
    assert narrow.count_params() < base.count_params()
    light = build_unet("resnet18", 64, decoder="light")
    assert light.name.endswith("_light") and light.output_shape == (None, 64, 64, 1)
    # No 3x3 convolution in the light decoder: 1x1 convs on the five stages' inputs and the four skips.
    assert [(c.kernel_size, c.filters) for c in decoder_convs(light, keras.layers.Conv2D)] == [((1, 1), 64)] * 9
    assert light.count_params() < narrow.count_params()
    x = tiles(2, seed=3)
    expected = light.predict(x, verbose=0)
    light.save(tmp_path / "light.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "light.keras").predict(x, verbose=0), expected,
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="5 positive widths"):
        build_unet("resnet18", 64, decoder_filters=(64, 32, 16, 8))
    with pytest.raises(ValueError, match="unknown decoder 'heavy'; known decoders: unet, light"):
        build_unet("resnet18", 64, decoder="heavy")
    from salt_tf.model import unet as model_mod
    from salt_tf.run import config

    assert config.DECODERS == tuple(model_mod.DECODERS)  # the CLI's choices (config.py imports no TensorFlow)


def test_gray_input_feeds_three_equal_channels(unets):
    model = unets["resnet18"]
    probe = keras.Model(model.input, model.get_layer("gray_to_rgb").output)
    x = tiles(1)
    rgb = probe(x).numpy()
    assert rgb.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(rgb, np.repeat(x * 255.0, 3, axis=-1), rtol=1e-6)


def test_batchnorm_momentum_is_set_everywhere(unets):
    momenta = {layer.momentum for layer in unets["resnext50"].get_layer("resnext50_encoder").layers
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


# resnext50's grouped convolutions through both formats: tests/test_encoders.py (the decoder is the same).
@pytest.mark.parametrize("name", ["resnet18"])
def test_keras_file_and_savedmodel_round_trips(unets, name, tmp_path):
    model = unets[name]
    x = tiles(3, seed=1)
    # Compare graph with graph (predict): eager calls skip TF's graph-level op fusions, which move
    # the last float32 bits (1e-4 relative here, where untrained logits reach the thousands).
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    eager = model(x, training=False).numpy()  # eager with eager: the same ops (no trace of the restored model)
    np.testing.assert_allclose(restored(x, training=False).numpy(), eager, atol=1e-5, rtol=1e-5)
    export_saved_model(model, tmp_path / "saved_model")  # what training exports (Keras' model.export: tests/test_predict.py)
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), expected, atol=1e-5, rtol=1e-5)
    assert tuple(served.serve.input_signature[0].shape) == (None, *x.shape[1:])
    signature = served.signatures["serving_default"]
    np.testing.assert_allclose(signature(tile=tf.constant(x))["output_0"].numpy(), expected, atol=1e-5, rtol=1e-5)
    # And eager against the exported graph: float32 round-off, amplified through the untrained
    # layers, reaches ~2e-5 of the logits' scale (seen in CI); a wrong graph would be off by O(1).
    # Rarely a near-tie (a ReLU or the stem's max-pool) flips and moves a small patch by more (8 of
    # 12,288 logits by 5e-4 of the scale, seen once in CI): judge the bulk, and bound the worst.
    scale = np.abs(expected).max()
    diff = np.abs(eager - expected) / scale
    assert np.quantile(diff, 0.995) < 1e-4 and diff.max() < 1e-2, (np.quantile(diff, 0.995), diff.max())


def test_encoder_weights_from_a_local_file(tmp_path):
    donor = build_encoder("resnet18", 64)
    for weight in donor.weights:  # distinctive values, so that arrival is unmistakable
        weight.assign(np.random.default_rng(len(weight.path)).normal(size=weight.shape).astype("float32"))
    path = tmp_path / "resnet18.weights.h5"
    donor.save_weights(path)
    model = build_unet("resnet18", 128, encoder_weights=str(path))
    encoder = model.get_layer("resnet18_encoder")
    for mine, theirs in zip(encoder.weights, donor.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    fresh = build_unet("resnet18", 128).get_layer("resnet18_encoder")
    assert not np.array_equal(fresh.weights[1].numpy(), encoder.weights[1].numpy())


def test_imagenet_offline_error_through_the_builder(monkeypatch, tmp_path):
    def no_network(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resnet34_imagenet_1000_no_top.h5"):
        build_unet("resnet34", 64, encoder_weights="imagenet")


def test_the_fast_layers_are_everywhere_and_keras_layers_compute_the_same(unets, eager):
    """The default model uses FusedBatchNormalization and FastConv2D everywhere (encoder and
    decoder); the fused_bn=False, fast_conv=False model has Keras' layers, the same weights, and the
    same training step (so the same gradients)."""
    from salt_tf.model.layers import FastConv2D, FusedBatchNormalization

    def of_kind(model, kind):
        return [layer for layer in all_layers(model) if isinstance(layer, kind)]

    keras.utils.set_random_seed(0)
    fused = build_unet("resnet18", 64)
    plain = build_unet("resnet18", 64, fused_bn=False, fast_conv=False)
    for kind, ours in ((keras.layers.BatchNormalization, FusedBatchNormalization), (keras.layers.Conv2D, FastConv2D)):
        assert of_kind(fused, kind) and all(type(layer) is ours for layer in of_kind(fused, kind))
        assert all(type(layer) is kind for layer in of_kind(plain, kind))
    assert [w.shape for w in fused.weights] == [w.shape for w in plain.weights]
    weights = fused.get_weights()
    x, y = tiles(4, seed=2), (tiles(4, seed=3) > 0.6).astype("float32")
    # Inference with the same weights: the same logits up to float32 round-off as this untrained
    # net amplifies it, measured here: every weight of the plain net moved by one unit in the last
    # place moves its logits as far as the two kernels' round-off does (0.3-2.3 times over 16
    # initialisations on the AVX-512 machine, where a fixed 1e-4 of the logits' scale failed).
    rng = np.random.default_rng(0)
    plain.set_weights([w * (1 + rng.choice([-1, 1], w.shape) * 2.0**-23).astype(w.dtype) for w in weights])
    nudged = plain.predict(x, verbose=0)
    plain.set_weights(weights)
    expected = plain.predict(x, verbose=0)
    round_off = np.abs(nudged - expected).max()
    assert 0 < round_off < 1e-2 * np.abs(expected).max()
    np.testing.assert_allclose(fused.predict(x, verbose=0), expected, atol=5 * round_off)
    # One training step: the same loss, and the same updated weights and moving statistics (the
    # round-off of two different kernels, amplified through an untrained net, moves them by <1e-3).
    for model in (fused, plain):
        model.compile(keras.optimizers.SGD(0.01), keras.losses.BinaryCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(x, y)) for model in (fused, plain)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    for a, b in zip(fused.weights, plain.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)


def test_any_size_model_shares_the_fixed_models_weights(eager):
    """size=None takes 64 and 128 inputs; its weights copied into a fixed-size model give the same
    logits (what training does after progressive resizing, before export)."""
    model = build_unet("resnet18", None)
    assert model.input_shape == (None, None, None, 1)
    for size in (64, 128):
        assert model(tiles(1, size)).shape == (1, size, size, 1)
    fixed = build_unet("resnet18", 128)
    fixed.set_weights(model.get_weights())
    x = tiles(2, 128, seed=4)
    np.testing.assert_allclose(fixed.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


def test_auxiliary_heads_are_channels_after_the_logits_and_dropped_for_inference(tmp_path, eager):
    """Deep supervision (four stages) and the image head (one value per tile), for any input size and
    with --fit pad; ``inference_model`` gives the logits alone, with the same weights."""
    model = build_unet("resnet18", None, supervision=True, empty_head=True)
    for size in (64, 96):
        out = model.predict(tiles(2, size), verbose=0)
        assert out.shape == (2, size, size, 6)
        assert np.all(out[..., 1] == out[:, :1, :1, 1])  # the image head: one value per tile
    fixed = build_unet("resnet18", 64, supervision=True, empty_head=True)
    fixed.set_weights(model.get_weights())
    logits = inference_model(fixed)
    assert logits.output_shape == (None, 64, 64, 1) and inference_model(logits) is logits
    x = tiles(2, 64, seed=2)
    np.testing.assert_allclose(logits.predict(x, verbose=0), model.predict(x, verbose=0)[..., :1], rtol=1e-4, atol=1e-4)
    logits.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert not any(layer.name.startswith(("supervision", "empty")) for layer in loaded.layers)
    padded = build_unet("resnet18", 128, supervision=True, tile=101)
    assert padded.output_shape == (None, 101, 101, 5) and inference_model(padded).output_shape == (None, 101, 101, 1)
