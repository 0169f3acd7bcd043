"""The run folder's lifecycle: stale temporaries swept, a checkpoint consistent at every instant, and
a training run that, SIGKILLed at any of its file operations and resumed, ends as if never killed."""
import json
import os
import select
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scripts import ROOT

from salt_tf.run.folder import Checkpoint, held, sweep_temporaries


def test_sweep_removes_what_killed_writers_leave_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    (out / "fold0" / "checkpoint" / ".last.keras.ab12.tmp").mkdir(parents=True)
    (out / "fold0" / "checkpoint" / ".last.keras.ab12.tmp" / "last.keras").write_bytes(b"half")
    (out / "fold0" / ".saved_model.old" / "variables").mkdir(parents=True)
    (out / ".report.json.x9.tmp").mkdir()
    kept = [out / "config.json", out / "fold0" / "history.csv", out / "fold0" / "checkpoint" / "state.json"]
    for path in kept:
        path.write_text("{}")
    removed = sweep_temporaries(out)
    assert sorted(p.name for p in removed) == [".last.keras.ab12.tmp", ".report.json.x9.tmp", ".saved_model.old"]
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(kept)


def test_a_held_folder_is_swept_only_by_the_process_alone_in_it(tmp_path):
    out = tmp_path / "run"
    (out / ".a.json.1.tmp").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
                              "fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)", str(out)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with held(out, log=print):  # another process trains here: its temporaries may be alive
            assert (out / ".a.json.1.tmp").exists()
    finally:
        other.kill()
        other.wait()
    with held(out, log=print):
        assert not (out / ".a.json.1.tmp").exists()


def test_checkpoint_state_and_files_agree_whatever_write_was_interrupted(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    state = {"best_epoch": 1}
    checkpoint.save_best(state, model, "1-1")
    checkpoint.save_last(state, model, "1-1")
    checkpoint.commit(state)
    assert sorted(p.name for p in checkpoint.folder.iterdir()) == ["best_weights-1-1.npz", "last.npz", "state.json"]
    # Epoch 2 was better: its weights and model written, then a kill before state.json named them.
    model.set_weights([w + 1 for w in model.get_weights()])
    checkpoint.save_best(dict(state), model, "1-2")
    checkpoint.save_last(dict(state), model, "1-2")
    resumed, last = checkpoint.resume()
    assert resumed == state and last == checkpoint.folder / "last.npz"
    assert sorted(p.name for p in checkpoint.folder.iterdir()) == ["best_weights-1-1.npz", "last.npz", "state.json"]
    assert np.allclose(checkpoint.best_weights(resumed)[0], model.get_weights()[0] - 1)
    # A kill right after state.json named epoch 3's model, before it became last.npz: rolled forward.
    checkpoint.save_last(state, model, "1-3")
    (checkpoint.folder / "state.json").write_text(json.dumps(state))
    resumed, last = checkpoint.resume()
    assert resumed["last"] == "last-1-3.npz" and last.is_file() and not (checkpoint.folder / "last-1-3.npz").exists()
    assert np.allclose(Checkpoint.load_last(last)[0][0], model.get_weights()[0])


def test_a_checkpoint_written_as_a_keras_file_still_resumes(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    checkpoint.folder.mkdir()
    model.save(checkpoint.folder / "last-1-2.keras")  # as checkpoints before last.npz were written
    (checkpoint.folder / "state.json").write_text(json.dumps({"last": "last-1-2.keras", "phase_epochs": {"1": 2}}))
    (checkpoint.folder / "last-1-3.npz").write_bytes(b"an interrupted epoch")
    state, last = checkpoint.resume()
    assert state["phase_epochs"] == {"1": 2} and last == checkpoint.folder / "last.keras"
    assert sorted(p.name for p in checkpoint.folder.iterdir()) == ["last.keras", "state.json"]


def test_a_resumed_optimizer_takes_the_same_next_step(tmp_path):
    """The last checkpoint keeps the optimizer's slots, step count and rate: a model rebuilt from it,
    compiled afresh and given them steps exactly as the uninterrupted one does."""
    import keras

    def build():
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
        model.compile(keras.optimizers.AdamW(0.01, weight_decay=0.1), "mse")
        return model

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = build()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    model.optimizer.learning_rate.assign(0.004)  # as the plateau rule leaves it
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    state = {}
    checkpoint.save_last(state, model, "2-2")
    checkpoint.commit(state)
    _, last = checkpoint.resume()
    weights, optimizer_state, _ = Checkpoint.load_last(last)
    rebuilt = build()
    rebuilt.set_weights(weights)
    Checkpoint.restore_optimizer(rebuilt, optimizer_state, last)
    assert int(rebuilt.optimizer.iterations.numpy()) == 8
    assert float(rebuilt.optimizer.learning_rate.numpy()) == pytest.approx(0.004)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    rebuilt.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A fresh optimizer (no restored slots) steps elsewhere: the comparison above can fail.
    fresh = build()
    fresh.set_weights(weights)
    fresh.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert not np.array_equal(fresh.get_weights()[0], model.get_weights()[0])
    with pytest.raises(ValueError, match="optimizer variables saved"):
        Checkpoint.restore_optimizer(build(), optimizer_state[:-1], last)


# --- kill at any instant --------------------------------------------------------------------------

# Tiny and quick: 32x32, one batch per epoch, 3 epochs in phase 1 and 3 in phase 2, an eighth of 40 tiles validated (one batch).
# A budget far from running out, so that phase 1's cosine follows the steps (lr = peak/2 (1 + cos(pi
# e / 3)) after epoch e, whatever the kills), and a plateau patience of one epoch in phase 2, so that
# the history shows whether the budget's and the plateau's counters came back after each kill.
FLAGS = ["--size", "32", "--encoder", "resnet18", "--encoder-weights", "none", "--batch-size", "8",
         "--steps-per-epoch", "1", "--phase1-epochs", "3", "--phase1-lr", "0.02", "--phase2-epochs", "3",
         "--phase2-patience", "100", "--phase2-lr-patience", "1", "--budget-min", "30", "--folds", "8", "--fold", "0",
         # Not the default model and losses: the export's check below then also proves that training
         # and its resumes used the configured losses (salt_tf.model.losses.phase_loss) and decoder.
         "--decoder", "light", "--lovasz-symmetric", "--phase1-lovasz-weight", "0.5", "--phase2-bce-weight", "0.1",
         # A weight average: validated, kept and exported in place of the weights, and resumed.
         "--ema", "0.5"]
# When each process dies (tests/kill_at.py): "N" at its N-th file operation, within the epoch it
# re-trains, before it commits it (no progress: the next process re-trains it again); "+J" at the
# J-th operation after it first committed progress (state.json, result.json or report.json in
# place). One of each per epoch (each process trains an epoch before it dies: about 6 s), except
# that the process of the fourth "N" ("7") dies between the phases, removing its temporary folder just after
# recording phase 1 as finished; then two in the export and seven in the report's writes (a process
# that finds the fold done only writes the report: a fraction of a second). 21 kills.
WITHIN = ["9", "3", "12", "7", "11", "5"]
SCHEDULE = [rule for pair in zip(WITHIN, ["+1", "+2"] * 3) for rule in pair] + \
    ["+3", "+8", "+2", "3", "+5", "+6", "+9", "+10", "+11"]


class Server:
    """tests/kill_at.py --serve: one forked training process per request, killed as asked."""

    def __init__(self, folder, log, output):
        self.folder, self.log, self.output = str(folder), str(log), str(output)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kill_at.py"), "--serve"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def train(self, rule: str, flags: list[str], timeout: float = 600) -> int:
        request = {"folder": self.folder, "log": self.log, "rule": rule, "flags": flags, "stdout": self.output}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        while True:  # skip what the server's imports print
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            assert ready, f"no answer in {timeout} s to {request}"
            line = self.process.stdout.readline()
            assert line, "the server died"
            if line.startswith("{"):
                return json.loads(line)["status"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _killed_at(log) -> str:
    return [line for line in log.read_text().splitlines() if line.endswith(" KILL")][-1]


def _validation(out, data):
    """The fold's validation tiles at the run's size, as training validated them."""
    from salt_tf.run.config import Config
    from salt_tf.tiles import folds as folds_mod
    from salt_tf.tiles import pipeline
    from salt_tf.tiles.data import load_train

    config = Config.load(out / "config.json")
    train = load_train(data)
    table = folds_mod.read_folds(out / "folds.csv", ids=train.ids)
    va = table.set_index("id").loc[train.ids, "fold"].to_numpy() == 0
    return pipeline.eval_dataset(train.images[va], train.masks[va], config)


def _exported(out):
    import keras

    import salt_tf.model.unet  # noqa: F401  (registers the custom layers the file names)

    return keras.models.load_model(out / "fold0" / "model.keras", compile=False)


def _evaluate_export(out, data, phase: int) -> dict:
    """The exported model's validation loss (of the given phase's loss) and score."""
    from salt_tf.model.keras_metrics import CompetitionScore
    from salt_tf.model.losses import phase_loss
    from salt_tf.run.config import Config

    model = _exported(out)
    model.compile(loss=phase_loss(Config.load(out / "config.json"), phase), metrics=[CompetitionScore()])
    return model.evaluate(_validation(out, data), return_dict=True, verbose=0)


def _assert_schedules_continued(history):
    """Phase 1's cosine over the budget's steps and phase 2's plateau halving, as one unbroken run."""
    phase1 = history[history["phase"] == 1]["learning_rate"].to_numpy()
    assert phase1 == pytest.approx([0.01 * (1 + np.cos(np.pi * e / 3)) for e in range(1, 4)], abs=1e-6)
    # The logged rate (before that epoch's plateau check) halves exactly when val_loss failed to
    # improve for one epoch.
    lr, best, rates = 1e-4, None, []
    for val_loss in history[history["phase"] == 2]["val_loss"]:
        rates.append(lr)
        if best is None or val_loss < best - 1e-4:
            best = val_loss
        else:
            lr *= 0.5
    assert history[history["phase"] == 2]["learning_rate"].to_numpy() == pytest.approx(rates, rel=1e-5)


def test_a_run_killed_at_any_file_operation_resumes_to_an_unbroken_end(tiny_data, tmp_path):
    out, log, output = tmp_path / "runs" / "r", tmp_path / "ops.log", tmp_path / "output.txt"
    server = Server(out, log, output)
    kills = []
    try:
        for rule in SCHEDULE:
            flags = ["--resume", "--out", str(out)] if (out / "config.json").exists() else \
                ["--data", str(tiny_data), "--out", str(out), *FLAGS]
            status = server.train(rule, flags)
            if status == 0:
                break  # the run ended before this rule's operation
            assert status == -9, output.read_text()[-3000:]  # killed by the hook, nothing else
            state_path = out / "fold0" / "checkpoint" / "state.json"
            state = json.loads(state_path.read_text()) if state_path.exists() else {}
            kills.append((_killed_at(log), state.get("current_phase"), state.get("phase_finished", [])))
        else:
            assert server.train("0", ["--resume", "--out", str(out)]) == 0, output.read_text()[-3000:]
    finally:
        server.close()

    where = "\n".join(map(str, kills))
    assert len(kills) >= 20, where
    assert any("/.last-" in k[0] and ".tmp" in k[0] for k in kills), where  # inside a checkpoint's write
    assert any("/.best_weights-" in k[0] for k in kills) or any("state.json" in k[0] for k in kills), where
    assert {1, 2} <= {k[1] for k in kills}, where  # in both phases
    assert any(k[2] == [1, 2] or "report" in k[0] or "result" in k[0] for k in kills), where  # in the export
    history = pd.read_csv(out / "fold0" / "history.csv")
    assert list(zip(history["phase"], history["epoch"])) == [(1, e) for e in range(1, 4)] + [(2, e) for e in range(1, 4)]
    _assert_schedules_continued(history)
    result = json.loads((out / "fold0" / "result.json").read_text())
    best = history.iloc[int(np.argmax(history["val_score"].to_numpy()))]  # the first of the best scores
    assert (result["best_phase"], result["best_epoch"]) == (best["phase"], best["epoch"])
    exported = _evaluate_export(out, tiny_data, result["best_phase"])
    assert exported["loss"] == pytest.approx(best["val_loss"], rel=1e-4, abs=1e-5), history.to_string()
    assert exported["score"] == pytest.approx(best["val_score"], abs=1e-6)
    assert json.loads((out / "report.json").read_text())["folds_done"] == [0]
    assert any(layer.name == "decoder_stage1_skip_conv" for layer in _exported(out).layers)  # the light decoder
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.name.startswith(("last-", "best_weights"))]
    assert not leftovers and not (out / "fold0" / "checkpoint").exists()
