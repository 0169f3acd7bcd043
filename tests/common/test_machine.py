"""The machine's GPUs and mixed-precision policy on each Keras backend (issue 40), with each backend's
device list stood in for a GPU machine's, and TensorFlow hidden as on a machine without it."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import keras  # noqa: F401  (before the stand-ins: Keras' import reaches SciPy, which probes sys.modules for jax and torch)
import pytest

from salt_tf.common import machine

ROOT = Path(__file__).resolve().parents[2]


class Device:
    def __init__(self, platform, id_, kind):
        self.platform, self.id, self.device_kind = platform, id_, kind


def on(monkeypatch, backend: str, module: types.ModuleType | None = None) -> None:
    monkeypatch.setattr(machine, "backend", lambda: backend)
    if module is not None:
        monkeypatch.setitem(sys.modules, module.__name__, module)


def test_jax_gpus_are_named_and_train_in_bfloat16(monkeypatch):
    jax = types.ModuleType("jax")
    jax.__version__ = "0.10.2"
    jax.devices = lambda: [Device("gpu", 0, "NVIDIA H100 80GB HBM3"), Device("gpu", 1, "NVIDIA H100 80GB HBM3")]
    on(monkeypatch, "jax", jax)
    assert machine.accelerators() == ["gpu:0 NVIDIA H100 80GB HBM3", "gpu:1 NVIDIA H100 80GB HBM3"]
    assert machine.mixed_policy() == "mixed_bfloat16"
    assert "2 GPU(s) (gpu:0 NVIDIA H100 80GB HBM3, gpu:1 NVIDIA H100 80GB HBM3)" in machine.describe()[0]
    assert machine.describe()[1].endswith("on jax 0.10.2")

    jax.devices = lambda: [Device("cpu", 0, "cpu")]
    assert machine.accelerators() == []
    assert machine.mixed_policy() == ("mixed_bfloat16" if machine.fast_bfloat16() else None)


def test_torch_cuda_devices_are_named_and_train_in_bfloat16(monkeypatch):
    torch = types.ModuleType("torch")
    torch.__version__ = "2.13.0"
    torch.cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 1,
                                       get_device_name=lambda i: f"NVIDIA A100-SXM4-40GB #{i}")
    on(monkeypatch, "torch", torch)
    assert machine.accelerators() == ["NVIDIA A100-SXM4-40GB #0"]
    assert machine.mixed_policy() == "mixed_bfloat16"
    assert "1 GPU(s) (NVIDIA A100-SXM4-40GB #0)" in machine.describe()[0]

    torch.cuda.is_available = lambda: False
    assert machine.accelerators() == [] and "0 GPU(s)," in machine.describe()[0]


def test_tensorflow_gpus_keep_float16(monkeypatch):
    import tensorflow as tf

    on(monkeypatch, "tensorflow")
    gpu = types.SimpleNamespace(name="/physical_device:GPU:0")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind == "GPU" else [])
    assert machine.accelerators() == ["/physical_device:GPU:0"]
    assert machine.mixed_policy() == "mixed_float16"  # as it always was on TensorFlow


def test_hidden_tensorflow_is_not_installed_to_imports_and_to_find_spec():
    code = ("import importlib.util, sys; from salt_tf.common import machine; machine.hide_tensorflow(); "
            "assert importlib.util.find_spec('tensorflow') is None\n"
            "try:\n import tensorflow\nexcept ModuleNotFoundError as e: print('refused', e.name)\n"
            "assert importlib.util.find_spec('numpy') is not None; import numpy; machine.hide_tensorflow()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused tensorflow"
    assert importlib.util.find_spec("tensorflow") is not None  # this process is untouched


def test_hiding_tensorflow_after_it_was_imported_is_refused():
    import tensorflow  # noqa: F401

    with pytest.raises(RuntimeError, match="imported already"):
        machine.hide_tensorflow()
