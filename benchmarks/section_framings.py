"""Other ways to frame a section's windows than each window's own min-max stretch, tried at inference
on a real-data run's held-out tiles inside sections: on the tile grid, shifted by 50 pixels, and
``segment.py``'s default stride-50 windows.

    python benchmarks/section_framings.py --real OUT [--framings minmax agc20 robust2 window-area stride25]

``OUT`` is a ``benchmarks/real_data.py`` folder whose ``real_sections.py --out OUT/sections6`` kept the
``predict.py`` probabilities (the base of every difference; the tiles are ``real_sections.py``'s at
``--shifts 0 50``). Framings:

- ``minmax``: segment.py's windows as they are (``tiles.framing.stretch``);
- ``agcS``: the section first divided by its local spread, a gain control: ``(x - m) / s`` with ``m``
  and ``s`` the mean and RMS deviation under a Gaussian of sigma S pixels over known cells, then each
  window stretched on its own (so a dull stretch under a strong reflector is lifted);
- ``robustP``: each window clipped to its P-th and (100-P)-th percentiles before its stretch;
- ``window-area``: every window whose mean mask holds fewer salt pixels than the run's minimum area
  is set to 0 before the blend (``predict.py``'s tile rule, applied to each window);
- ``strideN``: ``segment.py`` at stride N (only its row).

Each row: the competition score at the run's threshold, its paired difference from ``predict.py``
+- one standard error, on all tiles and on the tiles whose windows hold known cells only; the same
with the run's minimum area applied to the scored tiles; the pooled pixel IoU and the tiles with at
least the minimum area of salt. A framing that finds less salt scores closer to ``predict.py`` on
these tiles (most are empty) while its pixel IoU falls: read both.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import _bench
import numpy as np
from scipy import ndimage

import real_sections as rs
from salt_tf.tiles import framing, mosaics
from salt_tf.tiles.data import real_seismic_dir

TILE = mosaics.TILE


def gain_control(sigma: float):
    """``(x - local mean) / local RMS deviation`` under a Gaussian of ``sigma`` pixels, over known cells."""
    def apply(values: np.ndarray, known: np.ndarray) -> np.ndarray:
        weight = np.maximum(ndimage.gaussian_filter(known.astype(np.float32), sigma), 1e-6)
        def local(x):
            return ndimage.gaussian_filter(np.where(known, x, 0.0), sigma) / weight
        mean = local(values)
        rms = np.sqrt(local((values - mean) ** 2))
        return np.where(known, (values - mean) / np.maximum(rms, 1e-3 * max(float(rms.max()), 1e-6)), 0.0)
    return apply


def robust_stretch(percent: float):
    """Each window clipped to its ``percent``-th and (100 - ``percent``)-th percentiles, then stretched."""
    def stretch(values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, np.float32)
        lo, hi = (np.nanpercentile(v, q, axis=(1, 2), keepdims=True) for q in (percent, 100 - percent))
        return framing.stretch(np.clip(v, lo, hi))
    return stretch


def window_area(model, threshold: float, min_area: int):
    """``model`` with every window of fewer than ``min_area`` salt pixels (members' mean) set to 0."""
    def predict(tiles: np.ndarray) -> np.ndarray:
        p = np.asarray(model(tiles), np.float32)
        members = p if p.ndim == 4 else p[None]
        small = (members.mean(axis=0) > threshold).sum(axis=(1, 2)) < min_area
        members = np.where(small[None, :, None, None], 0.0, members)
        return members if p.ndim == 4 else members[0]
    return predict


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--real", type=Path, required=True, help="a benchmarks/real_data.py output folder")
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir(), help="../shared/realdata")
    parser.add_argument("--framings", nargs="+", default=["minmax", "agc20", "robust2", "window-area"])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()
    for name in args.framings:
        if not re.fullmatch(r"minmax|window-area|agc\d+(\.\d+)?|robust\d+(\.\d+)?|stride\d+", name):
            parser.error(f"--framings {name}: expected minmax, window-area, agcS, robustP or strideN")
    _bench.header(f"run {args.real / 'run'}")
    import salt_tf.seismic.segment as segment
    from salt_tf.inference.predict import postprocessing

    run = args.real / "run"
    threshold, min_area = postprocessing(run, None)
    found = rs.held_out_sections(args.real, args.tgs, args.realdata)
    scored = rs.scored_cells(found, 50)
    truths = [m.tile(r, c)[1] for m, cells in scored for r, c in cells]
    known_only = np.array([rs.windows_on_known_cells(m, r, c) for m, cells in scored for r, c in cells])
    with np.load(args.real / "sections6" / "probabilities.npz") as saved:
        base = list(saved[rs.BASE].astype(np.float32))
    base_scores = {area: rs.tile_scores(base, truths, threshold, area) for area in (0, min_area)}
    model, _ = segment.ensemble_model(run, 32, True, False)
    plain_stretch, figures = segment.stretch, {}
    print(f"{len(truths)} tiles ({int(known_only.sum())} on known cells), threshold {threshold:.3f}, minimum area {min_area}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.framings:
            prepare = gain_control(float(name[3:])) if name.startswith("agc") else None
            segment.stretch = robust_stretch(float(name[6:])) if name.startswith("robust") else plain_stretch
            predict = window_area(model, threshold, min_area) if name == "window-area" else model
            stride = int(name[6:]) if name.startswith("stride") else 50
            for where in ["segment"] if name.startswith("stride") else ["segment", "shift 0", "shift 50"]:
                probs = []
                for k, (m, cells) in enumerate(scored):
                    shift = 0 if where == "segment" else int(where[6:])
                    values = m.image.astype(np.float32) if where == "segment" else mosaics.continuous(m)
                    if prepare is not None:
                        values = prepare(values, np.kron(m.known, np.ones((TILE, TILE), bool)))
                    p = rs.segment_section(run, predict, values[shift:, shift:], Path(tmp), f"{name}-{k}-{shift}",
                                           stride if where == "segment" else TILE, "minmax")
                    probs += [p[r * TILE - shift : (r + 1) * TILE - shift, c * TILE - shift : (c + 1) * TILE - shift]
                              for r, c in cells]
                row = {"pixel_iou": rs.score(probs, truths, threshold)[1],
                       "tiles_with_salt": int(sum((p > threshold).sum() >= max(min_area, 1) for p in probs))}
                for area in (0, min_area):
                    scores = rs.tile_scores(probs, truths, threshold, area)
                    row[f"min_area {area}"] = {"score": float(scores.mean()),
                                               "all": rs.paired_difference(base_scores[area], scores),
                                               "known cells": rs.paired_difference(base_scores[area][known_only],
                                                                                   scores[known_only])}
                figures[f"{name}, {where}"] = row
                parts = [f"area {area}: {row[f'min_area {area}']['score']:.4f} "
                         + " ".join(f"({key} {d:+.3f} +- {se:.3f})" for key, (d, se) in list(row[f'min_area {area}'].items())[1:])
                         for area in (0, min_area)]
                print(f"{name:12s} {where:8s} " + "; ".join(parts)
                      + f"; pixel IoU {row['pixel_iou']:.3f}; tiles with salt {row['tiles_with_salt']}", flush=True)
    segment.stretch = plain_stretch
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        part = args.out / "section_framings.json.part"
        part.write_text(json.dumps({"threshold": threshold, "min_area": min_area, "rows": figures}, indent=1))
        part.replace(args.out / "section_framings.json")


if __name__ == "__main__":
    main()
