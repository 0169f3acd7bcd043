"""Figures (matplotlib, Agg): a section with its salt outline, a grid of tiles with their ids,
predicted and true outlines and scores (predict.py --overlays), and a run's learning curves
(report.md). Written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from salt_tf.atomic import atomic_path  # noqa: E402

PREDICTED, TRUE = "red", "lime"


def _outline(ax, mask, colour, width):
    mask = np.asarray(mask)
    if mask.any() and not mask.all():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=colour, linewidths=width)


def _save(fig, path: Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def section_figure(path: str | Path, grey: np.ndarray, mask: np.ndarray, truth: np.ndarray | None = None,
                   title: str = "", dpi: int = 100) -> None:
    """The section (samples down, traces across) in grey with the predicted salt outline in red and
    the true one, if known, in green."""
    height, width = grey.shape
    fig, ax = plt.subplots(figsize=(min(16.0, 2.0 + width / 60), min(10.0, 1.5 + height / 60)))
    ax.imshow(grey, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
    if truth is not None:
        _outline(ax, truth, TRUE, 1.2)
    _outline(ax, mask, PREDICTED, 1.5)
    ax.set_xlabel("trace")
    ax.set_ylabel("sample")
    legend = "red: predicted salt" + ("   green: true salt" if truth is not None else "")
    ax.set_title(f"{title}\n{legend}" if title else legend, fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path), dpi)


def tile_grid(path: str | Path, ids, images: np.ndarray, masks: np.ndarray, truth: np.ndarray | None = None,
              scores=None, columns: int = 4, dpi: int = 100) -> None:
    """Tiles side by side, each titled with its id and its score (or, without truth, its predicted
    salt share), predicted outline red, true outline green."""
    n = len(ids)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.2 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        if truth is not None:
            _outline(ax, truth[k], TRUE, 1.5)
        _outline(ax, masks[k], PREDICTED, 1.5)
        label = f"score {scores[k]:.2f}" if scores is not None else f"salt {100 * np.mean(masks[k] > 0):.0f}%"
        ax.set_title(f"{ids[k]}\n{label}", fontsize=9)
    legend = "red: predicted" + ("  green: true" if truth is not None else "")
    fig.suptitle(legend, fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path), dpi)


def learning_curves(path: str | Path, histories: dict) -> None:
    """A run's learning curves (report.md): validation score (and training score, faint) per epoch
    for each fold, from its history.csv table (None or empty: skipped), both phases in a row."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (fold, history) in enumerate(sorted(histories.items())):
        if history is None or not len(history):
            continue
        colour = colours[i % len(colours)]
        x = np.arange(1, len(history) + 1)
        for phase, style in ((1, "-"), (2, "--")):
            sel = (history["phase"] == phase).to_numpy()
            if not sel.any():
                continue
            sizes = ""
            if "size" in history and history.loc[sel, "size"].notna().any():
                sizes = " at " + "/".join(f"{v:.0f}" for v in history.loc[sel, "size"].dropna().unique())
            ax.plot(x[sel], history.loc[sel, "val_score"], style, marker="o", ms=3, color=colour,
                    label=f"fold {fold} phase {phase}{sizes}")
            if "score" in history:
                ax.plot(x[sel], history.loc[sel, "score"], style, color=colour, alpha=0.3, lw=1)
    ax.set_xlabel("epoch (both phases)")
    ax.set_ylabel("competition score (validation; faint: training)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, Path(path), dpi=100)
