"""The U-Net: a segmentation-models encoder, our scSE decoder, a logits head.

Read top to bottom like the figure: gray tile -> three channels -> encoder features at strides
32, 16, 8, 4, 2 -> five upsampling blocks that merge the skips, each followed by scSE -> (optional
hypercolumn) -> one-channel logits at the input size (training can add auxiliary heads beside them:
``_auxiliary``, ``inference_model``).
"""
from __future__ import annotations

import keras
from keras import layers

from salt_tf.model.encoders import build_encoder
from salt_tf.model.layers import (
    SCSE,
    BilinearUpsampling2D,
    BroadcastLike,
    FastConv2D,
    FusedBatchNormalization,
    ReflectPad2D,
)

DECODER_FILTERS = (256, 128, 64, 32, 16)


def conv_bn_relu(filters: int, name: str, bn=FusedBatchNormalization, conv=FastConv2D):
    def block(x):
        x = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = bn(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    return block


def decoder_block(filters: int, stage: int, scse: bool, reduction: int, bn=FusedBatchNormalization, conv=FastConv2D):
    """Upsample x2, merge the skip (if any), two 3x3 conv-BN-ReLU, then scSE."""
    name = f"decoder_stage{stage}"

    def block(x, skip=None):
        x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
        if skip is not None:
            x = layers.Concatenate(name=f"{name}_concat")([x, skip])
        x = conv_bn_relu(filters, f"{name}a", bn, conv)(x)
        x = conv_bn_relu(filters, f"{name}b", bn, conv)(x)
        if scse:
            x = SCSE(reduction=reduction, name=f"{name}_scse")(x)
        return x

    return block


def light_decoder_block(filters: int, stage: int, scse: bool, reduction: int, bn=FusedBatchNormalization,
                        conv=FastConv2D):
    """A cheap block after the 1st-place solution's final decoder: a 1x1 conv-BN-ReLU brings the
    map to ``filters`` at its coarse resolution, nearest-neighbour upsampling doubles it (the same
    as convolving after upsampling, at a quarter of the cost), a 1x1 conv-BN-ReLU brings the skip
    (if any) to the same width, the two are added, then scSE. No 3x3 convolution: the encoder does
    the seeing, the decoder merges and upsamples. (The 1st place upsampled with a 2x2 transposed
    conv; on a CPU that model trained at 0.85-0.98x the default U-Net's step time, this one at
    0.73-0.82x: benchmarks/RESULTS.md, issue 20.)"""
    name = f"decoder_stage{stage}"

    def block(x, skip=None):
        x = conv(filters, 1, use_bias=False, name=f"{name}_conv")(x)
        x = bn(name=f"{name}_bn")(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
        if skip is not None:
            s = conv(filters, 1, use_bias=False, name=f"{name}_skip_conv")(skip)
            s = bn(name=f"{name}_skip_bn")(s)
            s = layers.Activation("relu", name=f"{name}_skip_relu")(s)
            x = layers.Add(name=f"{name}_add")([x, s])
        if scse:
            x = SCSE(reduction=reduction, name=f"{name}_scse")(x)
        return x

    return block


# Decoder blocks by name (``Config.decoder``) and their default widths, deepest stage first.
DECODERS = {"unet": decoder_block, "light": light_decoder_block}
DEFAULT_WIDTHS = {"unet": DECODER_FILTERS, "light": (64, 64, 64, 64, 64)}


def _hypercolumn(outputs: list) -> keras.KerasTensor:
    """Every decoder stage, upsampled to full size and concatenated (Hariharan et al. 2015)."""
    factors = [2 ** (len(outputs) - 1 - i) for i in range(len(outputs))]
    return layers.Concatenate(name="hypercolumn")([
        BilinearUpsampling2D(f, name=f"hypercolumn_up{i}")(o) if f > 1 else o
        for i, (o, f) in enumerate(zip(outputs, factors))
    ])


def _auxiliary(deepest, stages: list, logits, supervision: bool, empty_head: bool, conv=FastConv2D):
    """The training-only heads as one float32 map beside the logits (None: no head), after
    tugstugi/pytorch-saltnet: the image head's logit (is there salt in the tile?) from the encoder's
    deepest features, the same at every pixel; then deep supervision, a 1x1-conv logit map of each
    decoder stage but the last, upsampled to the logits' size (nearest neighbour, chosen when Keras'
    bilinear upsampling failed on the maps of unknown size that progressive resizing trains;
    ``BilinearUpsampling2D`` would work now, but changes the heads' training and is not measured).
    Their losses: ``salt_tf.model.losses.WithAuxiliary``."""
    maps = []
    if empty_head:
        pooled = layers.GlobalAveragePooling2D(name="empty_pool")(deepest)
        logit = layers.Dense(1, dtype="float32", name="empty_logit")(pooled)
        maps.append(BroadcastLike(dtype="float32", name="empty_map")([logit, logits]))
    if supervision:
        for stage, x in enumerate(stages):
            m = conv(1, 1, dtype="float32", name=f"supervision{stage}_logits")(x)
            factor = 2 ** (len(stages) - stage)  # stage 0 is at 1/16 of the logits' size
            maps.append(layers.UpSampling2D(factor, dtype="float32", name=f"supervision{stage}_up")(m))
    if len(maps) < 2:
        return maps[0] if maps else None
    return layers.Concatenate(dtype="float32", name="auxiliary")(maps)


def inference_model(model: keras.Model) -> keras.Model:
    """What is exported and predicts: ``model`` itself, or, built with auxiliary heads, a model of
    the same layers and weights that gives its logits alone."""
    if "with_auxiliary" not in {layer.name for layer in model.layers}:
        return model
    return keras.Model(model.inputs, model.get_layer("with_auxiliary").input[0], name=model.name)


def _pad_to(tile: int, size: int | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Reflection padding of a tile out to ``size``: ((top, bottom), (left, right))."""
    if size is None or not tile < size <= 2 * tile - 1:
        raise ValueError(f"a {tile}x{tile} tile reflects out to a size from {tile + 1} to {2 * tile - 1}, not {size}")
    before = (size - tile) // 2
    return (before, size - tile - before), (before, size - tile - before)


def _name(encoder: str, scse: bool, hypercolumn: bool, decoder: str, tile: int | None) -> str:
    return (f"unet_{encoder}" + ("_scse" if scse else "") + ("_hypercolumn" if hypercolumn else "")
            + ("" if decoder == "unet" else f"_{decoder}") + ("" if tile is None else "_pad"))


def _output(logits, auxiliary, pad):
    """The logits (cropped back to the tile with ``--fit pad``), with the auxiliary map packed after
    them as more channels if there is one: channel 0 is always the logits."""
    if pad is not None:
        logits = layers.Cropping2D(pad, dtype="float32", name="to_tile")(logits)
        if auxiliary is not None:
            auxiliary = layers.Cropping2D(pad, dtype="float32", name="to_tile_auxiliary")(auxiliary)
    if auxiliary is None:
        return logits
    return layers.Concatenate(dtype="float32", name="with_auxiliary")([logits, auxiliary])


def _check_unet(size, decoder, decoder_filters) -> tuple[int, ...]:
    """``build_unet``'s arguments checked; returns the decoder's five widths."""
    if size is not None and size % 32:
        raise ValueError(
            f"size {size} is not a multiple of 32: the encoder halves it five times. "
            "Tiles are 101x101; resize them to 128 (or 192, 256), as the pipeline does."
        )
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; known decoders: {', '.join(DECODERS)}")
    decoder_filters = tuple(DEFAULT_WIDTHS[decoder] if decoder_filters is None else decoder_filters)
    if len(decoder_filters) != 5 or not all(isinstance(f, int) and f > 0 for f in decoder_filters):
        raise ValueError(f"decoder_filters needs 5 positive widths (one per upsampling), got {decoder_filters}")
    return decoder_filters


def build_unet(
    encoder: str = "resnet34",
    size: int | None = 128,
    encoder_weights=None,
    scse: bool = True,
    hypercolumn: bool = False,
    decoder_filters: tuple[int, ...] | None = None,
    decoder: str = "unet",
    scse_reduction: int = 16,
    dropout: float = 0.0,
    bn_momentum: float = 0.9,
    fused_bn: bool = True,
    fast_conv: bool = True,
    tile: int | None = None,
    supervision: bool = False,
    empty_head: bool = False,
) -> keras.Model:
    """U-Net on a segmentation-models encoder.

    Input: (size, size, 1) float tiles scaled to [0, 1]. The tile is multiplied by 255 and copied
    to three channels, which is exactly what an ImageNet ResNet of segmentation-models sees for a
    gray photo (its own first layer normalises raw 0-255 pixels). Output: (size, size, 1) float32
    logits (no sigmoid: the Lovasz hinge works on logits; apply a sigmoid for probabilities).
    ``size``: a multiple of 32 (five halvings); None makes a model for any multiple of 32, with the
    same layers and weights (progressive resizing trains it, then export copies its weights).
    ``bn_momentum`` is set on every BatchNormalization layer, the encoder's too: 0.9 is PyTorch's
    default (0.1 there), which the original solution trained with; Keras' 0.99 leaves the moving
    statistics far from the data for the first few hundred steps, so short runs validate badly.
    ``fused_bn`` / ``fast_conv`` (defaults): every batch norm / convolution is our
    ``FusedBatchNormalization`` / ``FastConv2D`` (faster kernels; Keras' weights and results).
    ``decoder`` names the block (``DECODERS``: "unet", two 3x3 convs on the upsampled map and its
    skip concatenated; "light", 1x1 convs on the map and on its skip, added) and
    ``decoder_filters`` its five widths, deepest first (default ``DEFAULT_WIDTHS[decoder]``).
    ``tile`` (``--fit pad``): the model takes (tile, tile, 1) tiles, reflects them out to ``size``
    and crops its logits back to (tile, tile, 1).
    ``supervision`` and ``empty_head`` add training-only heads (``_auxiliary``) as channels after
    the logits; ``inference_model`` drops them.
    """
    decoder_filters = _check_unet(size, decoder, decoder_filters)
    tiles = keras.Input((tile or size, tile or size, 1), name="tile")
    pad = None if tile is None else _pad_to(tile, size)
    pixels = layers.Rescaling(255.0, name="to_pixels")(tiles if pad is None else ReflectPad2D(pad, name="reflect_pad")(tiles))
    rgb = layers.Concatenate(name="gray_to_rgb")([pixels, pixels, pixels])
    bn = FusedBatchNormalization if fused_bn else layers.BatchNormalization
    conv = FastConv2D if fast_conv else layers.Conv2D
    features = build_encoder(encoder, size, weights=encoder_weights, fused_bn=fused_bn, fast_conv=fast_conv)(rgb)
    x, skips = features[0], list(features[1:]) + [None]

    outputs = []
    for stage, (filters, skip) in enumerate(zip(decoder_filters, skips)):
        x = DECODERS[decoder](filters, stage, scse, scse_reduction, bn, conv)(x, skip)
        outputs.append(x)
    if hypercolumn:
        x = _hypercolumn(outputs)
    if dropout:
        x = layers.SpatialDropout2D(dropout, name="head_dropout")(x)
    # float32 logits even under a mixed-precision policy: the losses need them.
    logits = conv(1, 3, padding="same", dtype="float32", name="logits")(x)
    auxiliary = _auxiliary(features[0], outputs[:-1], logits, supervision, empty_head, conv)
    model = keras.Model(tiles, _output(logits, auxiliary, pad), name=_name(encoder, scse, hypercolumn, decoder, tile))
    for layer in all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    return model


def all_layers(model):
    """Every layer of ``model``, those of the models nested in it too (the encoder's)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def export_saved_model(model: keras.Model, path) -> None:
    """The SavedModel that ``model.export(path)`` writes (a ``serve`` endpoint taking float32 tiles
    (N, size, size, 1), also the ``serving_default`` signature; the model's variables), traced once:
    Keras' exporter traces the model four times, 2.5x the time (4.8 s against 2.0 s for a resnet18
    U-Net at 32)."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=model.inputs[0].name)  # as Keras names it
    archive = tf.Module()
    archive.model_variables = list(model.variables)  # tracked: saved with the graph, owned by the loaded object
    archive.serve = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    tf.saved_model.save(archive, str(path), signatures={"serving_default": archive.serve})
