"""Stand-in window models for tests/test_distributed.py, in a module of their own so that Dask's
worker processes import it by name (cloudpickle sends instances of an importable module's classes
by reference; the spawned workers inherit the test process's sys.path, which holds tests/). Each is
an ensemble of two members, 0.9 and 1.1 times windows / 255 (so the probability is test_segment's
identity and the uncertainty is not zero), and keeps its count of calls in a file, since the
workers share only the file system with the test."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

LINE = 9  # bytes of a line of the calls file: 8 digits and a newline


def _append(path: Path, number: int) -> int:
    """Append one fixed-width line (one write with O_APPEND: whole and in order, even with several
    writers); return its position in the file, counting from 1."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{number:08d}\n".encode())
        return os.lseek(fd, 0, os.SEEK_CUR) // LINE
    finally:
        os.close(fd)


class Counting:
    """The two-member stand-in; writes the number of windows of each call to ``folder/calls``."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def calls(self) -> list[int]:
        path = self.folder / "calls"
        return [int(n) for n in path.read_text().split()] if path.exists() else []

    def __call__(self, windows):
        self.count = _append(self.folder / "calls", len(windows))
        p = windows.astype(np.float32) / 255.0
        return np.stack([0.9 * p, 1.1 * p])


class KillOnce(Counting):
    """Kills its own worker process (no exception, no clean-up: as the kernel's OOM killer would)
    at its ``at``-th call, once in all the workers (``folder/killed`` marks that it happened)."""

    def __init__(self, folder, at: int):
        super().__init__(folder)
        self.at = at

    def __call__(self, windows):
        probs = super().__call__(windows)
        if self.count >= self.at:
            try:
                os.close(os.open(self.folder / "killed", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return probs
            os._exit(1)
        return probs


class CrashAfter(Counting):
    """Raises from its ``after + 1``-th call on: a run that fails part way."""

    def __init__(self, folder, after: int):
        super().__init__(folder)
        self.after = after

    def __call__(self, windows):
        probs = super().__call__(windows)
        if self.count > self.after:
            raise RuntimeError(f"stand-in crash at call {self.count}")
        return probs
