"""Keras callbacks of a fold's training, each carrying the state a resume needs (state_dict / load_state_dict)."""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from salt_tf.common.atomic import atomic_path
from salt_tf.run.config import SCHEDULES
from salt_tf.run.folder import Checkpoint


class FoldClock:
    """The seconds a fold and each of its phases have run, carried over a resume in state.json."""

    def __init__(self, state: dict):
        self.started = time.monotonic() - state.get("fold_seconds", 0.0)
        self.times = dict(state.get("phase_seconds", {}))
        self.phase, self.base, self.phase_started = None, 0.0, 0.0

    def start_phase(self, phase: int) -> None:
        self.phase, self.base, self.phase_started = str(phase), self.times.get(str(phase), 0.0), time.perf_counter()

    def end_phase(self) -> float:
        seconds = self.times[self.phase] = self.phase_seconds()
        self.phase = None
        return seconds

    def phase_seconds(self) -> float:
        return self.base + time.perf_counter() - self.phase_started

    def fold_seconds(self) -> float:
        return time.monotonic() - self.started

    def state_dict(self) -> dict:
        times = dict(self.times)
        if self.phase is not None:
            times[self.phase] = self.phase_seconds()
        return {"fold_seconds": self.fold_seconds(), "phase_seconds": times}


def synced(model: keras.Model) -> keras.Model:
    """``model`` with its variables up to date inside an epoch. Keras' JAX trainer carries the
    training state outside the variables between the epoch's steps and writes it back at the
    epoch's end; a callback that reads or sets a variable after a batch syncs it first (the next
    step then starts from the variables, with what the callback set)."""
    if keras.backend.backend() == "jax":
        model.jax_state_sync()
    return model


class PhaseClock(keras.callbacks.Callback):
    """A phase's time (``time.monotonic()`` at its start) and its batches, over all its fit() calls.

    A resumed phase goes on from the interrupted one's time and step count, so that its budget
    and its learning-rate schedule go on too.
    """

    def __init__(self, steps: int = 0):
        super().__init__()
        self.start, self.steps = time.monotonic(), steps

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def state_dict(self) -> dict:
        return {"budget_seconds": time.monotonic() - self.start, "budget_steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.start = time.monotonic() - state.get("budget_seconds", 0.0)
        self.steps = state.get("budget_steps", self.steps)


class WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of the trainable weights, updated after every batch
    (``average = momentum x average + (1 - momentum) x weights``, started at the first batch's
    weights), for the whole fold across its phases and stages.

    Validation runs on the average: it is swapped into the model for the pass and out after, so
    training goes on from the raw weights. ``FoldTracker`` keeps the average as the best epoch's
    weights (``weights``), so the fold exports it, and saves ``arrays`` in the checkpoint, so a
    resumed fold goes on with it. Keras' own ``use_ema`` is not used: its ``fit`` writes the average
    over the raw weights at the end of every call, which a resume between two calls cannot repeat.
    Batch-norm statistics are not averaged: they are already running means of the raw weights'.
    """

    def __init__(self, momentum: float, arrays: list[np.ndarray] | None = None):
        super().__init__()
        self.momentum = float(momentum)
        self.saved = arrays or None  # from a checkpoint, until the model is known
        self.averages = None
        self._update = None

    def _start(self) -> None:
        variables = synced(self.model).trainable_weights
        initial = self.saved if self.saved is not None else [w.numpy() for w in variables]
        if len(initial) != len(variables):
            raise ValueError(f"{len(initial)} averaged weights saved, the model has {len(variables)} trainable ones")
        m = self.momentum
        if keras.backend.backend() != "tensorflow":  # the average as arrays, updated after every batch
            self.averages = [np.array(a, np.float32) for a in initial]

            def update_arrays():
                for average, weight in zip(self.averages, synced(self.model).trainable_weights):
                    average *= m
                    average += (1.0 - m) * np.asarray(weight.numpy(), np.float32)

            self._update = update_arrays
            return
        import tensorflow as tf

        self.averages = [tf.Variable(a, trainable=False) for a in initial]
        pairs = list(zip(self.averages, variables))

        @tf.function(autograph=False)
        def update():
            for average, weight in pairs:
                average.assign(m * average + (1.0 - m) * weight.value)

        self._update = update

    def on_train_batch_end(self, batch, logs=None):
        if self.averages is None:
            resumed = self.saved is not None
            self._start()
            if not resumed:  # the average starts at the weights after the first batch
                return
        self._update()

    def _swap(self) -> None:
        for k, (average, weight) in enumerate(zip(self.averages, synced(self.model).trainable_weights)):
            raw = weight.numpy()
            weight.assign(average)
            if isinstance(average, np.ndarray):
                self.averages[k] = np.array(raw, np.float32)
            else:
                average.assign(raw)

    def on_test_begin(self, logs=None):
        if self.averages is not None:
            self._swap()

    def on_test_end(self, logs=None):
        if self.averages is not None:
            self._swap()

    def weights(self) -> list[np.ndarray]:
        """The model's weights (``model.weights``' order) with the average in place of the trainable ones."""
        if self.averages is None:
            return [w.numpy() for w in self.model.weights]
        average = {id(w): a for w, a in zip(self.model.trainable_weights, self.averages)}
        return [(average[id(w)] if id(w) in average else w).numpy() for w in self.model.weights]

    def arrays(self) -> list[np.ndarray]:
        return [a.numpy() for a in self.averages] if self.averages is not None else list(self.saved or [])


class FoldTracker(keras.callbacks.Callback):
    """Per epoch: the history row, the best-by-score weights, the resume checkpoint, a summary line.

    The row times the epoch's parts: training batches (``train_seconds``, and per training tile
    ``ms_per_tile``), the validation pass (``val_seconds``) and writing the checkpoints
    (``checkpoint_seconds``), and its first batch apart (``first_batch_seconds``: tracing the step
    function, or waiting for the input pipeline); ``size`` is the input size the epoch trained and
    validated at. The best weights are those of the best validation score at ``final_size`` (the
    size the model is exported at); an epoch of a progressive-resizing warm-up, validated at its
    smaller size, is best only until the first epoch at ``final_size``.

    At each epoch's end it saves, with the checkpoint, ``clock``'s state and that of every callback
    in ``resumable`` (under ``resume``): whatever they give, each the keys of its own.
    """

    def __init__(self, fold_dir: Path, fold: int, phase: int, epochs: int, state: dict, log,
                 batch_size: int | None = None, size: int | None = None, final_size: int | None = None,
                 clock: FoldClock | None = None, resumable: list | None = None, average: WeightAverage | None = None,
                 validated: bool = True):
        super().__init__()
        self.validated = validated  # False: no validation data, the last epoch is the best (score NaN)
        self.fold_dir, self.fold, self.phase, self.epochs = fold_dir, fold, phase, epochs
        self.state, self.log = state, log
        self.batch_size, self.size, self.final_size = batch_size, size, final_size
        self.checkpoint = Checkpoint(fold_dir / "checkpoint")
        self.clock, self.resumable, self.average = clock, resumable or [], average

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.test_started = None
        self.batches = 0
        self.first_batch_seconds = None
        self.last_batch_end = None
        self.last_lr = None

    def _learning_rate(self) -> float:
        lr = synced(self.model).optimizer.learning_rate
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        self.last_batch_end = time.perf_counter()
        if self.batches == 1:  # tracing, or a stalled input pipeline, shows here
            self.first_batch_seconds = self.last_batch_end - self.started
        # The rate of the epoch's last batch: the plateau callback, which runs before this one at
        # the epoch's end (so that its counters are saved), may lower it for the next epoch.
        self.last_lr = self._learning_rate()

    def on_test_begin(self, logs=None):
        self.test_started = time.perf_counter()

    def _final(self, size) -> bool:
        return size is None or self.final_size is None or size == self.final_size

    def _ranks_above_best(self, score: float) -> bool:
        """By (validated at the final size, score): scores at a smaller size are not comparable. Without
        validation, the latest epoch."""
        held = self.state.get("best_score")
        if held is None or not self.validated:
            return True
        return (self._final(self.size), score) > (self._final(self.state.get("best_size")), held)

    def _row(self, epoch: int, logs: dict, now: float) -> dict:
        seconds = now - self.started
        train_seconds = (self.test_started or now) - self.started
        row = {"phase": self.phase, "epoch": epoch + 1, "size": self.size, "seconds": round(seconds, 2),
               "train_seconds": round(train_seconds, 2), "val_seconds": round(now - (self.test_started or now), 2),
               "ms_per_tile": round(1000 * train_seconds / max(1, self.batches * (self.batch_size or 1)), 2),
               "batches": self.batches, "first_batch_seconds": round(self.first_batch_seconds or 0.0, 2),
               # From the last batch to validation (Keras replaces the input iterator there).
               "after_last_batch_seconds": round((self.test_started or now) - (self.last_batch_end or now), 2),
               "learning_rate": self._learning_rate() if self.last_lr is None else self.last_lr}
        row.update({k: float(v) for k, v in logs.items() if k != "learning_rate"})
        return row

    def _save(self, epoch: int, score: float) -> None:
        """The best weights if this epoch is best, the last model, then the state that names them."""
        tag = f"{self.phase}-{epoch + 1}"
        if self._ranks_above_best(score):
            self.state.update(best_score=float(score), best_phase=self.phase, best_epoch=epoch + 1,
                              best_size=self.size or self.final_size)
            self.checkpoint.save_best(self.state, self.model, tag,
                                      weights=self.average.weights() if self.average is not None else None)
        self.state["phase_epochs"] = {**self.state.get("phase_epochs", {}), str(self.phase): epoch + 1}
        self.record_progress()
        self.checkpoint.save_last(self.state, self.model, tag,
                                  averages=self.average.arrays() if self.average is not None else ())

    def record_progress(self) -> None:
        """Into the fold's state (written by the next commit): the clock's and the callbacks' state."""
        if self.clock is not None:
            self.state.update(self.clock.state_dict())
        resume = {}
        for callback in self.resumable:
            resume.update(callback.state_dict())
        self.state["resume"] = resume

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        now = time.perf_counter()
        row = self._row(epoch, logs, now)
        score = logs.get("val_score", -1.0) if self.validated else float("nan")
        row.setdefault("val_score", score)
        self._save(epoch, score)
        row["checkpoint_seconds"] = round(time.perf_counter() - now, 2)
        history = self.state.setdefault("history", [])
        history.append(row)
        with atomic_path(self.fold_dir / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False)
        self.checkpoint.commit(self.state)
        validation = (f"val_loss {logs.get('val_loss', float('nan')):.4f}  val_score {score:.4f}  "
                      f"(best {self.state['best_score']:.4f})" if self.validated else "(no validation)")
        self.log(
            f"fold {self.fold} phase {self.phase} epoch {epoch + 1}/{self.epochs}: "
            f"loss {logs.get('loss', float('nan')):.4f}  {validation}  {row['seconds']:.1f} s, "
            f"{row['ms_per_tile']:.1f} ms per training tile{f' at {self.size}x{self.size}' if self.size else ''}"
        )


def decayed_lr(peak: float, progress: float, schedule: str = "cosine") -> float:
    """The learning rate at ``progress`` (0..1) of a decay from ``peak`` to 0: half a cosine, or
    linear (the budget-aware schedule that Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020,
    found robust: reach 0 exactly when the budget ends)."""
    progress = min(1.0, max(0.0, progress))
    if schedule == "linear":
        return peak * (1.0 - progress)
    if schedule == "cosine":
        return 0.5 * peak * (1.0 + float(np.cos(np.pi * progress)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: {', '.join(SCHEDULES)}")


class TimeBudget(keras.callbacks.Callback):
    """Stop ``fit()`` cleanly before ``deadline`` (a ``time.monotonic()`` value).

    After each batch: if one more batch plus the epoch's validation pass would cross the deadline,
    training stops; Keras then still validates, so the epoch's score reaches the tracker. The
    validation time is measured on the previous epoch (or given as ``val_seconds``; else estimated
    from the batch time). With ``peak_lr`` it also sets the learning rate, decayed by ``schedule``
    over whichever ends first: the time ``horizon`` (start, end), by default now to the deadline,
    or ``total_steps`` batches, ``steps_done`` of which ran before this ``fit()`` (one phase can be
    several ``fit()`` calls, e.g. one per input size, on one schedule). A resumed phase passes
    its ``horizon`` shifted by the time it had spent, and its ``steps_done``, so that both go on
    (both kept by the phase's ``PhaseClock``).
    """

    def __init__(self, deadline: float, val_batches: int, peak_lr: float | None = None,
                 total_steps: int | None = None, schedule: str = "cosine",
                 horizon: tuple[float, float] | None = None, steps_done: int = 0,
                 val_seconds: float | None = None):
        super().__init__()
        self.deadline, self.val_batches = deadline, val_batches
        self.peak_lr, self.total_steps, self.schedule = peak_lr, total_steps, schedule
        self.horizon = horizon or (time.monotonic(), deadline)
        self.steps_done = steps_done
        self.steps = 0  # batches of this fit()
        self.batch_seconds = None
        self.val_seconds = val_seconds
        self.stopped = False

    def progress(self) -> float:
        start, end = self.horizon
        by_time = (time.monotonic() - start) / max(1e-9, end - start)
        by_steps = (self.steps_done + self.steps) / self.total_steps if self.total_steps else 0.0
        return min(1.0, max(by_time, by_steps))

    def _set_lr(self):
        if self.peak_lr is not None:
            synced(self.model).optimizer.learning_rate.assign(decayed_lr(self.peak_lr, self.progress(), self.schedule))

    def on_train_begin(self, logs=None):
        self._set_lr()

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        seconds = now - self.batch_started
        # The first batch includes tracing the step function (half a minute for a ResNet34 U-Net on
        # 2 cores): it says nothing about the next ones, so it only stops training past the
        # deadline, and the average starts at the second batch.
        self.steps += 1
        if self.steps == 1:
            expected = 0.0
        else:
            self.batch_seconds = seconds if self.steps == 2 else 0.8 * self.batch_seconds + 0.2 * seconds
            validation = self.val_seconds if self.val_seconds is not None else 0.5 * self.val_batches * self.batch_seconds
            expected = self.batch_seconds + validation
        if now + expected >= self.deadline:
            self.model.stop_training = True
            self.stopped = True
        self._set_lr()

    def on_test_begin(self, logs=None):
        self.test_started = time.monotonic()

    def on_test_end(self, logs=None):
        self.val_seconds = time.monotonic() - self.test_started


class _Resumable:
    """A Keras callback whose counters are saved each epoch and set again when a phase resumes.

    Keras resets them in ``on_train_begin``; a resumed phase 2 must go on counting flat epochs.
    Its part of the saved state is ``{state_key: counters}``.
    """

    COUNTERS: tuple[str, ...] = ()
    state_key = ""

    def __init__(self, *args, restore: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.restore = restore or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name, value in self.restore.items():
            setattr(self, name, value)

    def counters(self) -> dict:
        return {name: None if getattr(self, name) is None else float(getattr(self, name)) for name in self.COUNTERS}

    def state_dict(self) -> dict:
        return {self.state_key: self.counters()}

    def load_state_dict(self, state: dict) -> None:
        self.restore = state.get(self.state_key) or {}


class ResumableEarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    COUNTERS = ("wait", "best", "best_epoch")
    state_key = "early_stopping"


class ResumableReduceLROnPlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    COUNTERS = ("wait", "best", "cooldown_counter")
    state_key = "plateau"
