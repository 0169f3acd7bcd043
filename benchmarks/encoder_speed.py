"""Training-step speed of the encoders, side by side in one process.

A step is forward + backward + SGD update of an encoder with a minimal head (1x1 conv on the
deepest features, mean of its output as the loss), traced with tf.function and no XLA: what
`model.fit` does on a CPU-only machine (Keras turns jit_compile="auto" off there). The runs are
interleaved (one step of each encoder per round) so that load from other processes on a shared
machine hits all encoders alike; ratios are taken round by round (median reported) and between
the fastest rounds.

    python benchmarks/encoder_speed.py                    # 128x128, batch 16, 10 rounds
    python benchmarks/encoder_speed.py --rounds 2 --encoders resnet18 --size 64 --batch-size 2   # seconds
    python benchmarks/encoder_speed.py --rounds 20 --encoders resnet18,resnet34,resnext50

Encoder names: anything `salt_tf.model.encoders.build_encoder` knows, plus `<name>_sm` for sm's own
backbone (for ResNeXts: the Lambda/slice grouped convs).
"""
from __future__ import annotations

import time

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np
import tensorflow as tf

from salt_tf.model import encoders, layers


def build(name: str, size: int) -> keras.Model:
    if name.endswith("_sm"):
        backbone = encoders.build_sm_backbone(name[:-3], size)
        return keras.Model(backbone.input, backbone.output, name=name)
    return encoders.build_encoder(name, size)


def make_step(encoder: keras.Model, seed: int):
    """tf.function training step of `encoder` + a 1x1 conv head, SGD."""
    deepest = encoder.outputs[0] if isinstance(encoder.outputs, list) else encoder.output
    head = keras.layers.Conv2D(1, 1, kernel_initializer=keras.initializers.GlorotUniform(seed))
    head.build(deepest.shape)
    variables = encoder.trainable_variables + head.trainable_variables
    optimizer = keras.optimizers.SGD(learning_rate=1e-3)
    optimizer.build(variables)

    @tf.function(jit_compile=False)
    def step(images):
        with tf.GradientTape() as tape:
            features = encoder(images, training=True)
            features = features[0] if isinstance(features, (list, tuple)) else features
            loss = tf.reduce_mean(head(features))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def grouped_conv_path() -> str:
    grouped = ("TF grouped Conv2D (oneDNN/cuDNN)" if layers._tf_grouped_conv_trains()
               else "one conv per group (no TF grouped-conv gradients)")
    return f"GroupedConv2D path: {grouped}"


def main(argv=None) -> None:
    parser = _bench.parser(__doc__, rounds=10, batch_size=16)
    parser.add_argument("--encoders", default="resnet34,resnext50,resnext50_sm")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per encoder")
    parser.add_argument("--baseline", default="resnet34")
    args = parser.parse_args(argv)
    names = args.encoders.split(",")
    if args.baseline not in names:
        parser.error(f"--baseline {args.baseline} is not among --encoders {args.encoders}")

    _bench.header(grouped_conv_path())
    print(f"input {args.size}x{args.size}x3, batch {args.batch_size}, {args.rounds} interleaved rounds "
          f"after {args.warmup} warm-up steps; tf.function without XLA; SGD", flush=True)

    images = tf.constant(np.random.default_rng(0).uniform(
        0, 255, (args.batch_size, args.size, args.size, 3)).astype("float32"))
    steps = {}
    for name in names:
        start = time.perf_counter()
        encoder = build(name, args.size)
        steps[name] = make_step(encoder, seed=0)
        built = time.perf_counter() - start
        for _ in range(args.warmup):
            steps[name](images).numpy()
        print(f"  {name}: {len(encoder.layers)} layers, {encoder.count_params() / 1e6:.1f}M "
              f"params, build {built:.1f}s, build+trace+warm-up "
              f"{time.perf_counter() - start:.1f}s", flush=True)

    times = _bench.interleave(
        {name: _bench.seconds(lambda step=steps[name]: step(images).numpy()) for name in names},
        args.rounds)

    # Per-round ratios cancel load that drifts between rounds; the ratio of the fastest rounds
    # is what a quiet machine would show.
    base = np.asarray(times[args.baseline])
    print(f"\n{'encoder':<16}{'ms/step':>9}{'ms/image':>10}{'min ms/step':>13}"
          f"{'ratio (median of rounds)':>26}{'ratio of mins':>15}")
    for name in names:
        t = np.asarray(times[name])
        print(f"{name:<16}{1000 * np.median(t):>9.0f}{1000 * np.median(t) / args.batch_size:>10.1f}"
              f"{1000 * t.min():>13.0f}{np.median(t / base):>25.2f}x{t.min() / base.min():>14.2f}x")
    print(f"(ratios are to {args.baseline}; ms/step and ms/image are medians over rounds)")


if __name__ == "__main__":
    main()
