"""The backbones segmentation-models (sm, through classification_models) builds, rebuilt from Keras 3
layers, layer for layer: the same names, classes, order and weights.

- ResNeXt (``build_resnext``), on every backend: sm makes every grouped 3x3 conv from 32 ``Lambda``
  slices + 32 ``Conv2D`` + ``Concatenate``, which neither loads back from a ``.keras`` file under
  Keras 3 nor trains fast on CPU; here one ``GroupedConv2D`` is each grouped conv.
- ResNet (``build_resnet``), for JAX and PyTorch: sm imports ``tensorflow.keras``, so on TensorFlow the
  ResNets stay sm's own (``encoders.build_sm_backbone``), elsewhere they are made here.

``salt_tf.model.encoders`` turns either into the U-Net's encoder and loads their weights.
"""
from __future__ import annotations

import keras

from salt_tf.model.layers import FastConv2D, FusedBatchNormalization, GroupedConv2D

# sm/classification_models ResNeXt: (units per stage), cardinality 32, width 4 in the first stage
# (ResNeXt-50 32x4d, Xie et al. 2017, table 1); ResNet: units per stage, sm's MODELS_PARAMS.
RESNEXT_UNITS = {"resnext50": (3, 4, 6, 3), "resnext101": (3, 4, 23, 3)}
RESNEXT_GROUPS = 32
RESNET_UNITS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3),
                "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}

# classification_models' settings, repeated so that ours are sm's layer for layer.
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
    for stage, units in enumerate(RESNEXT_UNITS[name], start=1):
        for unit in range(1, units + 1):
            # The first stage follows the max-pool, so it keeps the resolution.
            strides = 2 if unit == 1 and stage > 1 else 1
            x = resnext_bottleneck(128 * 2 ** (stage - 1), stage, unit, strides,
                                  groups=RESNEXT_GROUPS, conv_shortcut=unit == 1, bn=bn, conv=conv)(x)
    return keras.Model(inputs, x, name=name)


# ---------------------------------------------------------------------------------------------
# ResNet, layer for layer as classification_models builds it (for backends without TensorFlow)
# ---------------------------------------------------------------------------------------------

_RESNET_CONV = dict(kernel_initializer="he_uniform", use_bias=False, padding="valid")


def resnet_block(filters: int, stage: int, unit: int, strides: int, cut: str, bottleneck: bool,
                 bn=FusedBatchNormalization, conv=FastConv2D):
    """classification_models' pre-activation block: BN-ReLU first, the shortcut a 1x1 conv of that
    (``cut="post"``) or the input itself (``"pre"``); two 3x3 convs, or 1x1-3x3-1x1 (x4) with
    ``bottleneck``. Its layers are created in sm's order, so that Keras 3 weight files, which
    number layers by class in that order, fit both."""
    prefix = f"stage{stage}_unit{unit}_"

    def layer(input_tensor):
        x = bn(name=prefix + "bn1", **_BN)(input_tensor)
        x = keras.layers.Activation("relu", name=prefix + "relu1")(x)
        width = 4 * filters if bottleneck else filters
        shortcut = input_tensor
        if cut == "post":
            shortcut = conv(width, 1, strides=strides, name=prefix + "sc", **_RESNET_CONV)(x)
        if bottleneck:
            x = conv(filters, 1, name=prefix + "conv1", **_RESNET_CONV)(x)
            x = bn(name=prefix + "bn2", **_BN)(x)
            x = keras.layers.Activation("relu", name=prefix + "relu2")(x)
            x = keras.layers.ZeroPadding2D(1, name=prefix + "pad2")(x)
            x = conv(filters, 3, strides=strides, name=prefix + "conv2", **_RESNET_CONV)(x)
            x = bn(name=prefix + "bn3", **_BN)(x)
            x = keras.layers.Activation("relu", name=prefix + "relu3")(x)
            x = conv(width, 1, name=prefix + "conv3", **_RESNET_CONV)(x)
        else:
            x = keras.layers.ZeroPadding2D(1, name=prefix + "pad1")(x)
            x = conv(filters, 3, strides=strides, name=prefix + "conv1", **_RESNET_CONV)(x)
            x = bn(name=prefix + "bn2", **_BN)(x)
            x = keras.layers.Activation("relu", name=prefix + "relu2")(x)
            x = keras.layers.ZeroPadding2D(1, name=prefix + "pad2")(x)
            x = conv(filters, 3, name=prefix + "conv2", **_RESNET_CONV)(x)
        return keras.layers.Add(name=prefix + "add")([x, shortcut])

    return layer


def build_resnet(name: str, size: int | None, fused_bn: bool = True, fast_conv: bool = True) -> keras.Model:
    """sm's ResNet backbone without top (randomly initialised) from Keras 3 layers alone: the same
    layers, names, weights and outputs as ``build_sm_backbone(name, ...)``, without TensorFlow."""
    bn = FusedBatchNormalization if fused_bn else keras.layers.BatchNormalization
    conv = FastConv2D if fast_conv else keras.layers.Conv2D
    inputs = keras.Input((size, size, 3), name="data")
    x = bn(name="bn_data", scale=False, **_BN)(inputs)
    x = keras.layers.ZeroPadding2D(3, name="pad0")(x)
    x = conv(64, 7, strides=2, name="conv0", **_RESNET_CONV)(x)
    x = bn(name="bn0", **_BN)(x)
    x = keras.layers.Activation("relu", name="relu0")(x)
    x = keras.layers.ZeroPadding2D(1, name="pooling0_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pooling0")(x)
    bottleneck = name not in ("resnet18", "resnet34")
    for stage, units in enumerate(RESNET_UNITS[name], start=1):
        for unit in range(1, units + 1):
            strides = 2 if unit == 1 and stage > 1 else 1  # the first stage follows the max-pool
            x = resnet_block(64 * 2 ** (stage - 1), stage, unit, strides, "post" if unit == 1 else "pre",
                             bottleneck, bn=bn, conv=conv)(x)
    x = bn(name="bn1", **_BN)(x)
    x = keras.layers.Activation("relu", name="relu1")(x)
    return keras.Model(inputs, x, name=name)
