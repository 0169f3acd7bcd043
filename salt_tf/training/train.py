"""Cross-validated training: per fold, phase 1 (SGD + BCE) then phase 2 (AdamW + Lovasz hinge).

Run folder::

    config.json  folds.csv  report.md  report.json
    fold{k}/model.keras  fold{k}/saved_model/  fold{k}/history.csv  fold{k}/logs/  fold{k}/oof.npz
    fold{k}/checkpoint/ (state.json, the last epoch's model and the best weights, for --resume;
                         removed when the fold is done)

On JAX and PyTorch (``KERAS_BACKEND``) the same recipe runs without TensorFlow and writes no
``logs/`` (TensorBoard) and no ``saved_model/``; inference loads ``model.keras`` there.
Every file is written atomically, and a process may be killed at any instant (see
``salt_tf.run.folder``). The best model of a fold is the one with the best validation competition
score over both phases. The callbacks are in ``salt_tf.training.callbacks``, the report in ``salt_tf.run.report``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from salt_tf.common import machine
from salt_tf.common.atomic import atomic_path, write_text
from salt_tf.inference.predict import RunError, load_ensemble, predict_probs
from salt_tf.model.keras_metrics import CompetitionScore
from salt_tf.model.losses import phase_loss
from salt_tf.model.unet import export_saved_model, inference_model
from salt_tf.run.config import Config, build_from_config, check_config
from salt_tf.run.folder import Checkpoint, budget_spent, finished_folds, held, open_run_folder
from salt_tf.run.report import write_report
from salt_tf.run.start import check_weights, start_model_path, start_weights
from salt_tf.run.tile_stats import write_tile_stats
from salt_tf.tiles import folds as folds_mod
from salt_tf.tiles import mosaics, pipeline, synthetic, windows_set
from salt_tf.tiles.data import load_train
from salt_tf.tiles.metrics import competition_score, truth_of
from salt_tf.training.callbacks import (FoldClock, FoldTracker, PhaseClock, ResumableEarlyStopping,
                                        ResumableReduceLROnPlateau, TimeBudget, WeightAverage)
from salt_tf.training.optimizers import FusedAdamW

# --- one phase ------------------------------------------------------------------------------------


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
    else:
        optimizer = FusedAdamW(config.phase2_lr, weight_decay=config.phase2_weight_decay)  # Keras' AdamW, fused
    model.compile(optimizer=optimizer, loss=phase_loss(config, phase), metrics=[CompetitionScore()])
    # Its slots made now, not by the first traced step: a tf.function that creates variables is
    # traced twice, so this saves one trace of the whole training step at every phase start
    # (benchmarks/first_fit.py).
    model.optimizer.build(model.trainable_variables)


def _stages(config: Config, phase: int, epochs: int) -> list[tuple[int, int, float]]:
    """The fit() calls of a phase: (input size, last epoch, share of the phase's time at its end).

    Phase 1 with progressive resizing: ``warmup_share`` of its epochs (under a budget: of its
    time, the epochs then a cap) at ``warmup_size``, the rest at ``size``. Else one call."""
    if phase == 1 and config.warmup_size and config.warmup_size != config.size:
        warm = min(epochs, max(1, round(config.warmup_share * epochs)))
        return [(config.warmup_size, warm, config.warmup_share), (config.size, epochs, 1.0)]
    return [(config.size, epochs, 1.0)]


def _phase_rules(config: Config, phase: int, validated: bool = True) -> list:
    """Phase 2's plateau and early-stopping callbacks; none in phase 1 (its schedule) or without validation."""
    if phase != 2 or not validated:
        return []
    return [ResumableReduceLROnPlateau("val_loss", factor=0.5, patience=config.phase2_lr_patience, verbose=0),
            ResumableEarlyStopping("val_loss", patience=config.phase2_patience, restore_best_weights=False)]


@dataclasses.dataclass
class _Fold:
    """One fold in training: what its phases and its export share."""

    config: Config
    train: object  # data.TrainData
    fold: int
    dir: Path
    tr: np.ndarray
    va: np.ndarray
    log: object
    deadline: float | None  # time.monotonic() at which the fold must be done
    checkpoint: Checkpoint
    state: dict
    model: keras.Model
    resumed: bool
    clock: FoldClock
    optimizer_state: list | None = None  # a resumed phase's saved optimizer variables, until compiled
    average: WeightAverage | None = None  # with config.ema: the fold's weight average
    sized_sets: dict = dataclasses.field(default_factory=dict)
    windows: tuple | None = None  # with config.sections: (images, labels) across the tile grid

    def section_windows(self) -> tuple[np.ndarray, np.ndarray]:
        """With ``config.sections``, windows across the sections' tile grid (``mosaics.sample_windows``),
        never touching this fold's validation tiles, drawn once per fold; else none."""
        if self.windows is None:
            config = self.config
            sections = mosaics.data_sections(config.sections, config.data, config.section_seams) if config.sections else ()
            self.windows = mosaics.sample_windows(sections, round(config.section_windows * len(self.tr)) if sections else 0,
                                                  config.seed * 1000 + self.fold, exclude=np.asarray(self.train.ids)[self.va])
            if sections:
                self.log(f"fold {self.fold}: {len(self.windows[0])} windows across the tile grid of {config.sections}")
        return self.windows

    @property
    def steps(self) -> int:
        n = len(self.tr) + len(self.section_windows()[0])
        return self.config.steps_per_epoch or max(1, n // self.config.batch_size)

    @property
    def validated(self) -> bool:
        """False for a survey's ``--folds 1``: no window to validate on, each phase's last epoch kept."""
        return len(self.va) > 0

    @property
    def val_batches(self) -> int:
        return -(-len(self.va) // self.config.batch_size)

    def datasets(self, size: int):
        """Training and validation data at one input size, built once. A warm-up stage validates at
        its own size: a quarter of the time at 64, and a score that says how the warm-up goes (the
        model at 64 read 0.16-0.34 at 128 while it trained to 0.68)."""
        if size not in self.sized_sets:
            config, train, tr, va = self.config, self.train, self.tr, self.va
            sized = dataclasses.replace(config, size=size)
            extra_images, extra_masks = self.section_windows()
            train_ds = pipeline.train_data(np.concatenate([train.images[tr], extra_images]),
                                           np.concatenate([train.masks[tr], extra_masks]), sized,
                                           seed=config.seed * 1000 + self.fold, repeat=bool(config.steps_per_epoch))
            val_ds = pipeline.eval_data(train.images[va], train.masks[va], sized) if self.validated else None
            self.sized_sets[size] = (train_ds, val_ds)
        return self.sized_sets[size]


def _phase_end(f: _Fold, phase: int) -> float | None:
    """When the phase must end: phase 1 at ``phase1_share`` of the fold's time, phase 2 at its deadline."""
    if f.deadline is None:
        return None
    if phase == 1 and f.config.phase2_epochs and 2 not in f.state.get("phase_finished", []):
        return f.clock.started + f.config.phase1_share * (f.deadline - f.clock.started)
    return f.deadline


def _budget(f: _Fold, phase: int, epochs: int, share: float, clock: PhaseClock, phase_end: float | None,
            val_seconds: float | None) -> TimeBudget | None:
    """A stage's time budget: its share of the phase's time; phase 1's learning rate by the clock."""
    if phase_end is None:
        return None
    return TimeBudget(clock.start + share * (phase_end - clock.start), val_batches=f.val_batches,
                      peak_lr=f.config.phase1_lr if phase == 1 else None, schedule=f.config.phase1_schedule,
                      total_steps=epochs * f.steps if phase == 1 else None,
                      horizon=(clock.start, phase_end), steps_done=clock.steps, val_seconds=val_seconds)


def _stage_callbacks(f: _Fold, phase: int, clock: PhaseClock, budget: TimeBudget | None, rules: list,
                     tracker: FoldTracker) -> list:
    # The weight average first (it swaps itself in for validation). The budget before the tracker
    # (it sets the learning rate the tracker logs), Keras' progress bar before the summary line, the
    # plateau and early-stopping rules before the tracker, which saves their counters.
    # TensorBoard's writer is TensorFlow's: on the other backends history.csv is the record.
    board = ([keras.callbacks.TensorBoard(str(f.dir / "logs" / f"phase{phase}"), profile_batch=0)]
             if keras.backend.backend() == "tensorflow" else [])
    return [clock, *([f.average] if f.average is not None else []), *([budget] if budget is not None else []),
            keras.callbacks.ProgbarLogger(), *rules, tracker, *board]


def _fit_stage(f: _Fold, size: int, done: int, last_epoch: int, callbacks: list) -> None:
    """One fit() call: a stage's epochs at its input size, from the last epoch done."""
    train_ds, val_ds = f.datasets(size)
    f.model.fit(train_ds, validation_data=val_ds, epochs=last_epoch, initial_epoch=done,
                steps_per_epoch=f.steps, callbacks=callbacks, verbose=1, shuffle=False)


def _train_phase(f: _Fold, phase: int, epochs: int) -> None:
    """A phase's stages, from where a resumed fold stopped; then the phase is recorded as finished."""
    config, state = f.config, f.state
    done = state.get("phase_epochs", {}).get(str(phase), 0)
    continuing = f.resumed and done and state.get("current_phase") == phase
    if not continuing or f.optimizer_state is not None:  # else: keep the optimizer a .keras checkpoint restored
        _phase_compile(f.model, config, phase, f.steps, timed=f.deadline is not None)
        if continuing:  # the phase's optimizer as the checkpoint left it: slots, step count, rate
            Checkpoint.restore_optimizer(f.model, f.optimizer_state, f.dir / "checkpoint")
    f.optimizer_state = None
    state["current_phase"] = phase
    clock, rules = PhaseClock(steps=done * f.steps), _phase_rules(config, phase, f.validated)
    for callback in (clock, *rules):
        callback.load_state_dict(state.get("resume", {}) if continuing else {})
    f.clock.start_phase(phase)
    tracker = FoldTracker(f.dir, f.fold, phase, epochs, state, f.log, batch_size=config.batch_size,
                          final_size=config.size, clock=f.clock, resumable=[clock, *rules], average=f.average,
                          validated=f.validated)
    phase_end, budget, val_seconds, val_size = _phase_end(f, phase), None, None, config.size
    stages = _stages(config, phase, epochs)
    for index, (size, last_epoch, share) in enumerate(stages):
        done = state.get("phase_epochs", {}).get(str(phase), 0)
        if index < state.get("stages_done", {}).get(str(phase), 0) or done >= last_epoch:
            continue
        if val_seconds is not None:  # measured at the previous stage's size: scale by the pixels
            val_seconds *= (size / val_size) ** 2
        budget = _budget(f, phase, epochs, share, clock, phase_end, val_seconds)
        tracker.size = size
        if len(stages) > 1:
            timed = f" for {share:.0%} of the phase's time" if budget is not None and share < 1 else ""
            f.log(f"fold {f.fold} phase {phase}: input {size}x{size} from epoch {done + 1}{timed}")
        _fit_stage(f, size, done, last_epoch, _stage_callbacks(f, phase, clock, budget, rules, tracker))
        if budget is not None:
            val_seconds, val_size = budget.val_seconds, size
        if index + 1 < len(stages):  # saved now, so that a resume does not reopen this stage
            state["stages_done"] = {**state.get("stages_done", {}), str(phase): index + 1}
            tracker.record_progress()
            f.checkpoint.commit(state)
    _finish_phase(f, phase, stopped=budget is not None and budget.stopped)


def _finish_phase(f: _Fold, phase: int, stopped: bool) -> None:
    state = f.state
    seconds = f.clock.end_phase()
    state["phase_seconds"] = dict(f.clock.times)
    state["phase_finished"] = state.get("phase_finished", []) + [phase]
    state.pop("resume", None)
    if stopped:
        state.setdefault("stopped_by_budget", []).append(phase)
    f.checkpoint.commit(state)
    f.log(f"fold {f.fold} phase {phase} done in {seconds:.0f} s after "
          f"{state.get('phase_epochs', {}).get(str(phase), 0)} epochs{' (time budget spent)' if stopped else ''}"
          + (f"; best val_score so far {state.get('best_score', float('nan')):.4f}" if f.validated else ""))


# --- one fold -------------------------------------------------------------------------------------


def _start_fold(config: Config, train, fold_table: pd.DataFrame, fold: int, fold_dir: Path, log,
                deadline: float | None) -> _Fold:
    """Split the tiles, then resume the fold from its checkpoint or build a fresh model."""
    in_val = fold_table.set_index("id").loc[train.ids, "fold"].to_numpy() == fold
    tr, va = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    if config.survey:  # whole lines; none within the gap of a validation line is trained on
        tr = windows_set.training_rows(train.depths, in_val, config.gap)
    log(f"fold {fold}: {len(tr)} training tiles, {len(va)} validation tiles")
    keras.utils.set_random_seed(config.seed * 1000 + fold)
    checkpoint = Checkpoint(fold_dir / "checkpoint")
    state, last = checkpoint.resume()
    optimizer_state, averages = None, None
    if last is not None and last.suffix == ".keras":  # a checkpoint written before last.npz
        model = keras.models.load_model(last)
    else:
        # With progressive resizing, one model for any input size (same layers and weights).
        size = None if config.warmup_size else config.size
        fresh = last is None and not config.init_from
        model = build_from_config(config, size, config.encoder_weights if fresh else None)
        if last is None and config.init_from:  # fine-tuning: the start run's weights, exactly
            model.set_weights(start_weights(config, fold, model))
            log(f"fold {fold}: starting from {start_model_path(config, fold)}")
        if last is not None:
            weights, optimizer_state, averages = Checkpoint.load_last(last)
            model.set_weights(weights)
    if last is not None:
        log(f"fold {fold}: resuming from {last} (epochs done: {state['phase_epochs']})")
    # A resumed fold continues its clock: the budget it spent before the interruption (up to the
    # last finished epoch) counts against its deadline.
    return _Fold(config, train, fold, fold_dir, tr, va, log, deadline, checkpoint, state, model,
                 resumed=last is not None, clock=FoldClock(state), optimizer_state=optimizer_state,
                 average=WeightAverage(config.ema, averages) if config.ema else None)


def _export(f: _Fold) -> keras.Model:
    """The best epoch's weights, at ``config.size``, as model.keras and saved_model/."""
    config = f.config
    weights = f.checkpoint.best_weights(f.state)
    if weights is None:
        raise RunError(f"fold {f.fold}: no epoch was trained (phase1_epochs {config.phase1_epochs}, "
                       f"phase2_epochs {config.phase2_epochs}); give at least one epoch")
    model = f.model
    model.set_weights(weights)
    if model.input_shape[1] != pipeline.data_size(config):  # trained at several sizes: export at config.size
        fixed = build_from_config(config, config.size)
        fixed.set_weights(model.get_weights())
        model = fixed
    model = inference_model(model)  # without the training-only heads, if any
    with atomic_path(f.dir / "model.keras") as tmp:
        model.save(tmp)
    if keras.backend.backend() == "tensorflow":
        with atomic_path(f.dir / "saved_model") as tmp:
            export_saved_model(model, tmp)
    return model


def _finish_fold(f: _Fold) -> dict:
    """Export, score out of fold, write result.json (the fold is done), drop the checkpoint."""
    _export(f)
    config, train, va, state = f.config, f.train, f.va, f.state
    # Out-of-fold probabilities made exactly as predict.py makes them (the exported model, flip TTA,
    # the same function), so that the threshold tuned on them fits the submission's.
    # Without validation (a survey's --folds 1) nothing is out of fold: an empty oof.npz, no score.
    probs, score = np.zeros((0, *train.masks.shape[1:]), np.float32), float("nan")
    if f.validated:
        exported = load_ensemble(f.dir.parent, folds=[f.fold])
        probs = predict_probs(exported, train.images[va], batch_size=config.batch_size, tta=True, progress=False)
        truth, labelled = truth_of(train.masks[va])  # a survey's windows: unlabelled pixels out
        score = competition_score(truth, probs > 0.5, labelled)
    with atomic_path(f.dir / "oof.npz") as tmp:
        with open(tmp, "wb") as out:
            np.savez_compressed(out, ids=train.ids[va], probs=probs.astype(np.float16))
    result = {
        "fold": f.fold, "val_score": state["best_score"], "val_score_101": score,
        "best_phase": state["best_phase"], "best_epoch": state["best_epoch"],
        "phase_seconds": dict(f.clock.times), "phase_epochs": state.get("phase_epochs", {}),
        "fold_seconds": f.clock.fold_seconds(),
        "stopped_by_budget": state.get("stopped_by_budget", []),
        "n_train": int(len(f.tr)), "n_val": int(len(va)),
    }
    write_text(f.dir / "result.json", json.dumps(result, indent=1))
    f.checkpoint.remove()
    f.log(f"fold {f.fold} done: best val_score {result['val_score']:.4f} (phase {result['best_phase']} epoch "
          f"{result['best_epoch']}), at 101x101 {score:.4f}" if f.validated else f"fold {f.fold} done without "
          f"validation: the model of phase {result['best_phase']} epoch {result['best_epoch']}, the last trained")
    return result


def train_fold(config: Config, train, fold_table: pd.DataFrame, fold: int, run_dir: Path, log=print,
               deadline: float | None = None) -> dict:
    """Train one fold through both phases; write its model, SavedModel, history and OOF probs.

    ``deadline`` (a ``time.monotonic()`` value) ends training cleanly, phase 1 at
    ``config.phase1_share`` of the time left, phase 2 at the deadline.
    """
    fold_dir = run_dir / f"fold{fold}"
    if (fold_dir / "result.json").exists():
        Checkpoint(fold_dir / "checkpoint").remove()  # if a kill interrupted its removal
        log(f"fold {fold}: already done, skipping ({fold_dir / 'result.json'})")
        return json.loads((fold_dir / "result.json").read_text())
    f = _start_fold(config, train, fold_table, fold, fold_dir, log, deadline)
    for phase, epochs in ((1, config.phase1_epochs), (2, config.phase2_epochs)):
        if phase not in f.state.get("phase_finished", []) and epochs:
            _train_phase(f, phase, epochs)
    return _finish_fold(f)


# --- the whole run --------------------------------------------------------------------------------


def _train_folds(config: Config, train, fold_table: pd.DataFrame, wanted: list[int], out: Path, log,
                 deadline: float | None) -> None:
    # Keras' dtype policy is global: set it for the run only, so that models built after it in the
    # same process (tests, notebooks, benchmarks/real_data.py) are float32 again.
    policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        chosen = machine.mixed_policy()
        if chosen is None:
            log("mixed precision: this CPU has no native bfloat16 (AVX-512 BF16, AMX or Arm BF16), where "
                "TensorFlow's emulation is about ten times slower than float32; training in float32")
        else:
            keras.mixed_precision.set_global_policy(chosen)
    gpus = machine.accelerators()
    log(f"keras on {machine.backend()}, {'GPU: ' + ', '.join(gpus) if gpus else 'the CPU'}; "
        f"dtype policy {keras.mixed_precision.global_policy().name}")
    try:
        with machine.strategy_scope():
            for i, fold in enumerate(wanted):
                fold_deadline = None
                if deadline is not None:  # an equal share of the time left
                    now = time.monotonic()
                    fold_deadline = now + (deadline - now) / (len(wanted) - i)
                train_fold(config, train, fold_table, fold, out, log=log, deadline=fold_deadline)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _final_report(out: Path, train) -> dict:
    # Other --fold processes may finish meanwhile: write again until the report has every finished
    # fold (each writer re-reads after writing, so the last one to finish leaves them all).
    while True:
        report = write_report(out, train)
        if report["folds_done"] == finished_folds(out):
            return report


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
    if config.survey:  # windows of a user's survey, folds of whole lines fixed by survey_tiles
        data_dir = Path(config.survey)
        train, fold_table = windows_set.load_for_training(data_dir, config.folds, config.gap)
    else:
        data_dir = Path(config.data) if config.data else synthetic.embedded_set(log=log)
        train = load_train(data_dir)  # checks every file before any epoch
        fold_table = folds_mod.assign_folds(train.table, config.folds, config.seed, config.stratify)
    config = dataclasses.replace(config, out=str(out), data=None if config.survey else str(data_dir))
    fold_table = open_run_folder(out, config, fold_table, train.ids, resume=resume)
    with held(out, log=log):
        if not (out / "tile_stats.json").exists():
            write_tile_stats(out, train.images)  # grey levels the model saw, for segment.py's amplitude mapping
        wanted = [config.fold] if config.fold is not None else list(range(config.folds))
        log(f"run {out}: {len(train.ids)} tiles from {data_dir}, folds {wanted} of {config.folds}, "
            f"encoder {config.encoder}, size {config.size}, seed {config.seed}")
        # The budget starts now; a resumed run gets what is left of it.
        deadline = None
        if config.budget_min:
            deadline = time.monotonic() + 60 * config.budget_min - budget_spent(out, wanted)
        _train_folds(config, train, fold_table, wanted, out, log, deadline)
        report = _final_report(out, train)
    log(f"cross-validation score {report['cv_score']:.4f} at threshold 0.5, {report['cv_score_tuned']:.4f} at the "
        f"tuned threshold {report['threshold']:.3f} and minimum salt area {report['min_area']} px "
        f"(out of fold, folds {report['folds_done']}); run folder {out}" if report["n_oof"] else
        f"no validation (--folds 1): the last epoch's model, threshold 0.5; run folder {out}")
    return report
