"""Encoders: the down path of the U-Net, from segmentation_models' ImageNet backbones.

`build_encoder(name, size)` returns a `keras.Model` mapping a (size, size, 3) image to five feature
maps, deepest first: [stride 32 (backbone output), stride 16, stride 8, stride 4, stride 2]. The
four skips are the layers sm's own Unet taps (`sm.Backbones.get_feature_layers(name, n=4)`).

The backbones (``salt_tf.model.backbones``): on TensorFlow the ResNets are sm's own, the path the
design names; on JAX and PyTorch, where sm (which imports ``tensorflow.keras``) cannot be, the same
ResNets made from Keras 3 layers (tested equal: layers, weights, outputs). ResNeXts are ours on every
backend, sm's layer for layer with one `GroupedConv2D` per grouped conv; `copy_sm_weights` moves
weights (e.g. sm's ImageNet ones) from sm's model into ours.

Weights (`build_encoder(..., weights=...)`):
  None        random init.
  "imagenet"  sm's released file (same URL, file name, md5 and Keras cache dir as sm uses);
              without network this raises FileNotFoundError naming the URL and where to put it.
  a path      an HDF5 weights file, either
              - legacy Keras `.h5` of the sm backbone: the released `*_imagenet_1000_no_top.h5`
                files, or Keras 2 `save_weights("x.h5")` of an sm backbone (read here with h5py:
                layers by name, sm's unnamed group convolutions in the file's order), or
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

from salt_tf.model.backbones import RESNET_UNITS, RESNEXT_UNITS, build_resnet, build_resnext
from salt_tf.model.layers import FastConv2D, FusedBatchNormalization, GroupedConv2D

STRIDES = (32, 16, 8, 4, 2)

ENCODERS = tuple(RESNET_UNITS) + tuple(RESNEXT_UNITS)
# The layers sm's Unet taps for its four skips, deepest first (`sm.Backbones.get_feature_layers(name,
# n=4)`: the same for every encoder here; a test compares them with sm's own).
FEATURE_LAYERS = ("stage4_unit1_relu1", "stage3_unit1_relu1", "stage2_unit1_relu1", "relu0")
# sm's released ImageNet files without the classifier (classification_models.weights, repeated so
# that backends without TensorFlow, where sm cannot be imported, find the same files).
_RELEASES = "https://github.com/qubvel/classification_models/releases/download/0.0.1/"
IMAGENET_MD5 = {
    "resnet18": "318e3ac0cd98d51e917526c9f62f0b50", "resnet34": "8caaa0ad39d927cb8ba5385bf945d582",
    "resnet50": "db3b217156506944570ac220086f09b6", "resnet101": "1016e7663980d5597a4e224d915c342d",
    "resnet152": "5867b94098df4640918941115db93734", "resnext50": "7ade5c8aac9194af79b1724229bdaa50",
    "resnext101": "91fe0126320e49f6ee607a0719828c7e",
}


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




# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def imagenet_release(name: str) -> dict:
    """sm's released no-top ImageNet file of ``name``: its file name, URL and md5."""
    file = f"{name}_imagenet_1000_no_top.h5"
    return {"name": file, "url": _RELEASES + file, "md5": IMAGENET_MD5[name]}


def imagenet_weights_path(name: str) -> Path:
    """sm's ImageNet no-top weights file for `name`, downloaded into the Keras cache if missing.

    Same URL, file name, md5 and cache dir ($KERAS_HOME or ~/.keras, subdir "models") as sm.
    """
    _check_name(name)
    entry = imagenet_release(name)
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
        if kind == "legacy":
            _load_legacy(encoder, path)
        elif not has_groups or _has_grouped_convs(path):
            encoder.load_weights(path)  # saved from this encoder (or sm's identical ResNet)
        elif keras.backend.backend() != "tensorflow":
            raise ValueError(f"{path}: a Keras 3 weights file of sm's own ResNeXt (its group convolutions "
                             "sliced by Lambda layers) is read through segmentation_models, which needs "
                             "TensorFlow; save the weights from build_encoder's encoder there, or use the "
                             "legacy .h5 file")
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


def _legacy_layers(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, weights) of every layer of a legacy Keras HDF5 file that has weights, in the
    file's order: ``save_weights`` files hold them at the top, ``model.save`` files under
    ``model_weights``."""
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        found = []
        for layer in map(text, root.attrs["layer_names"]):
            group = root[layer]
            names = [text(n) for n in group.attrs.get("weight_names", [])]
            if names:
                found.append((layer, [np.asarray(group[n]) for n in names]))
        return found


def _load_legacy(encoder: keras.Model, path: Path) -> None:
    """Set every weight of ``encoder`` from a legacy file of sm's backbone (``_legacy_layers``):
    layers by name; each GroupedConv2D from the next ``groups`` unnamed convolutions of the file
    (sm slices every grouped conv into that many, in order), their kernels concatenated."""
    stored = _legacy_layers(path)
    by_name = dict(stored)
    ours = [layer for layer in encoder.layers if layer.weights]
    names = {layer.name for layer in ours}
    sliced = iter([weights for layer, weights in stored if layer not in names])
    for layer in ours:
        if isinstance(layer, GroupedConv2D):
            parts = [next(sliced, None) for _ in range(layer.groups)]
            if any(part is None or len(part) != 1 for part in parts):
                raise ValueError(f"{layer.name}: the file has no {layer.groups} convolutions of a grouped conv left")
            values = [np.concatenate([part[0] for part in parts], axis=-1)]
        elif layer.name in by_name:
            values = by_name[layer.name]
        else:
            raise ValueError(f"the file has no layer {layer.name!r}")
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{layer.name}: the file's weights have shapes {[v.shape for v in values]}, "
                             f"ours {expected}")
        layer.set_weights(values)
    if next(sliced, None) is not None:
        raise ValueError("the file holds convolutions that no layer of this encoder takes")


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
    if name in RESNEXT_UNITS:
        backbone = build_resnext(name, size, fused_bn=fused_bn, fast_conv=fast_conv)
    elif keras.backend.backend() == "tensorflow":
        backbone = build_sm_backbone(name, size, fused_bn=fused_bn, fast_conv=fast_conv)
    else:  # sm imports tensorflow.keras: the same backbone from Keras 3 layers
        backbone = build_resnet(name, size, fused_bn=fused_bn, fast_conv=fast_conv)
    skips = [backbone.get_layer(layer).output for layer in FEATURE_LAYERS]
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
