"""One description of the machine, for every benchmark's output and the experiment records."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The processor's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.split(":", 1)[0].strip() in ("flags", "Features"):
            return set(line.split(":", 1)[1].split())
    return set()


def fast_bfloat16(flags: set[str] | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX-512 BF16 or AMX, Arm BF16). Without it,
    TensorFlow emulates bfloat16 and a mixed_bfloat16 training step runs about ten times slower than
    float32 (a 2-core AMD EPYC without AVX2 or AVX-512, the demo preset's batch of 8: 22 s a step in
    bfloat16, with other work on the machine, against 2 s in float32 alone; benchmarks/RESULTS.md)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def describe() -> list[str]:
    """Two lines: processor, usable cores and load average; Python, TensorFlow and Keras versions."""
    import keras
    import tensorflow as tf

    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    usable = usable_cores()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpus = len(tf.config.list_physical_devices("GPU"))
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16"}) or ["none of avx2/avx512f/bf16"]
    return [
        f"machine: {platform.machine()}, {cpu} ({' '.join(flags)}), nproc {usable}, {gpus} GPU(s), load average {load}",
        f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}",
    ]


def strategy():
    """TensorFlow's distribution strategy for this machine: mirrored over several GPUs, else the default."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def mixed_policy() -> str | None:
    """Keras' mixed policy for this machine: float16 on a GPU, bfloat16 on a CPU that computes it
    natively, None (stay float32) on one that would emulate it."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if fast_bfloat16() else None
