"""The run's report: report.json and report.md (scores, learning curves, time per tile) from its finished folds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from salt_tf.common import figures
from salt_tf.common.atomic import write_text
from salt_tf.tiles.metrics import boundary_threshold, truth_of, tune_postprocessing


def read_report(run_dir) -> dict:
    """A run's report.json, {} if it has none yet (no fold finished)."""
    path = Path(run_dir) / "report.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_report(out: Path, train) -> dict:
    """report.json and report.md from every finished fold in the run folder."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("fold*/result.json"))]
    ids, probs = [], []
    for r in results:
        with np.load(out / f"fold{r['fold']}" / "oof.npz") as oof:
            ids.append(oof["ids"])
            probs.append(oof["probs"].astype(np.float32))
    ids, probs = np.concatenate(ids), np.concatenate(probs)
    if len(ids):
        truth, labelled = truth_of(train.masks[pd.Index(train.ids).get_indexer(ids)])  # a survey's: some unlabelled
        tuned = tune_postprocessing(truth, probs, labelled)
        boundary, pixel_iou = boundary_threshold(truth, probs, labelled=labelled)
    else:  # no fold validated (a survey's --folds 1): nothing to score or tune on, the defaults
        tuned = {"threshold": 0.5, "min_area": 0, "score_before": float("nan"), "score_after": float("nan")}
        boundary, pixel_iou = 0.5, float("nan")
    threshold = tuned["threshold"]
    report = {
        "folds_done": [r["fold"] for r in results],
        "folds": results,
        "cv_score": tuned["score_before"],
        "threshold": threshold,
        "min_area": tuned["min_area"],
        "cv_score_tuned": tuned["score_after"],
        "boundary_threshold": boundary,  # segment.py's default: boundaries in whole sections
        "pixel_iou": pixel_iou,
        "n_oof": int(len(ids)),
    }
    write_text(out / "report.json", json.dumps(report, indent=1))
    lines = [
        f"# Run report: {out}", "",
        f"Out-of-fold competition score at 101x101: **{report['cv_score']:.4f}** at threshold 0.5, "
        f"**{report['cv_score_tuned']:.4f}** at the best threshold {threshold:.3f} with minimum salt "
        f"area {report['min_area']} px ({len(ids)} tiles). Pixel IoU over all tiles **{pixel_iou:.4f}** at "
        f"{boundary:.3f}, the threshold `segment.py` uses for whole sections by default." if len(ids) else
        "No validation (a survey's `--folds 1`): every labelled line trained, each fold's model is its last "
        "epoch's, thresholds 0.5, no minimum salt area. Nothing here measures it: label another line to "
        "validate on.", "",
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
