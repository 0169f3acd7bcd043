"""One description of the machine, for every benchmark's output and the experiment records."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    return [
        f"machine: {platform.machine()}, {cpu}, nproc {usable}, {gpus} GPU(s), load average {load}",
        f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}",
    ]
