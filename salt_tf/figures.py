"""Figures (matplotlib, Agg): a section with its salt outline, and a grid of tiles with their ids,
predicted and true outlines and scores (predict.py --overlays). Written atomically."""
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
