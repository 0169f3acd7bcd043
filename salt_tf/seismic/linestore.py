"""The Zarr store of a distributed segment run (``salt_tf.seismic.distributed``): how the lines divide into
tasks, the store's arrays and recorded settings, and the done-markers that let a rerun reuse the
finished chunks. The layout is described in ``salt_tf.seismic.distributed``'s docstring."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salt_tf.common.atomic import atomic_path
from salt_tf.common.errors import SectionError

STORE_FORMAT = "salt_tf segment store 3"  # 2: mutes are no data; scales recorded. 3: the context margin, model.keras folds
TASK_WINDOWS = 256  # windows per task at most by default: ~20 s of a 5-fold ensemble with TTA on 2 cores
MIN_TASKS = 16  # tasks per pass at least by default, where the lines allow: work for a few workers
PASSES = {"inline": ("inline",), "crossline": ("crossline",), "both": ("inline", "crossline")}


def marker(store: Path, direction: str, index: int) -> Path:
    return store / "done" / f"{direction}-{index:06d}.json"


@dataclass
class Task:
    direction: str
    index: int
    first: int
    stop: int
    windows: int


def plan(n_lines: int, n_traces: int, n_samples: int, direction: str, stride: int, batch_size: int,
         task_lines: int | None = None) -> tuple[dict, list[Task]]:
    """Lines per task of each pass, and the tasks. By default a task is a whole number of
    segment_lines' groups (lines whose windows fill a batch) holding about TASK_WINDOWS windows, or
    fewer so as to make MIN_TASKS tasks. The plan depends on the volume only, not on the cluster, so
    that a rerun on another cluster finds the same chunks."""
    from salt_tf.seismic.sections import count_windows

    per_task, tasks = {}, []
    for d in PASSES[direction]:
        items, each = (n_lines, count_windows(n_samples, n_traces, stride)) if d == "inline" else \
            (n_traces, count_windows(n_samples, n_lines, stride))
        group = max(1, -(-batch_size // each))
        size = task_lines or group * max(1, min(round(TASK_WINDOWS / (group * each)), -(-items // (MIN_TASKS * group))))
        per_task[d] = size = min(size, items)
        tasks += [Task(d, i, first, min(first + size, items), each * (min(first + size, items) - first))
                  for i, first in enumerate(range(0, items, size))]
    return per_task, tasks


def _describe_difference(found: dict, wanted: dict) -> str:
    keys = [k for k in wanted if found.get(k) != wanted[k]] + [k for k in found if k not in wanted]
    return "; ".join(f"{k} {json.dumps(found.get(k))} there, {json.dumps(wanted.get(k))} here" for k in keys)


def check_store(path: Path, settings: dict) -> None:
    """Refuse a store made from other settings than this run's."""
    found = read_settings(path)
    if found != settings:
        raise SectionError(f"{path}: store made with other settings ({_describe_difference(found, settings)}); "
                           f"rerun with the settings it was made with, remove it, or give another --store")


def create_store(path: Path, settings: dict, shape: tuple[int, int, int], per_task: dict) -> None:
    """The empty store, complete with its arrays and settings (written aside, then renamed)."""
    import zarr

    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        n_lines, n_traces, n_samples = shape
        for d, size in per_task.items():
            chunks = (size, n_traces, n_samples) if d == "inline" else (n_lines, size, n_samples)
            group = root.create_group(d)
            for name in ("probability", "uncertainty"):
                group.create_array(name, shape=shape, chunks=chunks, dtype="float16", fill_value=np.nan)
        (tmp / "done").mkdir()
        (tmp / "settings.json").write_text(json.dumps(settings, indent=1))


def read_settings(path: Path) -> dict:
    try:
        found = json.loads((path / "settings.json").read_text())
    except (OSError, ValueError) as err:
        raise SectionError(f"{path}: not a segment store (settings.json unreadable: {err}); remove it or give "
                           f"another --store") from None
    if not isinstance(found, dict) or found.get("format") != STORE_FORMAT:
        raise SectionError(f"{path}: not a segment store of this version (expected format {STORE_FORMAT!r})")
    return found


def done_tasks(store: Path, tasks: list[Task]) -> set[tuple[str, int]]:
    done = set()
    for t in tasks:
        path = marker(store, t.direction, t.index)
        if path.is_file():
            recorded = json.loads(path.read_text())
            if (recorded["first"], recorded["stop"]) != (t.first, t.stop):
                raise SectionError(f"{path}: records lines {recorded['first']}..{recorded['stop']}, the plan "
                                   f"{t.first}..{t.stop}; remove the store {store}")
            done.add((t.direction, t.index))
    return done


def settings(inp, run_dir, model, amap, direction: str, stride: int, tta: bool, uncertainty: bool,
              per_task: dict) -> dict:
    src = inp.src
    stat = os.stat(src.path)
    numbers = src.line_numbers[inp.chosen]
    return {"format": STORE_FORMAT, "input": str(Path(src.path).resolve()), "input_bytes": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "header_bytes": list(src.geometry.bytes) if src.kind.startswith("segy") else None,
            "shape": [len(inp.chosen), *src.shape[1:]], "lines": [int(numbers[0]), int(numbers[-1])],
            "run": str(Path(run_dir).resolve()) if model is None else "a given model",
            "run_models": _run_models(Path(run_dir)) if model is None else None,
            "direction": direction, "stride": stride, "tta": tta, "uncertainty": uncertainty,
            "amplitude_map": {"centre": amap.centre, "gain": amap.gain, "median": amap.median, "windows": amap.windows,
                              "scales": list(amap.scales), "mutes": amap.mutes, "context": amap.context},
            "task_lines": per_task}


def _run_models(run_dir: Path) -> dict:
    """The run's exported fold models and when each was written, and the folds its report covers:
    a fold added or retrained since the store was made must not mix with its chunks."""
    models = {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
              for p in sorted([*run_dir.glob("fold*/saved_model/saved_model.pb"), *run_dir.glob("fold*/model.keras")])}
    report = run_dir / "report.json"
    return {"models": models, "folds_done": json.loads(report.read_text()).get("folds_done") if report.exists() else None}
