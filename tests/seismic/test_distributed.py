"""segment.py's distributed mode (salt_tf/seismic/distributed.py) on a local Dask cluster of 2 worker
processes: the same files as the single-process path, also when a worker process is killed mid-run;
a crashed run finished by the same command without computing its finished chunks again; the run's
ensemble loaded once per worker; every bad setting one error line with nothing written."""
import json
import os
from pathlib import Path

import dask_standins as standins
import numpy as np
import pytest
from dask import distributed
from scripts import load_script
from test_segment import context_export, quiet, synth, tiny_export  # noqa: F401  (test_segment's fixtures)

from salt_tf.common.errors import SectionError
from salt_tf.seismic.distributed import Cluster
from salt_tf.seismic.segment import run

CLI = load_script("segment.py", "segment_cli_distributed")
FILES = ("probability.npy", "uncertainty.npy", "mask.npy", "bodies.npy", "probability.sgy", "uncertainty.sgy",
         "salt_surfaces.csv", "bodies.csv")




@pytest.fixture(scope="module")
def scheduler():
    """A cluster as a user would run one: 2 single-threaded worker processes; its address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def segment(synth, out, folder, cluster=None, model=None, **options):
    folder.mkdir(exist_ok=True)
    options = {"model": model or standins.Counting(folder), "progress": False, "log": quiet, "warn": quiet,
               "min_body": 1, "n_figures": 1, **options}
    return run(None, synth / "volume.sgy", out, cluster=cluster, **options)


@pytest.fixture(scope="module")
def single(synth, tmp_path_factory):
    """The single-process outputs, by direction."""
    folder, made = tmp_path_factory.mktemp("single"), {}

    def get(direction):
        if direction not in made:
            segment(synth, folder / direction, folder / f"calls_{direction}", direction=direction)
            made[direction] = folder / direction
        return made[direction]
    return get


def assert_same(got: Path, expected: Path, direction: str):
    """Bit for bit, except the pooled uncertainty of direction both: its crossline pass is stored as
    float16 before pooling (in memory, unrounded, by the single process), which moves it by float16
    rounding at most."""
    for name in FILES:
        if name == "uncertainty.npy" and direction == "both":
            a, b = (np.load(p / name).astype(np.float32) for p in (got, expected))
            np.testing.assert_allclose(a, b, rtol=2.0**-10, atol=1e-6)
            assert not np.array_equal(b, 0 * b)  # a real uncertainty, not zeros
        elif name == "uncertainty.sgy" and direction == "both":
            continue  # the same values as uncertainty.npy
        else:
            assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    a, b = (json.loads((p / "segment.json").read_text()) for p in (got, expected))
    assert a["disagreement_per_line"] == b["disagreement_per_line"]
    assert a["domain_check"]["lines"]["mean_probability"] == b["domain_check"]["lines"]["mean_probability"]


@pytest.mark.parametrize("direction", ["inline", "crossline"])  # both: in the two tests after this one
def test_two_workers_write_the_single_process_files(synth, scheduler, single, tmp_path, direction):
    out = tmp_path / "out"
    summary = segment(synth, out, tmp_path / "calls", Cluster(scheduler=scheduler, task_lines=3), direction=direction)
    assert_same(out, single(direction), direction)
    n_tasks = {"inline": 5, "crossline": 24}[direction]  # ceil(14 / 3) inline, ceil(70 / 3) crossline tasks
    assert summary["cluster"]["tasks"] == summary["cluster"]["tasks_computed"] == n_tasks
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "out"]  # the store is removed after success



def test_minmax_windows_on_two_workers_write_the_single_process_files(synth, scheduler, single, tmp_path):
    """The amplitude map carries how windows are made: the workers frame them as the process does."""
    segment(synth, tmp_path / "single", tmp_path / "calls_single", windows="minmax")
    out = tmp_path / "out"
    summary = segment(synth, out, tmp_path / "calls", Cluster(scheduler=scheduler, task_lines=3), windows="minmax")
    assert summary["amplitude_map"]["windows"] == "minmax"
    assert_same(out, tmp_path / "single", "inline")
    assert (out / "probability.npy").read_bytes() != (single("inline") / "probability.npy").read_bytes()

def test_a_worker_killed_mid_run_is_replaced_and_the_result_is_the_same(synth, single, tmp_path):
    """A real process kill (os._exit in the worker at its 6th call, once): the local cluster's
    nanny starts a new worker, Dask runs the lost task again, the run finishes as if nothing happened."""
    killer = standins.KillOnce(tmp_path / "calls", at=6)
    out = tmp_path / "out"
    summary = segment(synth, out, tmp_path / "calls", Cluster(workers=2, task_lines=2), model=killer, direction="both")
    assert (tmp_path / "calls" / "killed").exists()
    assert_same(out, single("both"), "both")
    assert summary["cluster"]["tasks_computed"] == summary["cluster"]["tasks"] == 7 + 35
    assert len(killer.calls()) > 42  # the killed call, and any other lost with its worker, ran again


def test_a_crashed_run_is_finished_by_the_same_command_without_computing_its_chunks_again(synth, scheduler, single,
                                                                                         tmp_path):
    out, store = tmp_path / "out", tmp_path / "store.zarr"
    with pytest.raises(RuntimeError, match="stand-in crash"):
        segment(synth, out, tmp_path / "crash", Cluster(scheduler=scheduler, store=store, task_lines=2),
                model=standins.CrashAfter(tmp_path / "crash", after=12), direction="both")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["crash", "store.zarr"]
    done = sorted(p.name for p in (store / "done").iterdir())
    assert len(done) == 12  # the tasks of the first 12 calls, one call a task (the run waited for them)

    # Another setting: refused, one error naming the difference; the store is left as it was.
    with pytest.raises(SectionError, match=r"store.zarr: store made with other settings \(stride 50 there, 40 here\)"):
        segment(synth, out, tmp_path / "crash", Cluster(scheduler=scheduler, store=store, task_lines=2),
                direction="both", stride=40)
    assert sorted(p.name for p in (store / "done").iterdir()) == done and not out.exists()

    counting = standins.Counting(tmp_path / "rerun")
    summary = segment(synth, out, tmp_path / "rerun", Cluster(scheduler=scheduler, store=store, task_lines=2),
                      model=counting, direction="both")
    assert summary["cluster"]["tasks_reused"] == len(done)
    assert len(counting.calls()) == summary["cluster"]["tasks_computed"] == 42 - len(done)  # one model call per task
    assert_same(out, single("both"), "both")
    assert not store.exists()


def test_the_command_loads_the_runs_ensemble_once_per_worker(synth, scheduler, tiny_export, tmp_path, capsys):  # noqa: F811
    common = ["--run", str(tiny_export), "--input", str(synth / "volume.npy"), "--lines", "1:6", "--stride", "40",
              "--figures", "0"]
    assert CLI.main(common + ["--out", str(tmp_path / "single")]) == 0
    assert CLI.main(common + ["--out", str(tmp_path / "dask"), "--scheduler", scheduler, "--task-lines", "1",
                              "--keep-store"]) == 0
    said = capsys.readouterr().out
    assert "dashboard: http://" in said and "kept the store" in said
    for name in ("probability.npy", "uncertainty.npy"):  # TF in other processes: the same up to float16 rounding
        a, b = (np.load(tmp_path / d / name).astype(np.float32) for d in ("single", "dask"))
        np.testing.assert_allclose(a, b, atol=2e-3)
    summary = json.loads((tmp_path / "dask" / "segment.json").read_text())
    assert summary["cluster"]["tasks"] == 6 and (tmp_path / "dask.zarr" / "settings.json").is_file()
    with distributed.Client(scheduler) as client:
        loads = client.run(lambda: __import__("salt_tf.seismic.distributed").seismic.distributed.loads)
    assert sorted(loads.values()) in ([0, 1], [1, 1])  # 6 tasks, at most one load per worker


def test_a_run_that_reads_with_context_gives_the_single_process_files(synth, scheduler, context_export, tmp_path,  # noqa: F811
                                                                     capsys):
    """The workers cut the windows with the run's margin (it travels in the amplitude map) and read them
    at the context's size, as the single process does."""
    common = ["--run", str(context_export), "--input", str(synth / "volume.npy"), "--lines", "1:4", "--figures", "0"]
    assert CLI.main(common + ["--out", str(tmp_path / "single")]) == 0
    assert CLI.main(common + ["--out", str(tmp_path / "dask"), "--scheduler", scheduler, "--task-lines", "2"]) == 0
    for name in ("probability.npy", "uncertainty.npy"):
        a, b = (np.load(tmp_path / d / name).astype(np.float32) for d in ("single", "dask"))
        np.testing.assert_allclose(a, b, atol=2e-3)
    summary = json.loads((tmp_path / "dask" / "segment.json").read_text())
    assert summary["amplitude_map"]["context"] == 20 and summary["cluster"]["tasks"] == 2


def test_a_2d_line_and_an_image_give_the_single_process_files(synth, scheduler, tmp_path):
    import cv2

    image = np.clip(np.random.default_rng(4).normal(120, 30, (150, 260)), 0, 255).astype(np.uint8)  # rows = samples
    cv2.imwrite(str(tmp_path / "line.tif"), image)
    for path in (synth / "section.sgy", tmp_path / "line.tif"):
        made = {}
        for mode, cluster in (("single", None), ("dask", Cluster(scheduler=scheduler, task_lines=1))):
            made[mode] = tmp_path / f"{path.stem}_{mode}"
            run(None, path, made[mode], model=standins.Counting(tmp_path), progress=False, log=quiet, warn=quiet,
                n_figures=1, cluster=cluster)
        names = ("probability.npy", "uncertainty.npy", "mask.npy") + ("probability.sgy",) * (path.suffix == ".sgy")
        for name in names:
            assert (made["dask"] / name).read_bytes() == (made["single"] / name).read_bytes(), (path.name, name)


def test_an_input_error_found_by_a_worker_is_one_error_and_removes_the_store(scheduler, tmp_path):
    cube = np.random.default_rng(0).normal(size=(20, 30, 40)).astype(np.float32)
    cube[7, 10, 20] = np.nan  # a line that the amplitude sample skips: found by its task
    np.save(tmp_path / "v.npy", cube)
    with pytest.raises(SectionError, match=r"v.npy line 7: NaN or infinite amplitudes \(1 values, first at trace 10"):
        run(None, tmp_path / "v.npy", tmp_path / "out", model=standins.Counting(tmp_path), progress=False, log=quiet,
            cluster=Cluster(scheduler=scheduler, task_lines=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "v.npy"]


@pytest.mark.parametrize("flags, message", [
    (["--store", "s.zarr"], "--store, --keep-store and --task-lines need --workers or --scheduler"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers and --scheduler: give exactly one of them"),
    (["--workers", "0"], "--workers 0: must be at least 1"),
    (["--workers", "1", "--task-lines", "0"], "--task-lines 0: must be at least 1"),
    (["--workers", "1", "--store", "out/s.zarr"], "--store out/s.zarr: must lie outside the output folder out"),
    (["--workers", "1", "--store", "file.txt"], "--store file.txt: exists and is not a folder"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler tcp://127.0.0.1:1: cannot connect"),
])
def test_bad_cluster_settings_are_one_error_line_and_nothing_is_written(synth, tiny_export, tmp_path, capsys,  # noqa: F811
                                                                        monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("salt_tf.seismic.distributed.CONNECT_SECONDS", 1)
    Path("file.txt").write_text("not a store")
    code = CLI.main(["--run", str(tiny_export), "--input", str(synth / "volume.npy"), "--out", "out", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and message in err[-1], err
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
