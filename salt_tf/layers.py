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


@keras.saving.register_keras_serializable(package="salt_tf")
class FusedBatchNormalization(layers.BatchNormalization):
    """``BatchNormalization`` computed by TensorFlow's fused kernel, same weights and results.

    Keras 3's layer normalises with a dozen separate ops, and under a mixed-precision policy it
    casts every bfloat16 activation to float32 and back (keras/src/layers/normalization/
    batch_normalization.py). TensorFlow's ``FusedBatchNormV3`` does it in one op on the bfloat16
    tensor (float32 statistics inside), and TF's graph optimiser then fuses it with the ReLU that
    follows; its gradient is one op too. On this project's 2-core CPU that took the ResNet34 U-Net's
    non-convolution ops from 25-30% of the bfloat16 training step's op time to 15-19%, and the step
    to 0.87x (benchmarks/unet_speed.py compares the two; benchmarks/RESULTS.md). The moving
    statistics follow Keras' rule, with the biased batch variance, so a model trains, saves and
    loads as with the Keras layer (the same numbers up to float round-off).

    The fused kernel covers what every layer of this project's model is: 4-D channels-last input,
    no mask, no renorm, TensorFlow backend. Anything else takes Keras' own code path.
    """

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis % 4 == 3  # channels last
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = self.gamma if self.scale else tf.ones_like(self.moving_mean)
        beta = self.beta if self.center else tf.zeros_like(self.moving_mean)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            # The kernel returns the unbiased (Bessel-corrected) variance; Keras averages the
            # biased one into moving_variance.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, data_format="NHWC", is_training=False)
        return outputs

