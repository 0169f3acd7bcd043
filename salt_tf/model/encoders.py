"""Encoders: the down path of the U-Net, from segmentation_models' ImageNet backbones.

`build_encoder(name, size)` returns a `keras.Model` mapping a (size, size, 3) image to five feature
maps, deepest first: [stride 32 (backbone output), stride 16, stride 8, stride 4, stride 2]. The
four skips are the layers sm's own Unet taps (`sm.Backbones.get_feature_layers(name, n=4)`).

ResNets are sm's backbones as they are. ResNeXts are rebuilt here: sm (classification_models)
makes every grouped 3x3 conv from 32 `Lambda` slices + 32 `Conv2D` + `Concatenate`, which neither
loads back from a `.keras` file under Keras 3 nor trains fast on CPU. Ours keeps the names of all
of sm's named layers and the same weights, with one `GroupedConv2D` (in `salt_tf.model.layers`) per
grouped conv; `copy_sm_weights` moves weights (e.g. sm's ImageNet ones) from sm's model into ours.

Weights (`build_encoder(..., weights=...)`):
  None        random init.
  "imagenet"  sm's released file (same URL, file name, md5 and Keras cache dir as sm uses);
              without network this raises FileNotFoundError naming the URL and where to put it.
  a path      an HDF5 weights file, either
              - legacy Keras `.h5` of the sm backbone: the released `*_imagenet_1000_no_top.h5`
                files, or Keras 2 `save_weights("x.h5")` of an sm backbone (loaded by topological
                order, as sm does), or
              - Keras 3 `.weights.h5` from `save_weights` of an sm backbone or of an encoder that
                `build_encoder` made for the same name.
              Weights do not depend on the input size, so a file saved at one size loads at any.
"""
from __future__ import annotations

import functools
import numbers
import os
from pathlib import Path

import keras
import numpy as np

from salt_tf.model.layers import FastConv2D, FusedBatchNormalization, GroupedConv2D

STRIDES = (32, 16, 8, 4, 2)

# sm/classification_models ResNeXt: (units per stage), cardinality 32, width 4 in the first stage
# (ResNeXt-50 32x4d, Xie et al. 2017, table 1).
_RESNEXT_UNITS = {"resnext50": (3, 4, 6, 3), "resnext101": (3, 4, 23, 3)}
_RESNEXT_GROUPS = 32
_SM_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
ENCODERS = _SM_RESNETS + tuple(_RESNEXT_UNITS)

# classification_models' settings, repeated so our ResNeXt is sm's layer for layer.
_BN = dict(axis=3, momentum=0.99, epsilon=2e-5)
_CONV = dict(kernel_initializer="glorot_uniform", use_bias=False, padding="valid")


# ---------------------------------------------------------------------------------------------
# ResNeXt, layer for layer as classification_models builds it
# ---------------------------------------------------------------------------------------------

def resnext_bottleneck(filters: int, stage: int, unit: int, strides: int, groups: int,
                      conv_shortcut: bool, bn=FusedBatchNormalization, conv=FastConv2D):
    """1x1 -> grouped 3x3 (stride here) -> 1x1 (2 * filters), plus the shortcut, then ReLU."""
    prefix = f"stage{stage}_unit{unit}_"

    def layer(input_tensor):
        x = conv(filters, 1, name=prefix + "conv1", **_CONV)(input_tensor)
        x = bn(name=prefix + "bn1", **_BN)(x)
        x = keras.layers.Activation("relu", name=prefix + "relu1")(x)
        # Explicit symmetric padding, as sm: "same" would pad stride-2 convs bottom/right only.
        x = keras.layers.ZeroPadding2D(1, name=prefix + "pad2")(x)
        x = GroupedConv2D(filters, 3, groups=groups, strides=strides, name=prefix + "conv2",
                          **_CONV)(x)
        x = bn(name=prefix + "bn2", **_BN)(x)
        x = keras.layers.Activation("relu", name=prefix + "relu2")(x)
        x = conv(2 * filters, 1, name=prefix + "conv3", **_CONV)(x)
        x = bn(name=prefix + "bn3", **_BN)(x)
        shortcut = input_tensor
        if conv_shortcut:
            shortcut = conv(2 * filters, 1, strides=strides, name=prefix + "sc", **_CONV)(input_tensor)
            shortcut = bn(name=prefix + "sc_bn", **_BN)(shortcut)
        x = keras.layers.Add(name=prefix + "add")([x, shortcut])
        return keras.layers.Activation("relu", name=prefix + "relu")(x)

    return layer


def build_resnext(name: str, size: int | None, fused_bn: bool = True, fast_conv: bool = True) -> keras.Model:
    """ResNeXt backbone without top (randomly initialised), sm's layer names, GroupedConv2D;
    `fused_bn=False` / `fast_conv=False`: Keras' own BatchNormalization / Conv2D layers instead of
    ours (same weights)."""
    bn = FusedBatchNormalization if fused_bn else keras.layers.BatchNormalization
    conv = FastConv2D if fast_conv else keras.layers.Conv2D
    inputs = keras.Input((size, size, 3), name="data")
    x = bn(name="bn_data", scale=False, **_BN)(inputs)
    x = keras.layers.ZeroPadding2D(3, name="pad0")(x)
    x = conv(64, 7, strides=2, name="conv0", **_CONV)(x)
    x = bn(name="bn0", **_BN)(x)
    x = keras.layers.Activation("relu", name="relu0")(x)
    x = keras.layers.ZeroPadding2D(1, name="pooling0_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pooling0")(x)
    for stage, units in enumerate(_RESNEXT_UNITS[name], start=1):
        for unit in range(1, units + 1):
            # The first stage follows the max-pool, so it keeps the resolution.
            strides = 2 if unit == 1 and stage > 1 else 1
            x = resnext_bottleneck(128 * 2 ** (stage - 1), stage, unit, strides,
                                  groups=_RESNEXT_GROUPS, conv_shortcut=unit == 1, bn=bn, conv=conv)(x)
    return keras.Model(inputs, x, name=name)


# ---------------------------------------------------------------------------------------------
# segmentation_models
# ---------------------------------------------------------------------------------------------

def _sm():
    """segmentation_models on tf.keras (= Keras 3 here), imported on first use."""
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    import segmentation_models as sm

    if sm.framework() != "tf.keras":
        raise RuntimeError(f"segmentation_models uses the {sm.framework()!r} framework; salt_tf "
                           "needs 'tf.keras' (set SM_FRAMEWORK=tf.keras before importing it)")
    return sm


class _SmLayers:
    """The `layers` module that sm hands its builders, with our `FusedBatchNormalization` as
    `BatchNormalization` and our `FastConv2D` as `Conv2D` (each optional; same weights and names,
    faster kernels)."""

    def __init__(self, base, fused_bn: bool, fast_conv: bool):
        self._base = base
        self.BatchNormalization = FusedBatchNormalization if fused_bn else base.BatchNormalization
        self.Conv2D = FastConv2D if fast_conv else base.Conv2D

    def __getattr__(self, name):
        return getattr(self._base, name)


def build_sm_backbone(name: str, size: int | None, weights: str | os.PathLike | None = None,
                      fused_bn: bool = True, fast_conv: bool = True) -> keras.Model:
    """sm's own backbone without top, as `sm.Unet` builds it (Lambda-based ResNeXts), with
    `FusedBatchNormalization` and `FastConv2D` layers unless `fused_bn=False` / `fast_conv=False`
    (sm's plain Keras layers).

    `weights`: None, "imagenet" (sm downloads it) or a path that sm's builder loads itself.
    `size`: None builds a backbone for any input size (a multiple of 32).
    """
    _check_name(name)
    sm = _sm()
    layers = _SmLayers(sm._KERAS_LAYERS, fused_bn, fast_conv)
    return sm.Backbones.get_backbone(
        name, input_shape=(size, size, 3), include_top=False,
        weights=None if weights is None else str(weights),
        backend=sm._KERAS_BACKEND, layers=layers, models=sm._KERAS_MODELS, utils=sm._KERAS_UTILS)


def copy_sm_weights(sm_backbone: keras.Model, encoder: keras.Model) -> None:
    """Copy every weight of `sm_backbone` (sm's model) into `encoder` (ours, same name).

    Layers match by name; a GroupedConv2D takes the 32 kernels of sm's grouped conv that feeds the
    same block's `bn2`, concatenated in sm's group order.
    """
    group_kernels = _sm_group_kernels(sm_backbone)
    for layer in encoder.layers:
        if not layer.weights:
            continue
        if isinstance(layer, GroupedConv2D):
            if layer.name not in group_kernels:
                raise ValueError(f"{sm_backbone.name} has no grouped conv feeding the same BN as "
                                 f"our {layer.name}")
            values = [group_kernels[layer.name]]
        else:
            values = sm_backbone.get_layer(layer.name).get_weights()
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{layer.name}: sm's weights have shapes {[v.shape for v in values]}"
                             f", ours {expected}")
        layer.set_weights(values)


def _sm_group_kernels(sm_backbone: keras.Model) -> dict[str, np.ndarray]:
    """{'stageX_unitY_conv2': (3, 3, cin/G, cout) kernel} from sm's Lambda/Conv2D/Concatenate."""
    inbound = {cfg["name"]: _inbound_names(cfg["inbound_nodes"])
               for cfg in sm_backbone.get_config()["layers"]}
    kernels = {}
    for name, sources in inbound.items():
        if not name.endswith("_bn2"):
            continue
        (concat,) = sources
        if not isinstance(sm_backbone.get_layer(concat), keras.layers.Concatenate):
            continue  # a plain conv (ResNets): copied by name
        kernels[name[:-len("bn2")] + "conv2"] = np.concatenate(
            [sm_backbone.get_layer(conv).get_weights()[0] for conv in inbound[concat]], axis=-1)
    return kernels


def _inbound_names(node) -> list[str]:
    """Names of the layers feeding a layer, in argument order, from its serialized inbound nodes."""
    if isinstance(node, dict):
        if "keras_history" in node.get("config", {}):
            return [node["config"]["keras_history"][0]]
        return [name for value in node.values() for name in _inbound_names(value)]
    if isinstance(node, (list, tuple)):
        return [name for value in node for name in _inbound_names(value)]
    return []


def _feature_layers(name: str) -> tuple[str, ...]:
    return tuple(_sm().Backbones.get_feature_layers(name, n=4))


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def imagenet_weights_path(name: str) -> Path:
    """sm's ImageNet no-top weights file for `name`, downloaded into the Keras cache if missing.

    Same URL, file name, md5 and cache dir ($KERAS_HOME or ~/.keras, subdir "models") as sm.
    """
    _check_name(name)
    _sm()
    from classification_models.weights import WEIGHTS_COLLECTION

    (entry,) = [w for w in WEIGHTS_COLLECTION
                if w["model"] == name and w["dataset"] == "imagenet" and not w["include_top"]]
    cache_dir = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    target = cache_dir / "models" / entry["name"]
    try:
        path = keras.utils.get_file(entry["name"], entry["url"], cache_dir=str(cache_dir),
                                    cache_subdir="models", file_hash=entry["md5"],
                                    hash_algorithm="md5")
    # keras.utils.get_file raises a bare Exception for URL failures, ValueError for a bad hash.
    except Exception as err:
        raise FileNotFoundError(
            f"ImageNet weights for {name}: {target} is missing (or corrupt) and could not be "
            f"downloaded ({err}). Download {entry['url']} (md5 {entry['md5']}) and save it as "
            f"{target}; it is found there next time. Or pass weights=<path of that file>.") from err
    return Path(path)


def load_encoder_weights(encoder: keras.Model, name: str, path: str | os.PathLike) -> None:
    """Load a weights file (formats in the module docstring) into `encoder`, built for `name`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    kind = _weights_file_kind(path)
    if kind == "keras3" and not path.name.endswith(".weights.h5"):
        raise ValueError(f"{path}: a Keras 3 weights file must be named *.weights.h5 for "
                         "Keras to read it; rename it")
    has_groups = any(isinstance(layer, GroupedConv2D) for layer in encoder.layers)
    try:
        if kind == "keras3" and (not has_groups or _has_grouped_convs(path)):
            encoder.load_weights(path)  # saved from this encoder (or sm's identical ResNet)
        else:
            reader = _sm_reader(name, encoder.input_shape[1])
            reader.load_weights(path)  # what sm's builder does with a path
            copy_sm_weights(reader, encoder)
    except ValueError as err:
        first_line = str(err).strip().splitlines()[0]
        raise ValueError(f"{path}: these weights do not fit the {name} encoder (saved from "
                         f"another backbone?): {first_line}") from err


@functools.lru_cache(maxsize=2)
def _sm_reader(name: str, size: int | None) -> keras.Model:
    """sm's backbone, to read sm's weight files into: built once per process for a name and size
    (sm's ResNeXt50, 512 Lambda-sliced group convolutions, takes 10-20 s to build; every fold of a
    run loads the same file). Each load sets every weight of it or raises, so nothing of an earlier
    file can stay behind."""
    return build_sm_backbone(name, size)


def _weights_file_kind(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or "model_weights" in f:
                return "legacy"
            if "layers" in f:
                return "keras3"
    except OSError as err:
        raise ValueError(f"{path}: not an HDF5 weights file ({err})") from err
    raise ValueError(f"{path}: expected Keras weights (legacy .h5 with 'layer_names', or Keras 3 "
                     ".weights.h5 with a 'layers' group), found neither")


def _has_grouped_convs(path: Path) -> bool:
    """Keras 3 weight files name entries by class: ours hold 'grouped_conv2d*', sm's do not."""
    import h5py

    with h5py.File(path, "r") as f:
        return any(key.startswith("grouped_conv2d") for key in f["layers"])


# ---------------------------------------------------------------------------------------------
# The encoder
# ---------------------------------------------------------------------------------------------

def build_encoder(name: str, size: int | None, weights: str | os.PathLike | None = None,
                  fused_bn: bool = True, fast_conv: bool = True) -> keras.Model:
    """Encoder `name` for (size, size, 3) float images -> 5 feature maps, deepest first.

    `size=None` accepts any multiple of 32 (the layers and weights are the same at every size).
    `fused_bn=False` / `fast_conv=False` keep Keras' BatchNormalization / Conv2D layers (for
    comparisons; same weights).

    Outputs have strides `STRIDES` = (32, 16, 8, 4, 2): the backbone output, then sm's Unet skips.
    `weights`: None (random), "imagenet" or a weights file path (see the module docstring).
    """
    _check_name(name)
    _check_size(size)
    if name in _RESNEXT_UNITS:
        backbone = build_resnext(name, size, fused_bn=fused_bn, fast_conv=fast_conv)
    else:
        backbone = build_sm_backbone(name, size, fused_bn=fused_bn, fast_conv=fast_conv)
    skips = [backbone.get_layer(layer).output for layer in _feature_layers(name)]
    encoder = keras.Model(backbone.input, [backbone.output, *skips], name=f"{name}_encoder")
    if weights is None:
        return encoder
    if isinstance(weights, str) and weights == "imagenet":
        weights = imagenet_weights_path(name)
    elif not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None, 'imagenet' or a file path, got {weights!r}")
    load_encoder_weights(encoder, name, weights)
    return encoder


def _check_name(name: str) -> None:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known encoders: {', '.join(ENCODERS)}")


def _check_size(size: int | None) -> None:
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if size % 32:
        raise ValueError(f"{size} is not a multiple of 32 (the encoder's deepest stride); "
                         f"resize or pad tiles to {-(-size // 32) * 32}")
