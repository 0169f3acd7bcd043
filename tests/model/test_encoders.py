"""Tests for salt_tf/model/encoders.py: shapes, errors, sm equivalence, saving, weights (GroupedConv2D's
own tests are in test_layers.py)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from salt_tf.model import backbones, encoders
from salt_tf.model.encoders import build_encoder
from salt_tf.model.layers import GroupedConv2D
from salt_tf.model.unet import export_saved_model

SIZE = 64  # the smallest tile with a 2x2 deepest map


def _images(n: int = 2, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _randomise_batchnorms(model: keras.Model, seed: int = 0) -> None:
    """Non-trivial BN statistics, so that copying them (or not) shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for weight in layer.weights:
                shape = tuple(weight.shape)
                if "variance" in weight.path:
                    values.append(rng.uniform(0.5, 2.0, shape))
                elif "gamma" in weight.path:
                    values.append(rng.uniform(0.5, 1.5, shape))
                else:
                    values.append(rng.normal(0, 0.5, shape))
            layer.set_weights([v.astype("float32") for v in values])


def _assert_outputs_close(actual, expected, atol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=atol, atol=atol)


@pytest.fixture(scope="module")
def resnext50():
    model = build_encoder("resnext50", SIZE)
    _randomise_batchnorms(model, seed=1)
    return model


@pytest.fixture(scope="module")
def sm_resnext50():
    model = encoders.build_sm_backbone("resnext50", SIZE)
    _randomise_batchnorms(model, seed=2)
    return model


# --- shapes and errors ------------------------------------------------------------------------

# resnet101/152 and resnext101 differ from their 50-layer siblings only in units per stage.
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnext50"])
def test_outputs_are_five_maps_deepest_first(name):
    encoder = build_encoder(name, SIZE)
    shapes = [tuple(output.shape) for output in encoder.outputs]
    assert [s[1:3] for s in shapes] == [(SIZE // s, SIZE // s) for s in encoders.STRIDES]
    assert all(s[0] is None for s in shapes)
    assert tuple(encoder.input.shape) == (None, SIZE, SIZE, 3)


def test_forward_pass_gives_the_declared_shapes():
    encoder = build_encoder("resnet18", 96)
    outputs = encoder(_images(size=96), training=False)
    assert [tuple(o.shape) for o in outputs] == [
        (2, 3, 3, 512), (2, 6, 6, 256), (2, 12, 12, 128), (2, 24, 24, 64), (2, 48, 48, 64)]


def test_unknown_encoder_names_the_known_ones():
    with pytest.raises(ValueError,
                       match="unknown encoder 'resnet19'.*resnet18, resnet34.*resnext50"):
        build_encoder("resnet19", SIZE)


@pytest.mark.parametrize("size, suggestion", [(101, 128), (100, 128), (130, 160)])
def test_size_not_multiple_of_32(size, suggestion):
    with pytest.raises(ValueError,
                       match=f"{size} is not a multiple of 32.*pad tiles to {suggestion}"):
        build_encoder("resnet18", size)


def test_bad_weights_argument():
    with pytest.raises(TypeError, match="weights must be None, 'imagenet' or a file path"):
        build_encoder("resnet18", SIZE, weights=3)


# --- our ResNeXt50 vs sm's ---------------------------------------------------------------------

def _sm_encoder(sm_backbone: keras.Model, name: str) -> keras.Model:
    skips = [sm_backbone.get_layer(layer).output for layer in encoders.FEATURE_LAYERS]
    return keras.Model(sm_backbone.input, [sm_backbone.output, *skips])


def test_resnext50_equals_sm_with_copied_weights(resnext50, sm_resnext50):
    ours = build_encoder("resnext50", SIZE)
    assert sum(isinstance(layer, GroupedConv2D) for layer in ours.layers) == 16
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in ours.layers)
    encoders.copy_sm_weights(sm_resnext50, ours)
    assert ours.count_params() == sm_resnext50.count_params()
    images = _images()
    _assert_outputs_close(ours(images, training=False),
                          _sm_encoder(sm_resnext50, "resnext50")(images, training=False), atol=1e-4)


# --- our ResNets (the backbone on JAX and PyTorch) vs sm's ------------------------------------

def test_feature_layers_and_imagenet_files_are_sms():
    from classification_models.weights import WEIGHTS_COLLECTION

    sm = encoders._sm()
    for name in encoders.ENCODERS:
        assert tuple(sm.Backbones.get_feature_layers(name, n=4)) == encoders.FEATURE_LAYERS, name
        (entry,) = [w for w in WEIGHTS_COLLECTION if w["model"] == name and w["dataset"] == "imagenet"
                    and not w["include_top"]]
        assert encoders.imagenet_release(name) == {key: entry[key] for key in ("name", "url", "md5")}


def _weighted_layers(model: keras.Model) -> list[tuple]:
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
            for layer in model.layers if layer.weights]


# resnet18 has sm's basic blocks, resnet50 its bottlenecks; the deeper ones only repeat them.
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_our_resnet_is_sms_layer_for_layer(name):
    sm_backbone = encoders.build_sm_backbone(name, SIZE)
    _randomise_batchnorms(sm_backbone, seed=3)
    ours = backbones.build_resnet(name, SIZE)
    assert _weighted_layers(ours) == _weighted_layers(sm_backbone)  # names, classes, shapes, in order
    encoders.copy_sm_weights(sm_backbone, ours)
    images = _images()
    np.testing.assert_array_equal(ours(images, training=False), sm_backbone(images, training=False))


@pytest.mark.parametrize("file_format", ["keras3", "legacy"])
def test_sm_resnet_files_load_into_ours(tmp_path, file_format):
    """What build_encoder does on JAX and PyTorch with sm's files: Keras 3 files number layers by
    class in order, so ours reads sm's directly; legacy files go through h5py by name."""
    sm_backbone = encoders.build_sm_backbone("resnet18", SIZE)
    _randomise_batchnorms(sm_backbone, seed=4)
    path = tmp_path / ("sm.weights.h5" if file_format == "keras3" else "sm.h5")
    sm_backbone.save_weights(path) if file_format == "keras3" else sm_backbone.save(path)
    ours = backbones.build_resnet("resnet18", SIZE)
    encoders.load_encoder_weights(ours, "resnet18", path)
    _assert_same_weights(ours, sm_backbone)


# --- saving -----------------------------------------------------------------------------------

def test_resnext50_keras_file_round_trip(resnext50, tmp_path):
    path = tmp_path / "resnext50_encoder.keras"
    resnext50.save(path)
    loaded = keras.saving.load_model(path)
    assert sum(isinstance(layer, GroupedConv2D) for layer in loaded.layers) == 16
    images = _images()
    _assert_outputs_close(loaded(images, training=False), resnext50(images, training=False),
                          atol=1e-5)


def test_resnext50_savedmodel_export(resnext50, tmp_path):
    export_saved_model(resnext50, tmp_path / "exported")  # as training exports its models
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))  # keep it: it owns the variables
    images = tf.constant(_images())
    served = reloaded.serve(images)
    # The exported graph computes what the model computes eagerly, to float32 rounding relative to
    # the output scale (its fused conv/BN kernels move the last bits; a wrong graph is off by O(1)).
    expected = resnext50(images, training=False)
    assert len(served) == len(expected) == 5
    for a, e in zip(served, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-5 * float(np.abs(e).max()))


# --- weights ----------------------------------------------------------------------------------

def _assert_has_sm_weights(encoder: keras.Model, sm_backbone: keras.Model) -> None:
    """Every weight of `encoder` equals sm's, by layer name; grouped kernels as sm's groups."""
    group_kernels = encoders._sm_group_kernels(sm_backbone)
    for layer in (layer for layer in encoder.layers if layer.weights):
        if isinstance(layer, GroupedConv2D):
            expected = [group_kernels[layer.name]]
        else:
            expected = sm_backbone.get_layer(layer.name).get_weights()
        assert len(layer.weights) == len(expected), layer.name
        for ours, theirs in zip(layer.weights, expected):
            np.testing.assert_array_equal(ours.numpy(), theirs, err_msg=ours.path)


def _assert_same_weights(a: keras.Model, b: keras.Model) -> None:
    assert len(a.weights) == len(b.weights)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)


def test_weights_from_an_encoder_file_at_another_size(tmp_path):
    source = build_encoder("resnet18", SIZE)
    _randomise_batchnorms(source)
    path = tmp_path / "resnet18.weights.h5"
    source.save_weights(path)
    loaded = build_encoder("resnet18", 96, weights=path)
    _assert_same_weights(loaded, source)


def test_weights_from_a_legacy_h5_of_the_sm_backbone(tmp_path):
    # The released ImageNet files are Keras 2 HDF5 files of sm's backbone; Keras 3 still writes
    # that format for `model.save("x.h5")` (weights under "model_weights").
    backbone = encoders.build_sm_backbone("resnet18", SIZE)
    _randomise_batchnorms(backbone)
    path = tmp_path / "resnet18_sm.h5"
    backbone.save(path)
    _assert_has_sm_weights(build_encoder("resnet18", SIZE, weights=path), backbone)


def test_resnext50_weights_from_our_file(resnext50, tmp_path):
    path = tmp_path / "resnext50.weights.h5"
    resnext50.save_weights(path)
    _assert_same_weights(build_encoder("resnext50", SIZE, weights=path), resnext50)


@pytest.mark.parametrize("file_format", ["keras3", "legacy"])
def test_resnext50_weights_from_an_sm_backbone_file(sm_resnext50, tmp_path, file_format):
    # "legacy" is the format of sm's released resnext50_imagenet_1000_no_top.h5.
    if file_format == "keras3":
        path = tmp_path / "resnext50_sm.weights.h5"
        sm_resnext50.save_weights(path)
    else:
        path = tmp_path / "resnext50_sm.h5"
        sm_resnext50.save(path)
    # Outputs equal sm's once the weights are (test_resnext50_equals_sm_with_copied_weights).
    _assert_has_sm_weights(build_encoder("resnext50", SIZE, weights=path), sm_resnext50)


# Keras warns about every unmatched container before it raises.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_of_another_encoder(tmp_path):
    path = tmp_path / "resnet18.weights.h5"
    build_encoder("resnet18", SIZE).save_weights(path)
    with pytest.raises(ValueError, match="resnet18.weights.h5: these weights do not fit the "
                                         "resnet34 encoder"):
        build_encoder("resnet34", SIZE, weights=path)


def test_sm_files_loaded_one_after_another_each_arrive_whole(tmp_path):
    """sm's files are read into one sm backbone per process (encoders._sm_reader): after a file
    that does not fit, two files in turn each give exactly their own weights."""
    wrong = tmp_path / "resnet34_sm.h5"
    encoders.build_sm_backbone("resnet34", SIZE).save(wrong)
    with pytest.raises(ValueError, match="resnet34_sm.h5: these weights do not fit the resnet18 encoder"):
        build_encoder("resnet18", SIZE, weights=wrong)
    backbones = [encoders.build_sm_backbone("resnet18", SIZE) for _ in range(2)]
    for seed, backbone in enumerate(backbones):
        _randomise_batchnorms(backbone, seed=seed)
        backbone.save(tmp_path / f"sm{seed}.h5")
    assert not np.array_equal(backbones[0].weights[0].numpy(), backbones[1].weights[0].numpy())
    for seed, backbone in enumerate(backbones):
        _assert_has_sm_weights(build_encoder("resnet18", SIZE, weights=tmp_path / f"sm{seed}.h5"), backbone)


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.weights.h5: weights file not found"):
        build_encoder("resnet18", SIZE, weights=tmp_path / "nope.weights.h5")


def test_weights_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not weights")
    with pytest.raises(ValueError, match="notes.h5: not an HDF5 weights file"):
        build_encoder("resnet18", SIZE, weights=path)


def test_imagenet_offline_names_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    def no_network(fname, origin, **kwargs):
        # What keras.utils.get_file raises without network.
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] "
                        "Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        build_encoder("resnet18", SIZE, weights="imagenet")
    message = str(info.value)
    url = ("https://github.com/qubvel/classification_models/releases/download/0.0.1/"
           "resnet18_imagenet_1000_no_top.h5")
    assert url in message
    assert str(tmp_path / "models" / "resnet18_imagenet_1000_no_top.h5") in message
    assert "Name or service not known" in message


def test_imagenet_loads_the_cached_file(monkeypatch, tmp_path):
    backbone = encoders.build_sm_backbone("resnet18", SIZE)
    _randomise_batchnorms(backbone)
    cached = tmp_path / "models" / "resnet18_imagenet_1000_no_top.h5"
    cached.parent.mkdir()
    backbone.save(cached)
    asked = {}

    def cache_hit(fname, origin, cache_dir=None, cache_subdir="datasets", **kwargs):
        asked.update(fname=fname, cache_subdir=cache_subdir, md5=kwargs.get("file_hash"))
        return str(tmp_path / cache_subdir / fname)

    monkeypatch.setattr(keras.utils, "get_file", cache_hit)
    loaded = build_encoder("resnet18", SIZE, weights="imagenet")
    assert asked == dict(fname="resnet18_imagenet_1000_no_top.h5", cache_subdir="models",
                         md5="318e3ac0cd98d51e917526c9f62f0b50")
    np.testing.assert_array_equal(loaded.get_layer("conv0").kernel.numpy(),
                                  backbone.get_layer("conv0").kernel.numpy())
