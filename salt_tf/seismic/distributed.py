"""Step 3 of segment.py on a Dask cluster: tasks of whole lines write probability and uncertainty
into a Zarr store, which the final process then streams into the outputs.

Used only with ``--workers N`` (a ``dask.distributed.LocalCluster`` of N single-threaded worker
processes) or ``--scheduler ADDRESS`` (a cluster the user runs, whose workers share the file system
with the input and the store); otherwise segment.py never imports this module.

Why tasks of whole lines and no halo: a line (an inline, or a crossline in the crossline pass) is
segmented on its own: its windows are cut from that line only (reflection-padded at its ends) and
blended back into it, so its probability depends on nothing outside it. A task of a few whole lines
needs no neighbours, and every task writes exactly one chunk of its pass's arrays.

The store (``--store``, by default ``OUT.zarr`` beside ``--out``), Zarr format 3:

    settings.json                   what its chunks were computed from; a rerun must match it
    inline/probability, inline/uncertainty        float16 (lines, traces, samples),
                                    chunked (task lines, traces, samples): one chunk per task
    crossline/probability, crossline/uncertainty  float16 (lines, traces, samples),
                                    chunked (lines, task crosslines, samples): one chunk per task
    done/inline-000003.json         one marker per finished task, written (atomically: a
                                    temporary file renamed) after its chunk

Only the passes of ``--direction`` are made. A rerun of the same command after a crash computes
only the tasks without a marker; a store made from other settings is refused. The store is removed
once the outputs are in place (kept with ``--keep-store``) and after an input error, which a rerun
would meet again; after any other failure (a worker lost too often, the cluster gone, an interrupt)
it is kept.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salt_tf.common.atomic import write_text
from salt_tf.common.errors import SectionError
from salt_tf.seismic.linestore import PASSES, Task, check_store, create_store, done_tasks, marker, plan, read_settings
from salt_tf.seismic.linestore import settings as store_settings

CONNECT_SECONDS = 30  # waiting for an existing scheduler and its first worker
DRAIN_SECONDS = 300  # after a failure, waiting for tasks that a cluster of the user's cannot stop


# --- on the workers: one task = a few whole lines -> one chunk ----------------------------------

@dataclass(frozen=True)
class Job:
    """What every task of a run needs, sent with each task (a few kB)."""
    input: str  # absolute path, opened by the workers
    name: str  # the input as the user gave it, for error messages
    iline_byte: int | None
    xline_byte: int | None
    chosen: np.ndarray  # indices of the lines segmented
    amap: object  # sections.AmplitudeMap
    stride: int
    batch_size: int
    store: str
    ensemble: tuple | None  # (run folder, batch size, tta, uncertainty): loaded once per worker
    model: object = None  # or a stand-in callable, sent with each task


_cache_lock = threading.Lock()
_models: dict = {}
_sources: dict = {}
loads = 0  # ensembles this worker process has loaded (once per run, whatever its number of tasks)


def _model(job: Job):
    """The run's ensemble, loaded the first time a task of this worker needs it."""
    global loads
    if job.ensemble is None:
        return job.model
    with _cache_lock:
        if job.ensemble not in _models:
            from salt_tf.seismic.segment import ensemble_model

            _models.clear()  # one run's ensemble per worker at a time
            _models[job.ensemble] = ensemble_model(*job.ensemble)[0]
            loads += 1
        return _models[job.ensemble]


def _source(job: Job):
    """The input, opened once per worker (a SEG-Y's geometry is read from all its trace headers)."""
    from salt_tf.seismic.seisio import open_source

    key = (job.input, job.iline_byte, job.xline_byte, os.stat(job.input).st_mtime_ns)
    with _cache_lock:
        if key not in _sources:
            for old in _sources.values():
                old.close()
            _sources.clear()
            _sources[key] = open_source(job.input, job.iline_byte, job.xline_byte)
        return _sources[key]


def segment_task(job: Job, direction: str, index: int, first: int, stop: int) -> dict:
    """Segment lines first..stop-1 of a pass (inlines: positions in ``job.chosen``; crosslines: trace
    positions), write them as one chunk of the store, then mark the task done."""
    import zarr

    from salt_tf.seismic import sections, segment

    clock = time.perf_counter()
    src, model, chosen = _source(job), _model(job), job.chosen
    n_traces, n_samples = src.shape[1:]
    if direction == "inline":
        each = sections.count_windows(n_samples, n_traces, job.stride, job.amap.scales)
        shape = (stop - first, n_traces, n_samples)

        def read(i):
            k = chosen[i]
            return src.line(k), src.live(k), f"{job.name} line {src.line_numbers[k]}"
    else:
        each = sections.count_windows(n_samples, len(chosen), job.stride, job.amap.scales)
        shape = (len(chosen), stop - first, n_samples)

        def read(j):
            return src.xline(j, chosen), src.xlive(j, chosen), f"{job.name} crossline {src.trace_numbers[j]}"
    prob, spread = np.empty(shape, np.float16), np.empty(shape, np.float16)
    quiet = segment.Progress(0, enabled=False)
    # The same groups of lines per model call as segment_lines when the task starts on a group
    # boundary (the default task size is a multiple of the group).
    for group in segment.line_groups(stop - first, each, job.batch_size):
        got = segment.window_probabilities([read(first + g) for g in group], job.amap, model, job.stride, quiet)
        for g, (p, u) in zip(group, got):
            if direction == "inline":
                prob[g], spread[g] = p, u
            else:
                prob[:, g], spread[:, g] = p, u
        src.release()
    region = np.s_[first:stop] if direction == "inline" else np.s_[:, first:stop]
    for name, values in (("probability", prob), ("uncertainty", spread)):
        zarr.open_array(Path(job.store) / direction / name, mode="r+")[region] = values
    result = {"direction": direction, "index": index, "first": first, "stop": stop, "windows": each * (stop - first),
              "seconds": time.perf_counter() - clock, "pid": os.getpid()}
    write_text(marker(Path(job.store), direction, index), json.dumps(result))
    return result


def running_tasks(token: str, dask_worker=None) -> int:
    """This run's tasks still running on a worker, cancelled or not (Dask cannot stop a running
    task); run on every worker by ``Client.run``."""
    return sum(1 for key, ts in dask_worker.state.tasks.items()
               if token in str(key) and ts.state in ("executing", "long-running", "cancelled", "resumed"))


# --- in the final process: the cluster, the store, streaming -------------------------------------

def _need_dask():
    try:
        import dask.distributed  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as err:
        raise SectionError(f"--workers/--scheduler need dask.distributed and zarr ({err}); install them with "
                           f"pip install -r requirements.txt") from None


def _drain(client, token: str, log) -> None:
    """Wait until no task of this run runs on the cluster any more (at most DRAIN_SECONDS)."""
    deadline, said = time.monotonic() + DRAIN_SECONDS, False
    while time.monotonic() < deadline:
        try:
            busy = sum(client.run(running_tasks, token).values())
        except (OSError, AttributeError):
            return  # the cluster is gone, or its workers keep no such state
        if not busy:
            return
        if not said:
            log(f"waiting for {busy} task(s) still running on the cluster")
            said = True
        time.sleep(0.2)


def _input_error(err: BaseException) -> bool:
    """A SectionError, or a RunError (salt_tf.inference.predict's: imported with TensorFlow, so only where a
    run's ensemble was loaded, as it is here when a worker's RunError reached this process)."""
    predict = sys.modules.get("salt_tf.inference.predict")
    return isinstance(err, SectionError) or (predict is not None and isinstance(err, predict.RunError))


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Cluster:
    """segment.py's distributed mode: where the workers are, where the store goes."""
    workers: int | None = None  # start a LocalCluster of this many worker processes ...
    scheduler: str | None = None  # ... or use the cluster at this address
    store: str | Path | None = None  # default: OUT.zarr beside OUT
    keep_store: bool = False
    task_lines: int | None = None  # lines (crosslines in the crossline pass) per task; default about TASK_WINDOWS windows
    report: dict = field(default_factory=dict)  # what segment.json records under "cluster"

    def check(self, out: Path, run_dir, model) -> None:
        """Every cluster setting checked before any file is opened or written."""
        if (self.workers is None) == (self.scheduler is None):
            raise SectionError("--workers and --scheduler: give exactly one of them (a local cluster of N worker "
                               "processes, or the address of a running Dask scheduler)" if self.workers is not None
                               else "--store, --keep-store and --task-lines need --workers or --scheduler")
        if self.workers is not None and self.workers < 1:
            raise SectionError(f"--workers {self.workers}: must be at least 1")
        if self.task_lines is not None and self.task_lines < 1:
            raise SectionError(f"--task-lines {self.task_lines}: must be at least 1")
        _need_dask()
        out = Path(out)
        self.path = Path(self.store) if self.store is not None else out.with_name(out.name + ".zarr")
        if self.path.absolute() == out.absolute() or out.absolute() in self.path.absolute().parents:
            raise SectionError(f"--store {self.path}: must lie outside the output folder {out}")
        if self.path.exists():
            if not self.path.is_dir():
                raise SectionError(f"--store {self.path}: exists and is not a folder")
            read_settings(self.path)
        else:
            parent = next(p for p in self.path.absolute().parents if p.exists())
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise SectionError(f"--store {self.path}: cannot create it: {parent} is not a writable folder")
        if model is None:
            from salt_tf.inference.predict import RunError, exported_kind

            run_dir = Path(run_dir)
            if not run_dir.is_dir():
                raise RunError(f"{run_dir}: run folder not found")
            _, file = exported_kind(run_dir)  # what the workers will load, as load_ensemble does
            if not any(run_dir.glob(f"fold*/{file}")):
                raise RunError(f"{run_dir}: no fold*/saved_model nor fold*/model.keras in this run folder; "
                               "train first (python train.py)")

    def describe(self, run_dir, model, tta: bool) -> str:
        what = f"the fold ensemble of {run_dir}{' with flip TTA' if tta else ''}" if model is None else "a given model"
        where = f"{self.workers} local worker process(es)" if self.workers else f"the Dask cluster at {self.scheduler}"
        return f"{what} on {where}"

    # -- step 3 --

    def segment_lines(self, inp, run_dir, model, amap, vol, direction: str, stride: int, batch_size: int,
                      tta: bool, uncertainty: bool, progress: bool, log) -> np.ndarray | None:
        """segment.segment_lines on the cluster: compute the tasks the store lacks, then fill ``vol``
        from the store; with ``both``, return the disagreement per inline."""
        src = inp.src
        shape = (len(inp.chosen), *src.shape[1:])
        per_task, tasks = plan(*shape, direction, stride, batch_size, self.task_lines)
        settings = store_settings(inp, run_dir, model, amap, direction, stride, tta, uncertainty, per_task)
        reused = self.path.exists()
        if reused:
            check_store(self.path, settings)
        done = done_tasks(self.path, tasks) if reused else set()
        todo = [t for t in tasks if (t.direction, t.index) not in done]
        chunk_mb = {d: 2 * n * np.prod(shape) / shape[0 if d == "inline" else 1] / 1e6 for d, n in per_task.items()}
        sizes = ", ".join(f"{n} {d}s ({chunk_mb[d]:.2f} MB per chunk of each array)" for d, n in per_task.items())
        log(f"store {self.path}: {len(tasks)} tasks of {sizes}" + (f"; {len(done)} done before, reused" if reused else ""))
        header_bytes = src.geometry.bytes if src.kind.startswith("segy") else (None, None)
        job = Job(str(Path(src.path).resolve()), inp.name, *header_bytes, np.asarray(inp.chosen), amap, stride,
                  batch_size, str(self.path.resolve()),
                  (str(Path(run_dir).resolve()), batch_size, tta, uncertainty) if model is None else None,
                  model)
        self.report = {"workers": self.workers, "scheduler": self.scheduler, "store": str(self.path),
                       "task_lines": per_task, "tasks": len(tasks), "tasks_reused": len(done), "tasks_computed": 0}
        if todo:
            self._compute(job, todo, progress, log, None if reused else (settings, shape, per_task))
        return self._assemble(inp, vol, direction, tasks)

    def _compute(self, job: Job, todo: list[Task], progress: bool, log, create: tuple | None) -> None:
        """Run the tasks, creating the store first (``create``: its settings, shape and task lines)
        unless it exists. On failure the store is removed if it holds no finished chunk or the
        failure is an input error; otherwise kept for a rerun."""
        import dask
        from dask.distributed import KilledWorker

        from salt_tf.seismic.segment import Progress

        client, cluster = self._connect()
        running, created, finished, input_error = set(), False, False, False
        token = f"{os.getpid()}-{time.time_ns()}"  # in every task key of this run
        try:
            if create is not None:
                create_store(self.path, *create)
                created = True
            self._check_workers(client, job)
            if "dashboard" in client.scheduler_info().get("services", {}):
                log(f"dashboard: {client.dashboard_link}"
                    + ("" if self.scheduler or _has_bokeh() else " (its pages need bokeh: pip install bokeh)"))
            running = {client.submit(segment_task, job, t.direction, t.index, t.first, t.stop, pure=False,
                                     key=f"segment-{token}-{t.direction}-{t.index}")
                       for t in todo}
            try:
                seconds = self._collect(running, Progress(sum(t.windows for t in todo), progress))
            except ValueError as err:
                input_error = _input_error(err)  # found by a task: a rerun would meet it again
                raise
            self.report.update(windows_computed=sum(t.windows for t in todo), task_seconds=seconds)
            finished = True
        except KilledWorker as err:
            allowed = dask.config.get("distributed.scheduler.allowed-failures")
            raise SectionError(f"{self.path}: a worker died more than {allowed} times while running a task ({err}); "
                               f"the finished chunks are kept: rerun the same command to compute the rest") from None
        except ImportError as err:
            raise SectionError(f"the workers cannot import what a task needs ({err}): install salt_tf's requirements "
                               f"there and put salt_tf on their PYTHONPATH") from None
        except OSError as err:
            raise SectionError(f"lost the Dask cluster ({err}); the finished chunks are kept in {self.path}: "
                               f"rerun the same command to compute the rest") from None
        finally:
            client.cancel(list(running))
            if not finished and cluster is None:
                _drain(client, token, log)  # their chunks land before the store is judged
            client.close()
            if cluster is not None:
                cluster.close()  # ends the local workers, and their tasks with them
            if not finished and (input_error or (created and not any((self.path / "done").iterdir()))):
                shutil.rmtree(self.path, ignore_errors=True)

    def _connect(self):
        """A client of local workers started here (and their cluster, to close) or of --scheduler's."""
        from dask.distributed import Client, LocalCluster

        if not self.workers:
            try:
                return Client(self.scheduler, timeout=CONNECT_SECONDS), None
            except (OSError, TimeoutError, ValueError) as err:
                raise SectionError(f"--scheduler {self.scheduler}: cannot connect ({err})") from None
        from salt_tf.common.machine import usable_cores

        threads = max(1, usable_cores() // self.workers)  # TensorFlow's threads, so that workers do not oversubscribe
        # Dask's own warnings (a worker restarted, one slow to exit at the end) stay out of the
        # command's output: a lost task is run again, and what cannot be is an error line.
        cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR,
                               env={"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"})
        return Client(cluster), cluster

    def _collect(self, running: set, bar) -> float:
        """Wait for the tasks as they finish (raising the first task's exception); their seconds."""
        from dask.distributed import as_completed

        seconds = 0.0
        for future in as_completed(list(running)):
            result = future.result()
            # Its chunk is in the store: forget the result, so that a worker lost later does not
            # make the scheduler compute it again.
            running.discard(future)
            future.release()
            bar.add(result["windows"])
            seconds += result["seconds"]
            self.report["tasks_computed"] += 1
        return seconds

    def _check_workers(self, client, job: Job) -> None:
        """Workers share the file system with the input and the store, or the run cannot work."""
        if not self.workers:
            try:
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise SectionError(f"--scheduler {self.scheduler}: no worker joined within {CONNECT_SECONDS} s") from None
        for path, what in ((job.input, "the input"), (job.store, "the store")):
            blind = sorted(w for w, seen in client.run(os.path.exists, path).items() if not seen)
            if blind:
                raise SectionError(f"{path}: worker(s) {', '.join(blind)} cannot see {what}; the workers must share "
                                   f"the file system with this process")

    def _assemble(self, inp, vol, direction: str, tasks: list[Task]) -> np.ndarray | None:
        """The store into the memory-mapped volumes, chunk by chunk, the crossline pass merged as in
        segment.segment_lines."""
        import zarr

        from salt_tf.seismic import qc
        from salt_tf.seismic.segment import merge_crossline

        arrays = {(d, name): zarr.open_array(self.path / d / name, mode="r")
                  for d in PASSES[direction] for name in ("probability", "uncertainty")}
        prob, spread = vol["probability"], vol["uncertainty"]
        for t in (t for t in tasks if t.direction == "inline"):
            prob[t.first : t.stop] = arrays["inline", "probability"][t.first : t.stop]
            spread[t.first : t.stop] = arrays["inline", "uncertainty"][t.first : t.stop]
            vol.release()
        if direction == "inline":
            return None
        disagreement = qc.Disagreement(len(inp.chosen)) if direction == "both" else None
        for t in (t for t in tasks if t.direction == "crossline"):
            p = arrays["crossline", "probability"][:, t.first : t.stop]
            u = arrays["crossline", "uncertainty"][:, t.first : t.stop]
            for c, j in enumerate(range(t.first, t.stop)):
                merge_crossline(vol, j, p[:, c].astype(np.float32), u[:, c].astype(np.float32),
                                inp.src.xlive(j, inp.chosen), disagreement)
            vol.release()
        return None if disagreement is None else disagreement.per_line()

    def finish(self, log) -> None:
        """After the outputs are in place: remove the store, unless asked to keep it."""
        if self.keep_store:
            log(f"kept the store {self.path} (--keep-store)")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
