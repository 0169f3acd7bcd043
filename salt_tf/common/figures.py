"""Figures (matplotlib, Agg): a section with its salt outline (and its uncertainty), a grid of
tiles with their ids, predicted and true outlines and scores (predict.py --overlays), a run's
learning curves (report.md), and segment.py's interpreter QC: the top-of-salt map, the domain check
and the inline-versus-crossline disagreement. Written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from salt_tf.common.atomic import atomic_path  # noqa: E402

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
                   title: str = "", dpi: int = 100, uncertainty: np.ndarray | None = None) -> None:
    """The section (samples down, traces across) in grey with the predicted salt outline in red and
    the true one, if known, in green; with ``uncertainty`` (samples, traces), a second panel below
    shows it (colour bar from 0) with the predicted outline in cyan."""
    height, width = grey.shape
    size = (min(16.0, 2.0 + width / 60), min(10.0, 1.5 + height / 60))
    if uncertainty is None:
        fig, ax = plt.subplots(figsize=size)
    else:
        if np.shape(uncertainty) != grey.shape:
            raise ValueError(f"uncertainty of shape {np.shape(uncertainty)} for a section of shape {grey.shape}")
        fig, (ax, below) = plt.subplots(2, 1, figsize=(size[0] + 0.8, 2 * size[1] - 0.5), sharex=True, sharey=True,
                                       layout="constrained")
    ax.imshow(grey, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
    if truth is not None:
        _outline(ax, truth, TRUE, 1.2)
    _outline(ax, mask, PREDICTED, 1.5)
    ax.set_ylabel("sample")
    legend = "red: predicted salt" + ("   green: true salt" if truth is not None else "")
    ax.set_title(f"{title}\n{legend}" if title else legend, fontsize=10)
    if uncertainty is not None:
        ax.tick_params(labelbottom=True)
        values = np.asarray(uncertainty, dtype=np.float32)
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
        image = below.imshow(values, cmap="magma", vmin=0, vmax=max(top, 1e-6), aspect="auto", interpolation="nearest")
        _outline(below, mask, "cyan", 1.0)
        below.set_xlabel("trace")
        below.set_ylabel("sample")
        below.set_title("uncertainty (spread of the ensemble), cyan: predicted salt", fontsize=10)
        # one colour bar column beside both panels keeps their widths, and so their traces, aligned
        fig.colorbar(image, ax=[ax, below], fraction=0.03, pad=0.01).set_label("uncertainty")
        _save(fig, Path(path), dpi)
        return
    ax.set_xlabel("trace")
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


def top_of_salt_map(path: str | Path, top: np.ndarray, line_numbers, trace_numbers, unit: str, title: str = "",
                    base: np.ndarray | None = None, dpi: int = 100) -> None:
    """The top of salt: for a volume, a map over inline x crossline of ``top`` (lines, traces) z
    values in ``unit`` (NaN where a trace has no salt or no data: left blank); for one line (one
    line number, or ``top`` 1-D), top (and ``base``, if given) against trace, depth down."""
    top = np.asarray(top, dtype=np.float64)
    lines, traces = np.asarray(line_numbers), np.asarray(trace_numbers)
    if top.ndim == 1:
        top = top[None]
    if top.shape != (len(lines), len(traces)):
        raise ValueError(f"top of shape {top.shape} for {len(lines)} line number(s) x {len(traces)} trace numbers")
    if len(lines) == 1:
        fig, ax = plt.subplots(figsize=(min(16.0, 4.0 + len(traces) / 80), 4.5))
        ax.plot(traces, top[0], color="tab:red", lw=1.5, label="top of salt")
        if base is not None:
            ax.plot(traces, np.asarray(base, dtype=np.float64).reshape(-1), color="tab:blue", lw=1.5,
                    label="base of salt")
        ax.invert_yaxis()
        ax.set_xlabel("trace")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(title or ("top and base of salt" if base is not None else "top of salt"), fontsize=10)
    else:
        fig, ax = plt.subplots(figsize=(min(14.0, max(7.0, 3.0 + len(traces) / 60)),
                                        min(10.0, max(5.0, 2.0 + len(lines) / 60))))
        step_x = (traces[-1] - traces[0]) / max(len(traces) - 1, 1) or 1
        step_y = (lines[-1] - lines[0]) / max(len(lines) - 1, 1) or 1
        extent = (traces[0] - step_x / 2, traces[-1] + step_x / 2, lines[0] - step_y / 2, lines[-1] + step_y / 2)
        cmap = plt.get_cmap("viridis_r").with_extremes(bad="white")  # no salt, or no data
        image = ax.imshow(np.ma.masked_invalid(top), cmap=cmap, origin="lower", extent=extent, aspect="auto",
                          interpolation="nearest")
        ax.set_xlabel("crossline")
        ax.set_ylabel("inline")
        ax.set_title((title + "\n" if title else "") + "top of salt (blank: no salt or no data)", fontsize=10)
        bar = fig.colorbar(image, ax=ax)
        bar.set_label(f"top of salt ({unit})")
        bar.ax.invert_yaxis()  # deeper down, as on a section
    fig.tight_layout()
    _save(fig, Path(path), dpi)


def domain_figure(path: str | Path, summary: dict, dpi: int = 100) -> None:
    """The domain check (``qc.DomainCheck.summary()``): the input's grey-level histogram
    against the training tiles', and per line the shares clipped at 0 and 255, the mean salt
    probability and the mean uncertainty; the warning, if any, in red on top."""
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    width = summary["bin_width"]
    edges = np.arange(summary["bins"] + 1) * width
    for key, colour, label in (("training_histogram", "tab:gray", "training tiles"),
                               ("input_histogram", "tab:blue", "input (live traces)")):
        left.stairs(100 * np.asarray(summary[key], dtype=float), edges, color=colour, lw=2, label=label)
    left.set_xlabel("grey level")
    left.set_ylabel(f"% of samples per {width} grey levels")
    distance = summary.get("distance")
    left.set_title("grey levels" + (f": distance {distance:.2f} (limit {summary['distance_limit']:.2f})"
                                    if distance is not None else ""), fontsize=10)
    left.legend(fontsize=8)
    per_line = summary["lines"]
    x = np.asarray(per_line["line"])

    def column(name):
        return np.array([np.nan if v is None else v for v in per_line.get(name, [None] * len(x))], dtype=float)

    middle.plot(x, 100 * column("clipped_low"), ".-", label="at grey level 0")
    middle.plot(x, 100 * column("clipped_high"), ".-", label="at grey level 255")
    middle.axhline(100 * summary["clip_limit"], color="tab:red", ls="--", lw=1, label="warning limit")
    middle.set_xlabel("line")
    middle.set_ylabel("% of live samples clipped")
    middle.set_title(f"clipped: {100 * summary['clipped_low']:.2f}% at 0, {100 * summary['clipped_high']:.2f}% at 255",
                     fontsize=10)
    middle.legend(fontsize=8)
    right.plot(x, column("mean_probability"), ".-", color="tab:orange", label="mean salt probability")
    right.plot(x, column("mean_uncertainty"), ".-", color="tab:purple", label="mean uncertainty")
    right.set_xlabel("line")
    right.set_ylim(bottom=0)
    right.set_title("per line", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
    warning = summary.get("warning")
    fig.suptitle(warning or "input grey levels consistent with the training tiles", fontsize=9,
                 color="tab:red" if warning else "black", wrap=True)
    fig.tight_layout()
    _save(fig, Path(path), dpi)


def disagreement_figure(path: str | Path, line_numbers, values, dpi: int = 100) -> None:
    """Inline-versus-crossline disagreement (mean |inline pass - crossline pass| probability) per inline."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(np.asarray(line_numbers), np.asarray(values, dtype=float), ".-", color="tab:purple")
    ax.set_xlabel("inline")
    ax.set_ylabel("mean |inline - crossline| probability")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title("disagreement between the inline and the crossline pass", fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path), dpi)
