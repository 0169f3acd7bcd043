"""One description of the machine, for every benchmark's output and the experiment records."""
from __future__ import annotations

import contextlib
import os
import platform
import sys
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


def backend() -> str:
    """Keras' backend in this process: "tensorflow" (the default), "jax" or "torch"."""
    import keras

    return keras.backend.backend()


def accelerators() -> list[str]:
    """The GPUs the backend computes on, by name (empty on a CPU). TensorFlow and JAX list theirs;
    PyTorch its CUDA devices."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if name == "jax":
        import jax

        return [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip()
                for d in jax.devices() if d.platform == "gpu"]
    if name == "torch":
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def _versions() -> str:
    import keras

    name = backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name)
    version = "?"
    if module is not None:
        version = getattr(__import__(module), "__version__", "?")
    return f"keras {keras.__version__} on {name} {version}"


def describe() -> list[str]:
    """Two lines: processor, usable cores, GPUs and load average; Python, Keras and its backend's versions."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    usable = usable_cores()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpus = accelerators()
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16"}) or ["none of avx2/avx512f/bf16"]
    return [
        f"machine: {platform.machine()}, {cpu} ({' '.join(flags)}), nproc {usable}, {len(gpus)} GPU(s)"
        + (f" ({', '.join(gpus)})" if gpus else "") + f", load average {load}",
        f"python {platform.python_version()}, {_versions()}",
    ]


def strategy_scope():
    """TensorFlow's distribution scope for this machine (mirrored over several GPUs, else the default);
    on the other backends a scope that does nothing (one device)."""
    if backend() != "tensorflow":
        return contextlib.nullcontext()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()).scope()


def mixed_policy() -> str | None:
    """Keras' mixed policy for this machine: on a GPU float16 with TensorFlow (as it always was),
    bfloat16 with JAX and PyTorch; bfloat16 on a CPU that computes it natively; None (stay float32)
    on a CPU that would emulate it."""
    if accelerators():
        return "mixed_float16" if backend() == "tensorflow" else "mixed_bfloat16"
    return "mixed_bfloat16" if fast_bfloat16() else None


class _Hidden:
    """A finder on ``sys.meta_path`` that finds nothing of TensorFlow and asks ``finder`` for the rest."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, name):  # invalidate_caches() and the rest, as the finder has them
        return getattr(self.finder, name)


def hide_tensorflow() -> None:
    """Make this process a machine without TensorFlow (the tests of other backends, the GPU script):
    ``import tensorflow`` raises ModuleNotFoundError and ``importlib.util.find_spec`` says None, as
    when it is not installed. (A finder that raises instead breaks PyTorch, whose dynamo probes
    optional libraries with find_spec; ``sys.modules["tensorflow"] = None`` makes Keras think it is loaded.)"""
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is imported already: hide it before anything imports Keras")
    sys.meta_path[:] = [f if isinstance(f, _Hidden) else _Hidden(f) for f in sys.meta_path]
