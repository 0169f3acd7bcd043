"""The run folder's lifecycle: create or join it, hold it, resume a fold from its checkpoint, finish it.

A process may be killed at any instant. Every file is written atomically (``salt_tf.common.atomic``), a
fold's checkpoint is consistent at every instant (``Checkpoint``), and what a killed writer leaves
(temporaries, files no state names) is removed the next time a process holds the folder alone.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from salt_tf.common.atomic import atomic_path, write_text
from salt_tf.run.config import Config
from salt_tf.tiles import folds as folds_mod

try:
    import fcntl
except ImportError:  # no flock (Windows): the folder is never known to be held alone
    fcntl = None


def _differences(saved: Config, config: Config) -> list[str]:
    """Settings that differ, the fold and the run folder aside (they name the process, not the run)."""
    return [f"{f.name}: {getattr(saved, f.name)!r} in config.json, {getattr(config, f.name)!r} now"
            for f in dataclasses.fields(Config) if f.name not in ("fold", "out")
            and getattr(saved, f.name) != getattr(config, f.name)]


def _join(out: Path, config: Config, ids, resume: bool) -> pd.DataFrame:
    saved = Config.load(out / "config.json")
    different = _differences(saved, config)
    if different:
        raise ValueError(f"{out / 'config.json'}: this run was made with other settings "
                         f"({'; '.join(different)}); use another --out")
    if not resume:
        if config.fold is None:
            raise FileExistsError(f"{out}: run folder exists and is not empty; use --resume to continue "
                                  f"it, --fold K to add one fold, or another --out")
        if (out / f"fold{config.fold}").exists():
            raise FileExistsError(f"{out / f'fold{config.fold}'}: this fold was already started; "
                                  f"use --resume to continue it, or another --fold")
    return folds_mod.read_folds(out / "folds.csv", ids=ids)


def _create(out: Path, config: Config, fold_table: pd.DataFrame) -> bool:
    """Prepare a complete folder beside ``out`` and rename it into place; False if another won."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        config.save(tmp / "config.json")
        folds_mod.write_folds(fold_table, tmp / "folds.csv")
        try:
            os.rename(tmp, out)  # atomic; replaces only a missing or empty folder
            return True
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_run_folder(out: Path, config: Config, fold_table: pd.DataFrame, ids, resume: bool = False) -> pd.DataFrame:
    """Create the run folder with config.json and folds.csv in one rename, or join the one there.

    Several ``--fold K`` processes may start at once: each prepares a complete folder beside ``out``
    and renames it into place; the rename fails for all but the first (the target is no longer
    empty), and the others compare their settings with the winner's and join. Returns the folds.
    """
    for _ in range(2):
        if (out / "config.json").exists():
            return _join(out, config, ids, resume)
        if resume:
            raise FileNotFoundError(f"{out}: no run to resume here (no config.json)")
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out}: folder exists and is not a run folder (no config.json); use another --out")
        if _create(out, config, fold_table):
            return fold_table
    raise FileExistsError(f"{out}: could not create or join this run folder")


def _is_temporary(path: Path) -> bool:
    """What ``salt_tf.common.atomic`` leaves when killed: ``.NAME.XXXX.tmp`` and ``.NAME.old``."""
    return path.name.startswith(".") and path.name.endswith((".tmp", ".old"))


def sweep_temporaries(out: Path) -> list[Path]:
    """Remove the temporaries of killed writers anywhere in the run folder; return them."""
    found = sorted((p for p in out.rglob(".*") if _is_temporary(p)), key=lambda p: len(p.parts))
    removed = []
    for path in found:
        if any(parent in removed for parent in path.parents):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def held(out: Path, log=print) -> Iterator[None]:
    """Hold the run folder while training in it; if no other process holds it, sweep it first.

    A shared ``flock`` on the folder itself, which the kernel drops when the process ends, even by
    SIGKILL: so a process that gets it exclusively knows that no writer is alive in the folder,
    and any temporary there was left by a killed one.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another process trains here: its temporaries are alive
        else:
            for path in sweep_temporaries(out):
                log(f"removed {path}, left by an interrupted write")
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def budget_spent(out: Path, folds: list[int]) -> float:
    """Seconds of the time budget the given folds used before (finished or checkpointed)."""
    spent = 0.0
    for fold in folds:
        for path in (out / f"fold{fold}" / "result.json", out / f"fold{fold}" / "checkpoint" / "state.json"):
            if path.exists():
                spent += json.loads(path.read_text()).get("fold_seconds", 0.0)
                break
    return spent


def finished_folds(out: Path) -> list[int]:
    return [json.loads(p.read_text())["fold"] for p in sorted(out.glob("fold*/result.json"))]


class Checkpoint:
    """A fold's resume point: ``state.json``, the last epoch's model ``last.npz`` and the best weights.

    Each epoch writes its model and (if best) its weights under new names (``last-P-E.npz``,
    ``best_weights-P-E.npz`` for phase P, epoch E), then ``state.json`` naming them (the commit),
    then renames the model to ``last.npz`` and removes the files the state no longer names. So at
    every instant the state and its files agree: the weights are those of the recorded best epoch,
    and the model that of the last recorded epoch (the state's ``last`` if it is still there, else
    ``last.npz``). A kill leaves at worst files that no state names, removed when the fold resumes.

    The model is stored as raw arrays, its weights and its optimizer's variables (slots, step
    count, learning rate), and is rebuilt from the run's config on resume (``load_last``): a
    third of the time of a ``.keras`` file to write, and no deserialisation. Checkpoints written
    before that hold ``last.keras`` (a whole Keras model) and resume as they were written.
    """

    @staticmethod
    def _final(state: dict) -> str:
        """The name of the state's last model once rolled forward: ``last`` and its format's suffix."""
        return "last" + (Path(state["last"]).suffix if "last" in state else ".keras")

    @classmethod
    def _named(cls, state: dict) -> set[str]:
        # Checkpoints written before the best weights were named by their epoch: best_weights.npz.
        final = cls._final(state)
        return {"state.json", final, state.get("last", final), state.get("best_weights", "best_weights.npz")}

    def __init__(self, folder: Path):
        self.folder = folder

    def state(self) -> dict:
        path = self.folder / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _remove_unnamed(self, state: dict) -> None:
        named = self._named(state) if state else set()
        for path in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if path.name not in named:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    def _roll_forward(self, state: dict) -> None:
        """The committed epoch's model becomes ``last.npz`` (if it is not yet)."""
        final = self._final(state)
        committed = self.folder / state.get("last", final)
        if committed.name != final and committed.exists():
            os.replace(committed, self.folder / final)

    def resume(self) -> tuple[dict, Path | None]:
        """The saved state and the model file to resume from; ({}, None) to start the fold afresh.
        Either way, the files of an interrupted epoch are removed."""
        state = self.state()
        if state:
            self._roll_forward(state)
            if not (self.folder / self._final(state)).exists():
                state = {}
        self._remove_unnamed(state)
        return state, self.folder / self._final(state) if state else None

    def save_best(self, state: dict, model, tag: str, weights: list[np.ndarray] | None = None) -> None:
        """The model's weights only (no optimizer slots: phase 1 and 2 optimizers differ), or the
        given ones in their order (the weight average's)."""
        name = f"best_weights-{tag}.npz"
        with atomic_path(self.folder / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, *(weights if weights is not None else [w.numpy() for w in model.weights]))
        state["best_weights"] = name

    def save_last(self, state: dict, model, tag: str, averages=()) -> None:
        """The model's weights, its optimizer's variables if it is compiled, and the weight average's."""
        name = f"last-{tag}.npz"
        optimizer = getattr(model, "optimizer", None)
        arrays = {f"weight_{i}": w.numpy() for i, w in enumerate(model.weights)}
        if optimizer is not None and optimizer.built:
            arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
        arrays.update({f"average_{i}": a for i, a in enumerate(averages)})
        with atomic_path(self.folder / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        state["last"] = name

    @staticmethod
    def load_last(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """A ``last.npz``'s model weights, optimizer variables and weight average (empty if it had
        none), each in order."""
        with np.load(path) as saved:
            def series(prefix):
                count = sum(1 for key in saved.files if key.startswith(prefix))
                return [saved[f"{prefix}{i}"] for i in range(count)]
            return series("weight_"), series("optimizer_"), series("average_")

    @staticmethod
    def restore_optimizer(model, variables: list[np.ndarray], where: Path) -> None:
        """Give the model's (compiled) optimizer the saved variables, building it first."""
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        if len(optimizer.variables) != len(variables):
            raise ValueError(f"{where}: {len(variables)} optimizer variables saved, the phase's optimizer has "
                             f"{len(optimizer.variables)}; the checkpoint does not fit this run's settings")
        for variable, value in zip(optimizer.variables, variables):
            variable.assign(value)

    def commit(self, state: dict) -> None:
        """Write ``state.json``: from now on a resume starts here. Then tidy up to it."""
        write_text(self.folder / "state.json", json.dumps(state, indent=1))
        self._roll_forward(state)
        self._remove_unnamed(state)

    def best_weights(self, state: dict) -> list[np.ndarray] | None:
        path = self.folder / state.get("best_weights", "best_weights.npz")
        if not state or not path.exists():
            return None
        with np.load(path) as best:
            return [best[f"arr_{i}"] for i in range(len(best.files))]

    def remove(self) -> None:
        """The fold is done (its result.json written): the checkpoint goes, whatever is in it."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
