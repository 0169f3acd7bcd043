"""Custom Keras layers of the decoder. Each is registered and has get_config, so saved models load
back without custom-object plumbing."""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="salt_tf")
class SCSE(layers.Layer):
    """Concurrent spatial and channel squeeze & excitation (Roy et al., arXiv 1803.02579).

    cSE: global average pool -> 1x1 conv to C/r -> ReLU -> 1x1 conv to C -> sigmoid, a gate per
    channel. sSE: 1x1 conv to one channel -> sigmoid, a gate per pixel. Output ``x*cSE + x*sSE``,
    as in the paper's "concurrent" variant and the original solution. r = 16 is the paper's choice.
    """

    def __init__(self, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("SCSE needs a known number of channels")
        hidden = max(1, channels // self.reduction)
        self.squeeze = layers.Dense(hidden, activation="relu", name="cse_squeeze")
        self.excite = layers.Dense(channels, activation="sigmoid", name="cse_excite")
        self.spatial = layers.Conv2D(1, 1, activation="sigmoid", name="sse_conv")
        # A 1x1 conv on a pooled 1x1 map is a Dense layer on the pooled vector.
        self.squeeze.build((input_shape[0], channels))
        self.excite.build((input_shape[0], hidden))
        self.spatial.build(input_shape)

    def call(self, x):
        pooled = ops.mean(x, axis=(1, 2))
        channel_gate = self.excite(self.squeeze(pooled))[:, None, None, :]
        spatial_gate = self.spatial(x)
        return x * channel_gate + x * spatial_gate

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
