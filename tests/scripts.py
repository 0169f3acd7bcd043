"""The project's top-level scripts as modules, so that tests call their main() in-process, or as processes."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
# The tiniest training the tests use: 64x64, resnet18 from scratch, 1 epoch per phase, 2 folds.
TINY = ["--size", "64", "--encoder", "resnet18", "--encoder-weights", "none", "--batch-size", "8",
        "--phase1-epochs", "1", "--phase2-epochs", "1", "--folds", "2"]


def load_script(relative: str, name: str) -> ModuleType:
    """Import ``ROOT/relative`` (e.g. ``"train.py"``) as a module called ``name``, with the
    script's folder first on sys.path as when Python runs it (benchmarks import ``_bench``)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def train_cli(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    """train.py in its own process (for what only a process shows: concurrency, a kill)."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def start_cli(*args, cwd=ROOT) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
