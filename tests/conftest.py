"""Shared fixtures. The real competition data is read from ../shared/tgs beside the project root
(SALT_TF_TGS_DIR overrides that path), real seismic from ../shared/realdata (SALT_TF_REALDATA_DIR).
Neither is ever copied into the project.

One tiny trained run is made per session (``tiny_run``) for every test that only reads a run. The
suite runs in two pytest-xdist workers (pyproject.toml: much of a test's time is single-threaded
Python, tracing and saving); the session's data and run are made once for both, by whichever
worker asks first, under a lock."""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from scripts import TINY, start_cli

from salt_tf.tiles.data import real_data_dir, real_seismic_dir

# Two workers on two cores: each TensorFlow process (a worker, and the training and segmenting
# processes it starts, which inherit this) computes on one thread, as segment.py's Dask workers do,
# rather than two that fight the other worker's for its core: 292 s against 304-307 s on one host,
# no change on the same host later, slower (benchmarks/RESULTS.md, "The suite, one TensorFlow thread
# per worker").
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# The order in which xdist hands whole files to the two workers (pyproject.toml: --dist loadfile
# --no-loadscope-reorder), the rest after these in their own order. test_train.py starts the
# session's tiny run (two training processes: both cores) while the other worker waits for it in
# test_predict.py, which then goes on to test_folder.py's kill sweep (one process for about two
# minutes) beside the rest of test_train.py; the kill sweep no longer runs alone at the end, nor
# beside the tiny run. benchmarks/RESULTS.md, "Eighth session: back under the limit". The JAX job
# (test_backends.py, a process of about a minute) comes next, not last, where it would run alone;
# so does test_survey_tiles.py (a minute of training), which last left one worker busy for a minute
# after the other had run out of files.
FIRST = ("test_train.py", "test_predict.py", "test_folder.py", "test_backends.py", "test_encoders.py", "test_unet.py",
         "test_survey_tiles.py", "test_distributed.py", "test_segment_surveys.py", "test_layers.py", "test_segment.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: each file's own order kept


def _present(path: Path, probe: str, what: str, variable: str) -> Path:
    if not (path / probe).is_file():
        pytest.fail(f"{what} not found at {path}; set {variable} to its folder")
    return path


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    return _present(real_seismic_dir(), "README.md", "real seismic data", "SALT_TF_REALDATA_DIR")


@pytest.fixture(scope="session")
def tgs_dir() -> Path:
    return _present(real_data_dir(), "train.csv", "real TGS data", "SALT_TF_TGS_DIR")


@contextmanager
def _shared(tmp_path_factory, name: str):
    """A folder shared by this session's workers, held under a lock: (folder, whether it is done)."""
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):  # an xdist worker's: beside the other workers' folders
        root = root.parent
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder, (folder / "done").exists()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A synthetic data set of 40 training and 12 test tiles."""
    from salt_tf.tiles import synthetic

    with _shared(tmp_path_factory, "data") as (folder, done):
        if not done:
            synthetic.generate(folder / "synthetic", n_train=40, n_test=12, seed=5)
            (folder / "done").touch()
    return folder / "synthetic"


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> tuple[Path, str]:
    """Two --fold processes started at the same time into one run folder (the README's way): the
    run folder and their output."""
    with _shared(tmp_path_factory, "run") as (folder, done):
        out, failed = folder / "run", folder / "failed.txt"
        if failed.exists():  # the other worker tried: its error, not a second run into its folder
            pytest.fail(f"the session's tiny run failed (in the other worker):\n{failed.read_text()}")
        if not done:
            try:
                processes = [start_cli("--data", tiny_data, "--out", out, *TINY, "--fold", k) for k in (0, 1)]
                outputs = [p.communicate(timeout=900) for p in processes]
                errors = [stdout[-3000:] + stderr[-3000:] for p, (stdout, stderr) in zip(processes, outputs) if p.returncode]
            except Exception as err:  # a timeout, say
                errors = [repr(err)]
            if errors:
                folder.mkdir(exist_ok=True)
                failed.write_text("\n".join(errors))
                pytest.fail(f"the session's tiny run failed:\n{failed.read_text()}")
            (folder / "stdout.json").write_text(json.dumps(outputs[0][0] + outputs[1][0]))
            (folder / "done").touch()
    return out, json.loads((folder / "stdout.json").read_text())


@pytest.fixture
def eager():
    """Keras' step functions run eagerly for this test: a tiny training, or a comparison of two
    models on a few tiles, traces nothing (tracing a U-Net's train, test or predict step costs more
    than the few batches these tests run). The traced path is what the session's ``tiny_run``, the
    CLI trainings and the round-trip and export tests take."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
