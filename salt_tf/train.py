"""Cross-validated training: per fold, phase 1 (SGD + BCE) then phase 2 (AdamW + Lovasz hinge).

Run folder::

    config.json  folds.csv  report.md  report.json
    fold{k}/model.keras  fold{k}/saved_model/  fold{k}/history.csv  fold{k}/logs/  fold{k}/oof.npz
    fold{k}/checkpoint/ (last epoch's model and state, for --resume; removed when the fold is done)

Every file is written atomically. The best model of a fold is the one with the best validation
competition score over both phases.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from salt_tf import figures
from salt_tf import folds as folds_mod
from salt_tf import pipeline
from salt_tf.atomic import atomic_path, write_text
from salt_tf.config import PRESETS, SCHEDULES, Config
from salt_tf.data import load_train
from salt_tf.encoders import ENCODERS
from salt_tf.keras_metrics import CompetitionScore
from salt_tf.losses import BCEWithLogits, LovaszHinge
from salt_tf.metrics import competition_score, tune_postprocessing
from salt_tf.model import build_unet
from salt_tf.predict import Ensemble, RunError, predict_probs
from salt_tf.sections import write_tile_stats

SYNTHETIC = dict(n_train=400, n_test=100, seed=0)


def synthetic_data_dir(cache: Path | None = None, log=print) -> Path:
    """The embedded synthetic data set, generated on first use into a cache folder."""
    from salt_tf import synthetic

    cache = cache or Path.home() / ".cache" / "salt_tf"
    root = cache / "synthetic-n{n_train}-t{n_test}-seed{seed}".format(**SYNTHETIC)
    if not (root / "train.csv").exists():
        log(f"No --data given: generating the synthetic data set into {root} (once)")
        synthetic.generate(root, **SYNTHETIC)
    else:
        log(f"No --data given: using the synthetic data set in {root}")
    return root


# --- callbacks --------------------------------------------------------------------------------


class FoldTracker(keras.callbacks.Callback):
    """Per epoch: the history row, the best-by-score weights, the resume checkpoint, a summary line.

    The row times the epoch's parts: training batches (``train_seconds``, and per training tile
    ``ms_per_tile``), the validation pass (``val_seconds``) and writing the checkpoints
    (``checkpoint_seconds``), and its first batch apart (``first_batch_seconds``: tracing the step
    function, or waiting for the input pipeline); ``size`` is the input size the epoch trained and
    validated at. The best weights are those of the best validation score at ``final_size`` (the
    size the model is exported at); an epoch of a progressive-resizing warm-up, validated at its
    smaller size, is best only until the first epoch at ``final_size``.
    """

    def __init__(self, fold_dir: Path, fold: int, phase: int, epochs: int, state: dict, log,
                 batch_size: int | None = None, size: int | None = None, extra_state=None,
                 final_size: int | None = None):
        super().__init__()
        self.fold_dir, self.fold, self.phase, self.epochs = fold_dir, fold, phase, epochs
        self.state, self.log = state, log
        self.batch_size, self.size, self.final_size = batch_size, size, final_size
        # Called at each epoch's end for what else a resume needs (time spent, the budget's and the
        # plateau/early-stopping callbacks' counters), saved with the checkpoint.
        self.extra_state = extra_state

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.test_started = None
        self.batches = 0
        self.first_batch_seconds = None
        self.last_batch_end = None
        self.last_lr = None

    def _learning_rate(self) -> float:
        lr = self.model.optimizer.learning_rate
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
        """By (validated at the final size, score): scores at a smaller size are not comparable."""
        held = self.state.get("best_score")
        if held is None:
            return True
        return (self._final(self.size), score) > (self._final(self.state.get("best_size")), held)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        now = time.perf_counter()
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
        score = logs.get("val_score", -1.0)
        if self._ranks_above_best(score):
            self.state.update(best_score=float(score), best_phase=self.phase, best_epoch=epoch + 1,
                              best_size=self.size or self.final_size)
            # Model weights only (no optimizer slots: phase 1 and 2 optimizers differ).
            with atomic_path(self.fold_dir / "checkpoint" / "best_weights.npz") as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, *[w.numpy() for w in self.model.weights])
        self.state["phase_epochs"] = {**self.state.get("phase_epochs", {}), str(self.phase): epoch + 1}
        if self.extra_state is not None:
            self.state.update(self.extra_state())
        with atomic_path(self.fold_dir / "checkpoint" / "last.keras") as tmp:
            self.model.save(tmp)
        row["checkpoint_seconds"] = round(time.perf_counter() - now, 2)
        history = self.state.setdefault("history", [])
        history.append(row)
        with atomic_path(self.fold_dir / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False)
        write_text(self.fold_dir / "checkpoint" / "state.json", json.dumps(self.state, indent=1))
        self.log(
            f"fold {self.fold} phase {self.phase} epoch {epoch + 1}/{self.epochs}: "
            f"loss {logs.get('loss', float('nan')):.4f}  val_loss {logs.get('val_loss', float('nan')):.4f}  "
            f"val_score {score:.4f}  (best {self.state['best_score']:.4f})  {seconds:.1f} s, "
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
    its ``horizon`` shifted by the time it had spent, and its ``steps_done``, so that both go on.
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
            self.model.optimizer.learning_rate.assign(decayed_lr(self.peak_lr, self.progress(), self.schedule))

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


# --- one fold -------------------------------------------------------------------------------------


def _phase_compile(model, config: Config, phase: int, steps: int, timed: bool = False):
    if phase == 1:
        # Timed (a deadline): TimeBudget sets the learning rate batch by batch. Untimed: a schedule
        # on the optimizer's step count, which goes on across the fit() calls of the phase.
        decay_steps = max(1, config.phase1_epochs * steps)
        if timed:
            schedule = config.phase1_lr
        elif config.phase1_schedule == "linear":
            schedule = keras.optimizers.schedules.PolynomialDecay(config.phase1_lr, decay_steps, 0.0, power=1.0)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(config.phase1_lr, decay_steps)
        optimizer = keras.optimizers.SGD(schedule, momentum=config.phase1_momentum)
        loss = BCEWithLogits()
    else:
        optimizer = keras.optimizers.AdamW(config.phase2_lr, weight_decay=config.phase2_weight_decay)
        loss = LovaszHinge(elu=config.lovasz_elu)
    model.compile(optimizer=optimizer, loss=loss, metrics=[CompetitionScore()])


def _stages(config: Config, phase: int, epochs: int) -> list[tuple[int, int, float]]:
    """The fit() calls of a phase: (input size, last epoch, share of the phase's time at its end).

    Phase 1 with progressive resizing: ``warmup_share`` of its epochs (under a budget: of its
    time, the epochs then a cap) at ``warmup_size``, the rest at ``size``. Else one call."""
    if phase == 1 and config.warmup_size and config.warmup_size != config.size:
        warm = min(epochs, max(1, round(config.warmup_share * epochs)))
        return [(config.warmup_size, warm, config.warmup_share), (config.size, epochs, 1.0)]
    return [(config.size, epochs, 1.0)]



class _Resumable:
    """A Keras callback whose counters are saved each epoch and set again when a phase resumes.

    Keras resets them in ``on_train_begin``; a resumed phase 2 must go on counting flat epochs.
    """

    COUNTERS: tuple[str, ...] = ()

    def __init__(self, *args, restore: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.restore = restore or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name, value in self.restore.items():
            setattr(self, name, value)

    def counters(self) -> dict:
        return {name: None if getattr(self, name) is None else float(getattr(self, name)) for name in self.COUNTERS}


class ResumableEarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    COUNTERS = ("wait", "best", "best_epoch")


class ResumableReduceLROnPlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    COUNTERS = ("wait", "best", "cooldown_counter")


def _phase_callbacks(config: Config, phase: int, fold_dir: Path, tracker, restore: dict | None = None):
    # Keras' own progress bar first, so that the summary line follows the finished bar.
    # The plateau and early-stopping callbacks before the tracker, which saves their counters.
    callbacks = [keras.callbacks.ProgbarLogger()]
    if phase == 2:
        restore = restore or {}
        callbacks += [
            ResumableReduceLROnPlateau("val_loss", factor=0.5, patience=config.phase2_lr_patience, verbose=0,
                                       restore=restore.get("plateau")),
            ResumableEarlyStopping("val_loss", patience=config.phase2_patience, restore_best_weights=False,
                                   restore=restore.get("early_stopping")),
        ]
    callbacks += [tracker, keras.callbacks.TensorBoard(str(fold_dir / "logs" / f"phase{phase}"), profile_batch=0)]
    return callbacks


def train_fold(config: Config, train, fold_table: pd.DataFrame, fold: int, run_dir: Path, log=print,
               deadline: float | None = None) -> dict:
    """Train one fold through both phases; write its model, SavedModel, history and OOF probs.

    ``deadline`` (a ``time.monotonic()`` value) ends training cleanly, phase 1 at
    ``config.phase1_share`` of the time left, phase 2 at the deadline.
    """
    fold_dir = run_dir / f"fold{fold}"
    if (fold_dir / "result.json").exists():
        log(f"fold {fold}: already done, skipping ({fold_dir / 'result.json'})")
        return json.loads((fold_dir / "result.json").read_text())
    in_val = fold_table.set_index("id").loc[train.ids, "fold"].to_numpy() == fold
    tr, va = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    log(f"fold {fold}: {len(tr)} training tiles, {len(va)} validation tiles")
    keras.utils.set_random_seed(config.seed * 1000 + fold)
    steps = config.steps_per_epoch or max(1, len(tr) // config.batch_size)
    val_batches = -(-len(va) // config.batch_size)

    checkpoint = fold_dir / "checkpoint"
    state = {}
    resumed = (checkpoint / "state.json").exists() and (checkpoint / "last.keras").exists()
    if resumed:
        state = json.loads((checkpoint / "state.json").read_text())
        model = keras.models.load_model(checkpoint / "last.keras")
        log(f"fold {fold}: resuming from {checkpoint / 'last.keras'} (epochs done: {state['phase_epochs']})")
    else:
        # With progressive resizing, one model for any input size (same layers and weights).
        size = None if config.warmup_size else config.size
        model = build_unet(config.encoder, size, config.encoder_weights, config.scse, config.hypercolumn,
                           dropout=config.dropout)
    sized_sets = {}  # input size -> (training, validation) datasets

    def datasets(size):
        """Training and validation data at one input size, built once. A warm-up stage validates at
        its own size: a quarter of the time at 64, and a score that says how the warm-up goes (the
        model at 64 read 0.16-0.34 at 128 while it trained to 0.68)."""
        if size not in sized_sets:
            sized = dataclasses.replace(config, size=size)
            train_ds = pipeline.train_dataset(train.images[tr], train.masks[tr], sized, seed=config.seed * 1000 + fold)
            sized_sets[size] = (train_ds.repeat() if config.steps_per_epoch else train_ds,
                                pipeline.eval_dataset(train.images[va], train.masks[va], sized))
        return sized_sets[size]

    times = state.setdefault("phase_seconds", {})
    # A resumed fold continues its clock: the budget it spent before the interruption (up to the
    # last finished epoch) counts against its deadline.
    fold_started = time.monotonic() - state.get("fold_seconds", 0.0)
    for phase, epochs in ((1, config.phase1_epochs), (2, config.phase2_epochs)):
        finished = state.get("phase_finished", [])
        if phase in finished or epochs == 0:
            continue
        done = state.get("phase_epochs", {}).get(str(phase), 0)
        continuing = resumed and done and state.get("current_phase") == phase
        if not continuing:
            _phase_compile(model, config, phase, steps, timed=deadline is not None)  # else: keep the restored optimizer
        state["current_phase"] = phase
        saved = state.get("resume", {}) if continuing else {}
        # The phase's clock and step count: a resumed phase goes on from the interrupted one's.
        phase_start = time.monotonic() - saved.get("budget_seconds", 0.0)
        phase_end = deadline
        if deadline is not None and phase == 1 and config.phase2_epochs and 2 not in finished:
            phase_end = fold_started + config.phase1_share * (deadline - fold_started)
        steps_done = saved.get("budget_steps", done * steps)
        val_seconds, val_size, budget, callbacks = None, config.size, None, []
        base_seconds = times.get(str(phase), 0.0)
        started = time.perf_counter()

        def resume_state():
            extra = {"fold_seconds": time.monotonic() - fold_started,
                     "phase_seconds": {**times, str(phase): base_seconds + time.perf_counter() - started}}
            resume = {"budget_seconds": time.monotonic() - phase_start,
                      "budget_steps": steps_done + (budget.steps if budget is not None else 0)}
            for callback in callbacks:
                if isinstance(callback, ResumableEarlyStopping):
                    resume["early_stopping"] = callback.counters()
                elif isinstance(callback, ResumableReduceLROnPlateau):
                    resume["plateau"] = callback.counters()
            return {**extra, "resume": resume}

        tracker = FoldTracker(fold_dir, fold, phase, epochs, state, log, batch_size=config.batch_size,
                              extra_state=resume_state, final_size=config.size)
        stages = _stages(config, phase, epochs)
        for index, (size, last_epoch, share) in enumerate(stages):
            done = state.get("phase_epochs", {}).get(str(phase), 0)
            if index < state.get("stages_done", {}).get(str(phase), 0) or done >= last_epoch:
                continue
            tracker.size = size
            callbacks = _phase_callbacks(config, phase, fold_dir, tracker, restore=saved)
            budget = None
            if phase_end is not None:
                if val_seconds is not None:  # measured at the previous stage's size: scale by the pixels
                    val_seconds *= (size / val_size) ** 2
                budget = TimeBudget(
                    phase_start + share * (phase_end - phase_start), val_batches=val_batches,
                    peak_lr=config.phase1_lr if phase == 1 else None, schedule=config.phase1_schedule,
                    total_steps=epochs * steps if phase == 1 else None,
                    horizon=(phase_start, phase_end), steps_done=steps_done, val_seconds=val_seconds,
                )
                callbacks.insert(0, budget)  # before the tracker, which logs the learning rate
            if len(stages) > 1:
                log(f"fold {fold} phase {phase}: input {size}x{size} from epoch {done + 1}"
                    + (f" for {share:.0%} of the phase's time" if budget is not None and share < 1 else ""))
            train_ds, val_ds = datasets(size)
            model.fit(
                train_ds, validation_data=val_ds, epochs=last_epoch, initial_epoch=done,
                steps_per_epoch=steps, callbacks=callbacks, verbose=1, shuffle=False,
            )
            if budget is not None:
                steps_done, val_seconds, val_size = steps_done + budget.steps, budget.val_seconds, size
            if index + 1 < len(stages):  # saved now, so that a resume does not reopen this stage
                state["stages_done"] = {**state.get("stages_done", {}), str(phase): index + 1}
                state.update(resume_state())
                write_text(checkpoint / "state.json", json.dumps(state, indent=1))
        times[str(phase)] = base_seconds + time.perf_counter() - started
        state["phase_seconds"] = times
        state["phase_finished"] = finished + [phase]
        state.pop("resume", None)
        if budget is not None and budget.stopped:
            state.setdefault("stopped_by_budget", []).append(phase)
        write_text(checkpoint / "state.json", json.dumps(state, indent=1))
        why = " (time budget spent)" if budget is not None and budget.stopped else ""
        log(f"fold {fold} phase {phase} done in {times[str(phase)]:.0f} s after "
            f"{state.get('phase_epochs', {}).get(str(phase), 0)} epochs{why}; best val_score so far "
            f"{state.get('best_score', float('nan')):.4f}")

    if not (checkpoint / "best_weights.npz").exists():
        raise RunError(f"fold {fold}: no epoch was trained (phase1_epochs {config.phase1_epochs}, "
                       f"phase2_epochs {config.phase2_epochs}); give at least one epoch")
    with np.load(checkpoint / "best_weights.npz") as best:
        model.set_weights([best[f"arr_{i}"] for i in range(len(best.files))])
    if model.input_shape[1] != config.size:  # trained at several sizes: export at config.size
        fixed = build_unet(config.encoder, config.size, None, config.scse, config.hypercolumn, dropout=config.dropout)
        fixed.set_weights(model.get_weights())
        model = fixed
    with atomic_path(fold_dir / "model.keras") as tmp:
        model.save(tmp)
    with atomic_path(fold_dir / "saved_model") as tmp:
        model.export(str(tmp), verbose=False)
    # Out-of-fold probabilities made exactly as predict.py makes them (the exported SavedModel, flip
    # TTA, the same function), so that the threshold tuned on them fits the submission's.
    probs = predict_probs(Ensemble([fold], [tf.saved_model.load(str(fold_dir / "saved_model"))], config.size),
                          train.images[va], batch_size=config.batch_size, tta=True, progress=False)
    with atomic_path(fold_dir / "oof.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, ids=train.ids[va], probs=probs.astype(np.float16))
    score = competition_score(train.masks[va], probs > 0.5)
    result = {
        "fold": fold, "val_score": state["best_score"], "val_score_101": score,
        "best_phase": state["best_phase"], "best_epoch": state["best_epoch"],
        "phase_seconds": times, "phase_epochs": state.get("phase_epochs", {}),
        "fold_seconds": time.monotonic() - fold_started,
        "stopped_by_budget": state.get("stopped_by_budget", []),
        "n_train": int(len(tr)), "n_val": int(len(va)),
    }
    write_text(fold_dir / "result.json", json.dumps(result, indent=1))
    _remove_checkpoint(checkpoint)
    log(f"fold {fold} done: best val_score {result['val_score']:.4f} (phase {result['best_phase']} "
        f"epoch {result['best_epoch']}), at 101x101 {score:.4f}")
    return result


def _remove_checkpoint(checkpoint: Path) -> None:
    for name in ("last.keras", "best_weights.npz", "state.json"):
        (checkpoint / name).unlink(missing_ok=True)
    checkpoint.rmdir()


# --- the whole run --------------------------------------------------------------------------------


def _strategy():
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def check_config(config: Config) -> None:
    """Refuse settings that would only fail later, after data loading or an epoch."""
    if config.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {config.encoder!r}; known encoders: {', '.join(ENCODERS)}")
    if config.size % 32:
        raise ValueError(f"--size {config.size} is not a multiple of 32; tiles are resized to it (try 128)")
    if config.stratify not in folds_mod.STRATIFY_BY:
        raise ValueError(f"--stratify must be one of {folds_mod.STRATIFY_BY}, not {config.stratify!r}")
    if config.fold is not None and not 0 <= config.fold < config.folds:
        raise ValueError(f"--fold {config.fold} is outside 0..{config.folds - 1}")
    if config.budget_min is not None and config.budget_min <= 0:
        raise ValueError(f"--budget-min {config.budget_min}: the time budget must be positive (minutes)")
    if config.warmup_size is not None and (config.warmup_size % 32 or not 0 < config.warmup_size < config.size):
        raise ValueError(f"--warmup-size {config.warmup_size}: must be a multiple of 32 below --size {config.size} (try 64)")
    if not 0.0 < config.warmup_share < 1.0:
        raise ValueError(f"--warmup-share {config.warmup_share}: must be in (0, 1)")
    if config.phase1_schedule not in SCHEDULES:
        raise ValueError(f"--phase1-schedule {config.phase1_schedule!r}: must be one of {', '.join(SCHEDULES)}")
    if not 0.0 < config.phase1_share <= 1.0:
        raise ValueError(f"--phase1-share {config.phase1_share}: must be in (0, 1]")
    if config.phase1_epochs < 0 or config.phase2_epochs < 0 or config.phase1_epochs + config.phase2_epochs == 0:
        raise ValueError(f"--phase1-epochs {config.phase1_epochs} --phase2-epochs {config.phase2_epochs}: "
                         "no epoch to train; give at least one epoch to one phase (and none negative)")
    if config.encoder_weights not in (None, "imagenet") and not Path(config.encoder_weights).is_file():
        raise ValueError(f"--encoder-weights {config.encoder_weights}: no such file")


class WeightsError(ValueError):
    """The encoder's pretrained weights are not available."""


def check_weights(config: Config) -> None:
    """Fetch the ImageNet weights (or find them in the Keras cache) before any folder is made."""
    if config.encoder_weights != "imagenet":
        return
    from salt_tf.encoders import imagenet_weights_path

    try:
        imagenet_weights_path(config.encoder)
    except FileNotFoundError as err:
        raise WeightsError(
            f"{err} To train without it: --encoder-weights PATH (a local copy of that file), "
            f"--encoder-weights none (random initialisation), or a preset that trains from scratch "
            f"(--preset {' / --preset '.join(sorted(PRESETS))})") from None


def _differences(saved: Config, config: Config) -> list[str]:
    """Settings that differ, the fold and the run folder aside (they name the process, not the run)."""
    return [f"{f.name}: {getattr(saved, f.name)!r} in config.json, {getattr(config, f.name)!r} now"
            for f in dataclasses.fields(Config) if f.name not in ("fold", "out")
            and getattr(saved, f.name) != getattr(config, f.name)]


def open_run_folder(out: Path, config: Config, fold_table: pd.DataFrame, ids, resume: bool = False) -> pd.DataFrame:
    """Create the run folder with config.json and folds.csv in one rename, or join the one there.

    Several ``--fold K`` processes may start at once: each prepares a complete folder beside ``out``
    and renames it into place; the rename fails for all but the first (the target is no longer
    empty), and the others compare their settings with the winner's and join. Returns the folds.
    """
    for _ in range(2):
        if (out / "config.json").exists():
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
        if resume:
            raise FileNotFoundError(f"{out}: no run to resume here (no config.json)")
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out}: folder exists and is not a run folder (no config.json); use another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        try:
            config.save(tmp / "config.json")
            folds_mod.write_folds(fold_table, tmp / "folds.csv")
            try:
                os.rename(tmp, out)  # atomic; replaces only a missing or empty folder
                return fold_table
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise FileExistsError(f"{out}: could not create or join this run folder")


def _budget_spent(out: Path, folds: list[int]) -> float:
    """Seconds of the time budget the given folds used before (finished or checkpointed)."""
    spent = 0.0
    for fold in folds:
        for path in (out / f"fold{fold}" / "result.json", out / f"fold{fold}" / "checkpoint" / "state.json"):
            if path.exists():
                spent += json.loads(path.read_text()).get("fold_seconds", 0.0)
                break
    return spent


def run(config: Config, resume: bool = False, log=print) -> dict:
    """Train the configured folds and write the run folder; return the report.

    Every setting, the weights and the data are checked before the run folder is created.
    """
    check_config(config)
    check_weights(config)
    out = Path(config.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    if resume and not (out / "config.json").exists():
        raise FileNotFoundError(f"{out}: no run to resume here (no config.json)")
    if not resume and out.exists() and any(out.iterdir()) and config.fold is None:
        raise FileExistsError(f"{out}: run folder exists and is not empty; use --resume to continue it or another --out")
    data_dir = Path(config.data) if config.data else synthetic_data_dir(log=log)
    train = load_train(data_dir)  # checks every file before any epoch
    config = dataclasses.replace(config, out=str(out), data=str(data_dir))
    fold_table = folds_mod.assign_folds(train.table, config.folds, config.seed, config.stratify)
    fold_table = open_run_folder(out, config, fold_table, train.ids, resume=resume)
    if not (out / "tile_stats.json").exists():
        write_tile_stats(out, train.images)  # grey levels the model saw, for segment.py's amplitude mapping

    wanted = [config.fold] if config.fold is not None else list(range(config.folds))
    log(f"run {out}: {len(train.ids)} tiles from {data_dir}, folds {wanted} of {config.folds}, "
        f"encoder {config.encoder}, size {config.size}, seed {config.seed}")
    # The budget starts now; a resumed run gets what is left of it.
    deadline = None
    if config.budget_min:
        deadline = time.monotonic() + 60 * config.budget_min - _budget_spent(out, wanted)
    # Keras' dtype policy is global: set it for the run only, so that models built after it in the
    # same process (tests, notebooks, benchmarks/real_data.py) are float32 again.
    policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        gpu = bool(tf.config.list_physical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        with _strategy().scope():
            for i, fold in enumerate(wanted):
                fold_deadline = None
                if deadline is not None:  # an equal share of the time left
                    now = time.monotonic()
                    fold_deadline = now + (deadline - now) / (len(wanted) - i)
                train_fold(config, train, fold_table, fold, out, log=log, deadline=fold_deadline)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    # Other --fold processes may finish meanwhile: write again until the report has every finished
    # fold (each writer re-reads after writing, so the last one to finish leaves them all).
    while True:
        report = write_report(out, train)
        if report["folds_done"] == _finished_folds(out):
            break
    log(f"cross-validation score {report['cv_score']:.4f} at threshold 0.5, {report['cv_score_tuned']:.4f} at the "
        f"tuned threshold {report['threshold']:.3f} and minimum salt area {report['min_area']} px "
        f"(out of fold, folds {report['folds_done']}); run folder {out}")
    return report


def _finished_folds(out: Path) -> list[int]:
    return [json.loads(p.read_text())["fold"] for p in sorted(out.glob("fold*/result.json"))]


def write_report(out: Path, train) -> dict:
    """report.json and report.md from every finished fold in the run folder."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("fold*/result.json"))]
    ids, probs = [], []
    for r in results:
        with np.load(out / f"fold{r['fold']}" / "oof.npz") as oof:
            ids.append(oof["ids"])
            probs.append(oof["probs"].astype(np.float32))
    ids, probs = np.concatenate(ids), np.concatenate(probs)
    masks = train.masks[pd.Index(train.ids).get_indexer(ids)]
    tuned = tune_postprocessing(masks, probs)
    threshold = tuned["threshold"]
    report = {
        "folds_done": [r["fold"] for r in results],
        "folds": results,
        "cv_score": tuned["score_before"],
        "threshold": threshold,
        "min_area": tuned["min_area"],
        "cv_score_tuned": tuned["score_after"],
        "n_oof": int(len(ids)),
    }
    write_text(out / "report.json", json.dumps(report, indent=1))
    lines = [
        f"# Run report: {out}", "",
        f"Out-of-fold competition score at 101x101: **{report['cv_score']:.4f}** at threshold 0.5, "
        f"**{report['cv_score_tuned']:.4f}** at the best threshold {threshold:.3f} with minimum salt "
        f"area {report['min_area']} px ({len(ids)} tiles).", "",
    ]
    histories = {r["fold"]: _read_history(out / f"fold{r['fold']}" / "history.csv") for r in results}
    if any(h is not None and len(h) for h in histories.values()):
        figures.learning_curves(out / "learning_curve.png", histories)
        lines += ["Validation score per epoch (phase 1 solid, phase 2 dashed, training score faint):", "",
                  "![learning curve](learning_curve.png)", ""]
    lines += [
        "| fold | best val score (model size) | val score at 101x101 | best phase/epoch | epochs phase 1/2 "
        "| phase 1 s | phase 2 s | ms per training tile, phase 1 / 2 (median) | phases ended by the time budget |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        t, e = r["phase_seconds"], r.get("phase_epochs", {})
        budget = ", ".join(map(str, r.get("stopped_by_budget", []))) or "-"
        history = histories[r["fold"]]
        lines.append(
            f"| {r['fold']} | {r['val_score']:.4f} | {r['val_score_101']:.4f} | {r['best_phase']}/{r['best_epoch']} "
            f"| {e.get('1', 0)}/{e.get('2', 0)} | {t.get('1', 0):.0f} | {t.get('2', 0):.0f} "
            f"| {_ms_per_tile(history)} | {budget} |"
        )
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return report


def _read_history(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def _ms_per_tile(history: pd.DataFrame | None) -> str:
    if history is None or "ms_per_tile" not in history:
        return "-"
    parts = []
    for phase in (1, 2):
        rows = history[history["phase"] == phase]
        if "size" in rows and rows["size"].nunique() > 1:  # progressive resizing: one figure per size
            parts.append(", ".join(f"{rows[rows['size'] == size]['ms_per_tile'].median():.1f} at {size:.0f}"
                                   for size in sorted(rows["size"].dropna().unique())))
        else:
            parts.append(f"{rows['ms_per_tile'].median():.1f}" if len(rows) else "-")
    return " / ".join(parts)
