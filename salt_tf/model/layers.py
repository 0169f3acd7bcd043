"""Custom Keras layers: scSE (decoder), a fused batch norm, a convolution with a faster backward
pass, the grouped convolution (encoders), the reflection padding of ``--fit pad`` and the image
head's broadcast. Each is registered and has get_config where it has settings, so saved models
load back without custom-object plumbing."""
from __future__ import annotations

import functools

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
        # The gates in the layer's own precision, not the global one: a model saved under a mixed
        # policy and loaded under another (predict.py, segment.py) would else multiply bfloat16 by float32.
        policy = self.dtype_policy
        self.squeeze = layers.Dense(hidden, activation="relu", name="cse_squeeze", dtype=policy)
        self.excite = layers.Dense(channels, activation="sigmoid", name="cse_excite", dtype=policy)
        self.spatial = layers.Conv2D(1, 1, activation="sigmoid", name="sse_conv", dtype=policy)
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


@functools.cache
def _tf_grouped_conv_trains(dtype: str = "float32") -> bool:
    """Whether TensorFlow's own grouped Conv2D has gradients (for `dtype`) on the default device.

    It has with oneDNN (TF's default on x86 Linux) and cuDNN; the plain Eigen CPU kernels raise
    "Gradients for grouped convolutions are not supported on CPU" (e.g. TF_ENABLE_ONEDNN_OPTS=0).
    """
    import tensorflow as tf

    # The two gradient kernels are called directly: a GradientTape opened under init_scope records
    # nothing, so a taped probe would always report True.
    with tf.init_scope():  # run eagerly even if first asked while a tf.function is tracing
        x, kernel = tf.ones((1, 3, 3, 4), dtype), tf.ones((3, 3, 2, 4), dtype)
        upstream = tf.ones((1, 1, 1, 4), dtype)
        strides = [1, 1, 1, 1]
        try:
            tf.raw_ops.Conv2DBackpropInput(input_sizes=x.shape, filter=kernel,
                                           out_backprop=upstream, strides=strides, padding="VALID")
            tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=kernel.shape,
                                            out_backprop=upstream, strides=strides,
                                            padding="VALID")
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.NotFoundError):
            return False
    return True


class _PerGroupInitializer:
    """Draw each group's (kh, kw, cin/G, cout/G) block separately, as sm's 32 Conv2D layers do:
    fan-in and fan-out are then those of one group, not a G times too large fan-out."""

    def __init__(self, initializer, groups: int):
        self.initializer = keras.initializers.get(initializer)
        self.groups = groups

    def __call__(self, shape, dtype=None):
        *window, cin, cout = shape
        block = (*window, cin, cout // self.groups)
        config = self.initializer.get_config()
        seed = config.get("seed")
        blocks = []
        for g in range(self.groups):
            # A fresh instance per group: Keras 3 initializers repeat their values when called
            # twice. An int seed is offset per group so a seeded layer stays reproducible.
            if isinstance(seed, int):
                config["seed"] = seed + g
            blocks.append(type(self.initializer).from_config(config)(block, dtype=dtype))
        return keras.ops.concatenate(blocks, axis=-1)


@keras.saving.register_keras_serializable(package="salt_tf")
class GroupedConv2D(keras.layers.Layer):
    """2D convolution in `groups` independent channel groups (ResNeXt's cardinality).

    The kernel has shape (kh, kw, in_channels // groups, filters); output channels
    [g * filters // groups, (g + 1) * filters // groups) see only input group g. That is the layout
    of `keras.layers.Conv2D(groups=...)` and of sm's 32 per-group kernels concatenated on the
    last axis, so weights move between the three unchanged.

    Why not `keras.layers.Conv2D(groups=...)`: Keras' TF backend runs every grouped conv in its
    own XLA cluster (TF's Eigen CPU kernels lack grouped gradients), and XLA's CPU grouped conv is
    ~250x slower here than TF's oneDNN grouped kernel. So `call` uses that TF kernel directly when
    it has gradients (`_tf_grouped_conv_trains`), else one conv per group (sm's construction, ~5x
    slower); other Keras backends get `keras.ops.conv`, which handles groups natively. Measured
    alternatives (depthwise conv + sum, patches + batched matmul, block-diagonal dense kernels)
    were all slower; see benchmarks/encoder_speed.py for the whole-encoder comparison.
    Caveat: under `jit_compile=True` on a CPU the TF kernel becomes XLA's slow grouped conv again
    (Keras leaves jit_compile off on CPU-only machines by default).
    """

    def __init__(self, filters: int, kernel_size, groups: int, strides=1, padding: str = "valid",
                 use_bias: bool = False, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if filters % groups:
            raise ValueError(f"{self.name}: filters={filters} is not divisible by groups={groups}")
        if padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', got {padding!r}")
        self.filters = filters
        self.kernel_size = _pair(kernel_size)
        self.groups = groups
        self.strides = _pair(strides)
        self.padding = padding
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(f"{self.name}: input channels ({channels}) must be known and "
                             f"divisible by groups={self.groups}")
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=_PerGroupInitializer(self.kernel_initializer, self.groups))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow":
            outputs = keras.ops.conv(inputs, self.kernel, self.strides, self.padding)
        elif _tf_grouped_conv_trains(keras.backend.standardize_dtype(inputs.dtype)):
            import tensorflow as tf

            # Not keras.ops.conv: it would wrap this op in a (slow on CPU) XLA cluster.
            outputs = tf.nn.conv2d(inputs, keras.ops.cast(self.kernel, inputs.dtype),
                                   self.strides, self.padding.upper())
        else:
            outputs = self._call_per_group(inputs)
        if self.use_bias:
            outputs = keras.ops.add(outputs, keras.ops.cast(self.bias, outputs.dtype))
        return outputs

    def _call_per_group(self, inputs):
        cin = self.kernel.shape[-2]
        cout = self.filters // self.groups
        return keras.ops.concatenate([
            keras.ops.conv(inputs[..., g * cin:(g + 1) * cin],
                           self.kernel[..., g * cout:(g + 1) * cout],
                           self.strides, self.padding)
            for g in range(self.groups)], axis=-1)

    def compute_output_shape(self, input_shape):
        batch, *spatial, _ = input_shape
        out = []
        for size, k, s in zip(spatial, self.kernel_size, self.strides):
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append(-(-size // s))
            else:
                out.append((size - k) // s + 1)
        return (batch, *out, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "groups": self.groups,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


@keras.saving.register_keras_serializable(package="salt_tf")
class ReflectPad2D(layers.Layer):
    """Pad (N, H, W, C) maps by reflection (the edge pixel not repeated, as ``np.pad(mode="reflect")``):
    ``padding`` is ((top, bottom), (left, right)), each less than the side it reflects."""

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(p) for p in side) for side in padding)

    def call(self, x):
        return ops.pad(x, ((0, 0), *self.padding, (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (top, bottom), (left, right) = self.padding
        return (n, None if h is None else h + top + bottom, None if w is None else w + left + right, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="salt_tf")
class BilinearUpsampling2D(layers.Layer):
    """Keras' ``UpSampling2D(factor, interpolation="bilinear")`` on maps of any size: Keras' layer
    cannot trace on maps of unknown size (the any-size model that progressive resizing trains)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow":  # JAX and PyTorch trace with the map's own size
            shape = keras.ops.shape(inputs)
            resized = keras.ops.image.resize(inputs, (shape[1] * self.factor, shape[2] * self.factor),
                                             interpolation="bilinear")
            return keras.ops.cast(resized, inputs.dtype)
        import tensorflow as tf

        shape = tf.shape(inputs)
        resized = tf.image.resize(inputs, [shape[1] * self.factor, shape[2] * self.factor], method="bilinear")
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.factor, None if w is None else w * self.factor, c)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="salt_tf")
class BroadcastLike(layers.Layer):
    """One value per image, (N, C), spread over the pixels of a map ``like``, (N, H, W, ·):
    (N, H, W, C). The image head's logit travels with the pixel logits this way (one output)."""

    def call(self, inputs):
        values, like = inputs
        shape = ops.shape(like)
        return ops.broadcast_to(values[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(values)[-1]))

    def compute_output_shape(self, input_shape):
        values, like = input_shape
        return (*like[:3], values[-1])


def _backprop_input_as_forward_conv(dy, kernel, padding: str):
    """``Conv2DBackpropInput`` of a stride-1 convolution, written as the forward convolution of the
    output's gradient ``dy`` with the kernel flipped and its channels swapped (``dy`` padded out to
    a full convolution for "VALID"). The same numbers; on CPU, oneDNN's forward kernel is 1.5-2x
    faster than its backprop-input kernel on a 3x3 map's gradient, and 10-40x on the deep, few-pixel
    maps of small tiles (512 channels at 1x1 or 2x2: benchmarks/RESULTS.md, issue 20)."""
    import tensorflow as tf

    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
    if padding == "VALID":
        kh, kw = kernel.shape[0], kernel.shape[1]
        dy = tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
    return tf.nn.conv2d(dy, flipped, 1, padding)


@keras.saving.register_keras_serializable(package="salt_tf")
class FastConv2D(layers.Conv2D):
    """Keras' Conv2D (same weights, outputs and config) whose gradient with respect to its input
    is computed by a forward convolution (``_backprop_input_as_forward_conv``) where that is exact:
    stride 1, no dilation, an odd kernel, "valid" or "same" padding, channels last, TensorFlow.
    Any other setting takes Keras' own path."""

    def _fast_backprop(self) -> bool:
        return (tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1) and self.groups == 1
                and all(k % 2 for k in self.kernel_size) and self.data_format == "channels_last"
                and keras.backend.backend() == "tensorflow")

    def convolution_op(self, inputs, kernel):
        if not self._fast_backprop():
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        padding = self.padding.upper()

        @tf.custom_gradient
        def conv(x, w):
            def grad(dy):
                dw = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                                     strides=[1, 1, 1, 1], padding=padding)
                return _backprop_input_as_forward_conv(dy, w, padding), dw

            return tf.nn.conv2d(x, w, 1, padding), grad

        return conv(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))
