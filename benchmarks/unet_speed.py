"""Training step time of the full U-Net: precisions, batch norms, encoders, input sizes (issues 3, 11).

Side by side in one process, interleaved rounds (the host's own speed drifts by half over minutes,
so only ratios within one run mean much), synthetic batches, SGD + BCE, ``train_on_batch``:

    python benchmarks/unet_speed.py [--rounds 5] [--steps 3] [--batch-size 16] [--variants all|issue3|decoder|conv]

Each variant is one model: encoder, scSE or not, input size, float32 or mixed_bfloat16, Keras'
BatchNormalization or ours (``FusedBatchNormalization``, the default in salt_tf), the decoder
(``--decoder`` and ``--decoder-filters``; the default U-Net decoder when not named), and Keras'
Conv2D or ours (``FastConv2D``, the default; "kerasConv" in a variant's name when not). Printed
per variant: ms per training tile (median over rounds), the rounds, the ratio to the first variant
of the same precision, and the achieved GFLOP/s: the forward pass's floating-point operations
counted from the model's graph by TensorFlow's profiler (a multiply-add counts 2), times 3 for
forward + backward (the usual estimate: the backward pass costs two forward passes), per second.
"""
from __future__ import annotations

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import keras
import numpy as np
import tensorflow as tf

from salt_tf.model.losses import BCEWithLogits
from salt_tf.common.machine import fast_bfloat16
from salt_tf.model.unet import build_unet

# The policy training takes here: mixed bfloat16 only where the CPU computes it natively.
_POLICY = "mixed_bfloat16" if fast_bfloat16() else "float32"

# (encoder, scSE, size, policy, fused batch norm[, decoder, decoder widths or None for its default[,
# FastConv2D]])
VARIANTS = {
    "all": [
        ("resnet34", True, 128, "float32", False),
        ("resnet34", True, 128, "float32", True),
        ("resnet34", True, 128, "mixed_bfloat16", False),
        ("resnet34", True, 128, "mixed_bfloat16", True),
        ("resnet18", True, 128, "mixed_bfloat16", True),
        ("resnet34", True, 64, "mixed_bfloat16", True),
        ("resnet18", True, 64, "mixed_bfloat16", True),
    ],
    "issue3": [
        ("resnet34", True, 128, "float32", True),
        ("resnet34", False, 128, "float32", True),
        ("resnext50", True, 128, "float32", True),
        ("resnext50", False, 128, "float32", True),
    ],
    "decoder": [  # issue 20: what the decoder costs; the policy the machine trains with
        ("resnet18", True, 128, _POLICY, True, "unet", None),
        ("resnet18", True, 128, _POLICY, True, "unet", (128, 64, 32, 16, 16)),
        ("resnet18", True, 128, _POLICY, True, "light", None),
        ("resnet34", True, 128, _POLICY, True, "unet", None),
        ("resnet34", True, 128, _POLICY, True, "light", None),
    ],
    "conv": [  # Keras' Conv2D against FastConv2D, in pairs: the cpu-60min preset's model at its two sizes
        ("resnet18", True, 64, _POLICY, True, "unet", None, False),
        ("resnet18", True, 64, _POLICY, True, "unet", None, True),
        ("resnet18", True, 128, _POLICY, True, "unet", None, False),
        ("resnet18", True, 128, _POLICY, True, "unet", None, True),
        ("resnet18", True, 128, _POLICY, True, "unet", (128, 64, 32, 16, 16), False),
        ("resnet18", True, 128, _POLICY, True, "unet", (128, 64, 32, 16, 16), True),
        ("resnet18", True, 32, _POLICY, True, "unet", None, False),  # the suite's tiny trainings
        ("resnet18", True, 32, _POLICY, True, "unet", None, True),
    ],
    "emulated": [  # section_context.py's fine-tunes ran in mixed bfloat16 on every CPU until the twenty-ninth
        # session: against float32, the cpu-60min preset's model at a tile's 128 and a context window's 256
        ("resnet18", True, 128, "float32", True, "unet", (128, 64, 32, 16, 16)),
        ("resnet18", True, 128, "mixed_bfloat16", True, "unet", (128, 64, 32, 16, 16)),
        ("resnet18", True, 256, "float32", True, "unet", (128, 64, 32, 16, 16)),
        ("resnet18", True, 256, "mixed_bfloat16", True, "unet", (128, 64, 32, 16, 16)),
    ],
}


def forward_flops(model: keras.Model, size: int) -> int:
    """Floating-point operations of one tile's forward pass, counted on the frozen graph."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, size, size, 1), tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops


def fields(variant) -> tuple:
    """(encoder, scSE, size, policy, fused BN, decoder, widths, FastConv2D): defaults when not named."""
    return (*variant, *("unet", None, True)[len(variant) - 5:])


def name_of(variant) -> str:
    encoder, scse, size, policy, fused, decoder, widths, fast_conv = fields(variant)
    precision = "bf16" if "bfloat16" in policy else "fp32"
    named = "" if len(variant) == 5 else f" {decoder}" + (f" {','.join(map(str, widths))}" if widths else "")
    return (f"{encoder}{'+scSE' if scse else ''} {size} {precision} {'fusedBN' if fused else 'kerasBN'}{named}"
            + ("" if fast_conv else " kerasConv"))


def main() -> None:
    parser = _bench.parser(__doc__, rounds=5, batch_size=16)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per round and variant")
    parser.add_argument("--variants", choices=sorted(VARIANTS), default="all")
    args = parser.parse_args()
    _bench.header()
    rng = np.random.default_rng(0)
    models, batches, flops = {}, {}, {}
    for variant in VARIANTS[args.variants]:
        encoder, scse, size, policy, fused, decoder, widths, fast_conv = fields(variant)
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = build_unet(encoder, size, scse=scse, fused_bn=fused, decoder=decoder, decoder_filters=widths,
                           fast_conv=fast_conv)
        keras.mixed_precision.set_global_policy("float32")
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), BCEWithLogits())
        if size not in batches:
            batches[size] = (rng.random((args.batch_size, size, size, 1), dtype=np.float32),
                             (rng.random((args.batch_size, size, size, 1)) < 0.3).astype(np.float32))
        model.train_on_batch(*batches[size])  # trace and warm up
        model.train_on_batch(*batches[size])
        flops[variant] = forward_flops(model, size)
        models[variant] = model
    def steps(model, batch):
        def run() -> float:
            for _ in range(args.steps):
                model.train_on_batch(*batch)
        return run

    # ms per training tile, by variant and round
    seconds = _bench.interleave(
        [(variant, _bench.seconds(steps(model, batches[variant[2]]))) for variant, model in models.items()],
        args.rounds)
    times = {variant: [s / args.steps / args.batch_size * 1000 for s in values] for variant, values in seconds.items()}
    print(f"\nbatch {args.batch_size}, {args.rounds} rounds x {args.steps} steps per variant")
    print(f"{'variant':<46}{'ms/tile':>9}  {'rounds':<40}{'vs first of its precision':>26}{'GFLOP fwd':>11}{'GFLOP/s':>9}")
    first = {}
    for variant, values in times.items():
        median = float(np.median(values))
        precision = variant[3]
        first.setdefault(precision, median)
        achieved = 3 * flops[variant] / (median / 1000) / 1e9
        print(f"{name_of(variant):<46}{median:>9.1f}  {', '.join(f'{v:.1f}' for v in values):<40}"
              f"{median / first[precision]:>25.2f}x{flops[variant] / 1e9:>11.2f}{achieved:>9.0f}")


if __name__ == "__main__":
    main()
