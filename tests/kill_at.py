"""The fault-injection test's hook: run train.py, SIGKILLing it at a chosen file operation in one folder.

    python tests/kill_at.py FOLDER OPS_LOG RULE -- [train.py flags]

Counts the operations of this process that change files under FOLDER: making a folder, opening a
file for writing (before, and again once it exists, empty), renaming, deleting a file or a folder.
Each is appended to OPS_LOG as ``index op path`` before it runs. RULE says when to kill: ``N``
kills before the N-th operation; ``+J`` kills before the J-th operation after the first commit
(the rename that puts state.json, result.json or report.json in place, i.e. after the process has
saved some progress); ``0`` never kills (a reference run, whose OPS_LOG counts the operations).

The kill is a real SIGKILL of this process: no ``finally``, no ``atexit``, no flush.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import runpy
import shutil
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITS = ("state.json", "result.json", "report.json")


class Hook:
    def __init__(self, folder: str, log_path: str, rule: str):
        self.folder = os.path.abspath(folder) + os.sep
        self.log = open(log_path, "a", buffering=1)  # opened before open() is wrapped
        self.after_commit = rule.startswith("+")
        self.kill_at = int(rule.lstrip("+"))
        self.count, self.since_commit = 0, None
        self.lock, self.local = threading.Lock(), threading.local()

    def _inside(self, path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(self.folder)
        except TypeError:  # a file descriptor
            return False

    def op(self, name: str, path) -> None:
        with self.lock:
            self.count += 1
            if self.since_commit is not None:
                self.since_commit += 1
            position = self.since_commit if self.after_commit else self.count
            relative = os.path.abspath(os.fspath(path))[len(self.folder):]
            if self.kill_at and position == self.kill_at:
                self.log.write(f"{self.count} {name} {relative} KILL\n")
                os.kill(os.getpid(), signal.SIGKILL)
            self.log.write(f"{self.count} {name} {relative}\n")

    def committed(self, dst) -> None:
        if self.since_commit is None and os.path.basename(os.fspath(dst)) in COMMITS:
            self.since_commit = 0

    def wrap(self, fn, name: str, when=lambda *args: True):
        """``fn`` counted when its first argument is under the folder and ``when`` holds; the calls
        it makes itself (rmtree's unlinks, mkdtemp's mkdir) are not counted again."""
        def counted(*args, **kwargs):
            if getattr(self.local, "busy", False) or not args or not self._inside(args[-1] if name == "rename" else args[0]) \
                    or not when(*args):
                return fn(*args, **kwargs)
            self.local.busy = True
            try:
                self.op(name, args[-1] if name == "rename" else args[0])
                result = fn(*args, **kwargs)
                if name == "rename":
                    self.committed(args[1])
                return result
            finally:
                self.local.busy = False
        return counted

    def wrap_open(self, fn):
        def counted(file, mode="r", *args, **kwargs):
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if not writing or getattr(self.local, "busy", False) or not self._inside(file):
                return fn(file, mode, *args, **kwargs)
            self.op("open", file)
            handle = fn(file, mode, *args, **kwargs)
            self.op("opened", file)  # the file exists, empty
            return handle
        return counted

    def install(self) -> None:
        exists = lambda path, *rest: os.path.lexists(path)  # noqa: E731
        os.mkdir = self.wrap(os.mkdir, "mkdir", lambda path, *rest: not os.path.lexists(path))
        os.replace = self.wrap(os.replace, "rename")
        os.rename = self.wrap(os.rename, "rename")
        os.unlink = self.wrap(os.unlink, "unlink", exists)
        os.remove = self.wrap(os.remove, "unlink", exists)
        os.rmdir = self.wrap(os.rmdir, "rmdir", exists)
        shutil.rmtree = self.wrap(shutil.rmtree, "rmtree", exists)
        builtins.open = io.open = self.wrap_open(builtins.open)


def train(folder: str, log_path: str, rule: str, flags: list[str]) -> None:
    """train.py with these flags, in this process, under the hook."""
    Hook(folder, log_path, rule).install()
    sys.argv = [str(ROOT / "train.py"), *flags]
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


def serve() -> None:
    """Fork one training process per request: ``{"folder", "log", "rule", "flags", "stdout"}`` on a
    line of stdin; answers ``{"status": S}``, S the child's exit status or minus its signal.

    The server imports TensorFlow, the package and TensorBoard's summaries (which the training's
    TensorBoard callback imports at its first scalar) once, and runs no TensorFlow op itself, so that
    each child starts in a fraction of a second (no import, no thread pool to inherit); the child
    runs its step functions eagerly, so that it traces nothing (tracing a U-Net's step costs more
    than the one or two epochs a child trains).
    """
    import tensorboard.summary.v2  # noqa: F401  (TensorFlow imports it at the first scalar logged: 0.5-0.7 s a child)
    import tensorflow as tf

    import salt_tf.training.train  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                output = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                os.dup2(output, 1)
                os.dup2(output, 2)
                tf.config.run_functions_eagerly(True)
                train(request["folder"], request["log"], request["rule"], request["flags"])
            except SystemExit as exit_:
                os._exit(exit_.code if isinstance(exit_.code, int) else 1)
            except BaseException:
                import traceback

                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"status": code}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        folder, log_path, rule, dashes, *flags = sys.argv[1:]
        assert dashes == "--", "usage: kill_at.py FOLDER OPS_LOG RULE -- [train.py flags]  |  kill_at.py --serve"
        train(folder, log_path, rule, flags)
