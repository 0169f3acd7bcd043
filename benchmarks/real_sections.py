"""The held-out tiles of a real-data run, scored inside the real sections they were cut from: predict.py
tile by tile against segment.py on whole sections, at its default stride, on the tile grid and with
the grid shifted.

    python benchmarks/real_sections.py --real OUT [--run RUN] [--shifts 0 5 50] [--scales 1,0.5] [--out DIR]

``OUT`` is a folder of ``benchmarks/real_data.py`` (its ``run`` and the held-out split in
``data/holdout``). The sections are the jigsaw mosaics (``salt_tf.tiles.mosaics``, from
``$SALT_TF_REALDATA_DIR`` or ``../shared/realdata``) that hold at least one held-out tile; unknown
cells are black. Each variant predicts every held-out tile inside a section, then scores them with
the competition metric (``tiles.metrics``, at the run's threshold) and the pooled pixel IoU:

- ``predict.py``: the tiles one by one, as released (``inference.predict.predict_probs``);
- ``segment, global``: ``segment.run`` on the assembled section at stride 50, one amplitude map
  (given as values, so an unknown cell at the top or bottom of a column is a mute to it: no data,
  the column's data mirrored into it, ``sections.no_data``);
- ``segment, minmax``: the same, each window stretched to 0..255 on its own (segment.py's default for
  such a run); with ``--scales``, also with the sections resampled by each set of factors and merged
  (``segment.py --scale``);
- ``minmax on the grid, shift S``: the section made continuous (``mosaics.continuous``), its first S
  rows and columns cut off so that stride-101 windows sit S pixels off the tile grid, each window
  stretched on its own (shift 0: exactly the released tiles, for tiles that span 0..255). Only
  held-out tiles wholly inside the cut section count; the same tiles are scored at every shift;
- ``..., unknown filled``: ``segment, minmax`` and the shifted grids again with each unknown cell's
  pixels set to the nearest known pixel's (``nearest_known``), as segment.py fills an absent trace
  with the nearest live one: a real section goes on where the jigsaw has no tile;
- ``segment, stride 50, minmax, continuous, unknown filled``: ``segment.run`` at stride 50 on the section
  made continuous with unknown cells filled, as ``section_context.py`` reads a section ("stride 50,
  blended"): a real section has no tile-by-tile stretch.

``--run RUN`` reads with another run than ``OUT/run`` on ``OUT``'s held-out tiles, e.g. a
``section_context.py`` fine-tune's ``DIR/run``: ``predict.py`` reads the tiles alone at that run's
threshold, and every ``segment`` variant reads each window with the run's context (its margin, at the
threshold and minimum area tuned on windows read so).

Each variant is also scored on three groups of those tiles: "at a label seam", the tiles whose label
differs from a labelled neighbour's on 20% or more of their shared edge (``benchmarks/label_seams.py``:
the competition's labels were drawn tile by tile and stop at tile edges where the seismic goes on);
"neighbours agree", tiles with a labelled neighbour and no such seam; "no labelled neighbour", tiles
whose neighbours are test tiles or unknown (a seam there cannot be seen). And apart from those groups,
on "windows on known cells": the tiles whose eight neighbouring cells are all known, so that no window
that reaches into the tile (at any shift up to 100 pixels, or at stride 50) holds an unknown, black
cell, which no training window holds and a real section lacks.

What predicting no salt anywhere scores on the same tiles is printed first (most of them are empty, so
a variant that finds nothing scores close to ``predict.py``), and each variant is scored apart on
the tiles that hold salt and on the empty ones (with how many of these it gives salt).

Each variant's score is given twice: as thresholded, and with the run's minimum salt area (a tile's
mask with fewer salt pixels is emptied, as ``predict.py`` does for its submission). The default
``segment`` and the shifted grids are also scored with the section's salt patches of fewer than that
many pixels dropped before the tiles are cut (``patches under N px out``), as ``segment.py`` drops
them from its mask (``--min-area``, the run's minimum salt area by default). Each difference
from ``predict.py`` is paired over the same tiles, with its standard error: one tile is 1/n of a
score, and a few tiles decide most differences here. ``--out`` also keeps every variant's
probabilities of the scored tiles (``probabilities.npz``, float32) so that later analyses need no
model.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import _bench
import numpy as np
from scipy import ndimage

from salt_tf.seismic.interpret import drop_small_patches
from salt_tf.tiles import mosaics
from salt_tf.tiles.data import real_seismic_dir
from salt_tf.tiles.metrics import image_scores, remove_small

TILE = mosaics.TILE


READINGS = ("global", "minmax", "minmax filled", "grid", "grid filled", "continuous")


def held_out_sections(real: Path, tgs: Path, realdata: Path) -> list[tuple[mosaics.Mosaic, list[tuple[int, int]]]]:
    """The mosaics holding held-out tiles, with the held-out cells of each."""
    held = {p.stem for p in (real / "data" / "holdout" / "images").glob("*.png")}
    found = []
    for path in mosaics.mosaic_paths(realdata / "mosaics"):
        ids = mosaics.read_grid(path)
        cells = [(r, c) for (r, c), tile_id in np.ndenumerate(ids) if tile_id in held]
        if cells:
            found.append((mosaics.assemble(path, tgs / "train", [tgs / "test" / "images", realdata / "test_tiles"]), cells))
    return found


def scored_cells(found, shift: int) -> list[tuple[mosaics.Mosaic, list[tuple[int, int]]]]:
    """The sections of ``held_out_sections`` with their held-out cells that lie wholly inside the section
    once its first ``shift`` rows and columns are cut off (so scored at every shift up to it); sections
    left with none are dropped."""
    kept = [(m, [(r, c) for r, c in cells if min(r, c) * TILE >= shift]) for m, cells in found]
    return [(m, cells) for m, cells in kept if cells]


GROUPS = ("at a label seam", "neighbours agree", "no labelled neighbour")
KNOWN = "windows on known cells"
BASE = "predict.py, tile by tile"


def seam_groups(m: mosaics.Mosaic, cells: list[tuple[int, int]], share: float = 0.2) -> list[str]:
    """Each tile (r, c) of ``cells``'s group: it is at a label seam (``mosaics.label_seams``, found once
    per section); or it has labelled neighbours and no seam; or none of its neighbours is labelled."""
    seams = {cell for seam in mosaics.label_seams(m, share) for cell in (seam[:2], seam[2:4])}
    sides = mosaics.labelled_neighbours(m)[0]
    return [GROUPS[0] if (r, c) in seams else GROUPS[1] if sides[r, c] else GROUPS[2] for r, c in cells]


def windows_on_known_cells(m: mosaics.Mosaic, r: int, c: int) -> bool:
    """Whether every cell around tile (r, c) that the section has is known (not black): then a window
    reaching up to 100 pixels beyond the tile holds no unknown cell."""
    return bool(m.known[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].all())


def nearest_known(m: mosaics.Mosaic, values: np.ndarray) -> np.ndarray:
    """``values`` (the section's pixels) with every pixel of an unknown cell set to the nearest known
    pixel's value: the seismic goes on into the unknown cells instead of a black block."""
    unknown = np.kron(~m.known, np.ones((TILE, TILE), bool))
    if not unknown.any() or unknown.all():
        return values
    return values[tuple(ndimage.distance_transform_edt(unknown, return_distances=False, return_indices=True))]


def without_small_patches(probability: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """A section's probability with its salt patches (above ``threshold``) of fewer than ``min_area``
    pixels set to 0, as segment.py drops them from its mask (``interpret.drop_small_patches``)."""
    salt = probability > threshold
    return np.where(salt & ~drop_small_patches(salt, min_area), 0.0, probability)


def score(probs: list[np.ndarray], truths: list[np.ndarray], threshold: float) -> tuple[float, float]:
    """Competition score (mean over tiles) and pooled pixel IoU of thresholded probabilities."""
    masks = np.stack([p > threshold for p in probs]).astype(np.uint8)
    truth = np.stack(truths).astype(np.uint8)
    union = np.logical_or(masks, truth).sum()
    return float(np.mean(image_scores(truth, masks))), float(np.logical_and(masks, truth).sum() / max(union, 1))


def tile_scores(probs: list[np.ndarray], truths: list[np.ndarray], threshold: float, min_area: int = 0) -> np.ndarray:
    """Each tile's competition score, its mask emptied when it holds fewer than ``min_area`` salt pixels."""
    masks = remove_small(np.stack([p > threshold for p in probs]), min_area).astype(np.uint8)
    return image_scores(np.stack(truths).astype(np.uint8), masks)


def paired_difference(base: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Mean of ``other - base`` over the same tiles and its standard error."""
    d = np.asarray(other, np.float64) - np.asarray(base, np.float64)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def segment_section(run: Path, model, values: np.ndarray, tmp: Path, name: str, stride: int, windows: str,
                    scales: str = "1") -> np.ndarray:
    """segment.run's probability (samples, traces) of a section given as (samples, traces) values,
    with the run's ensemble loaded once (``model``: segment.py's own, without the member spread)."""
    from salt_tf.seismic.segment import run as segment_run

    np.save(tmp / f"{name}.npy", values.T.astype(np.float32))  # .npy input is (traces, samples)
    out = tmp / f"{name}-{stride}-{windows}-{scales}"
    segment_run(run, tmp / f"{name}.npy", out, stride=stride, windows=windows, scales=scales, n_figures=0, progress=False,
                model=model, log=lambda line: None, warn=lambda line: None)
    return np.load(out / "probability.npy").astype(np.float32).T


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--real", type=Path, required=True, help="a benchmarks/real_data.py output folder")
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir(), help="../shared/realdata")
    parser.add_argument("--shifts", type=int, nargs="*", default=[0, 5, 50], help="grid shifts in pixels")
    parser.add_argument("--scales", nargs="*", default=[], help="segment.py --scale settings to score too, e.g. 1,0.5")
    parser.add_argument("--run", type=Path, help="the run to read with (default: OUT/run; e.g. a section_context.py "
                                                  "fine-tune's OUT/run, which reads with context)")
    parser.add_argument("--readings", nargs="+", choices=READINGS, default=list(READINGS),
                        help="which section readings to score (default all; predict.py's is always first): segment.py "
                             "at stride 50 with one amplitude map, with windows stretched on their own, the same with "
                             "unknown cells filled, the shifted grids, the same filled, the continuous section")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()
    run = args.run or args.real / "run"
    _bench.header(f"run {run}")
    from salt_tf.inference.predict import load_ensemble, postprocessing, predict_probs
    from salt_tf.seismic.segment import ensemble_model

    threshold, min_area = postprocessing(run, None)
    found = held_out_sections(args.real, args.tgs, args.realdata)
    keep = max(args.shifts)
    # tiles scored at every shift: held out, and not in the first row or column of cells the shift cuts
    scored = scored_cells(found, keep)
    n = sum(len(c) for _, c in scored)
    print(f"{len(found)} sections hold {sum(len(c) for _, c in found)} held-out tiles; {n} lie wholly inside "
          f"every shifted section and are scored; threshold {threshold:.3f}", flush=True)
    truths = [m.tile(r, c)[1] for m, cells in scored for r, c in cells]
    group_of = np.array([group for m, cells in scored for group in seam_groups(m, cells)])
    print(", ".join(f"{int((group_of == g).sum())} {g}" for g in GROUPS) + " (a seam: the label differs from a "
          "labelled neighbour's on 20% or more of the shared edge)", flush=True)
    on_known = np.array([windows_on_known_cells(m, r, c) for m, cells in scored for r, c in cells])
    print(f"{int(on_known.sum())} tiles have windows on known cells only (their eight neighbouring cells are known)", flush=True)
    # once per section
    labelled_sides = np.concatenate([mosaics.labelled_neighbours(m)[0][tuple(np.array(cells).T)] for m, cells in scored])
    print("labelled tiles beside each tile, of its four sides: " + ", ".join(
        f"{k}: {int((labelled_sides == k).sum())} tiles" for k in range(5)), flush=True)
    has_salt = np.array([t.any() for t in truths])
    empty = image_scores(np.stack(truths), np.zeros((n, TILE, TILE), np.uint8))
    print(f"{int(has_salt.sum())} tiles hold salt; predicting no salt anywhere scores {empty.mean():.4f} "
          f"({empty[on_known].mean():.4f} on known cells): a variant's score is worth what it adds to that", flush=True)
    results, groups, kept, per_tile = {}, {}, {}, {}

    def report(name: str, probs: list[np.ndarray], cut: float = threshold, area: int = min_area) -> None:
        """``cut``, ``area``: the threshold and minimum area the variant is scored at (the run's, or its context's)."""
        results[name] = score(probs, truths, cut)
        groups[name] = {group: score([p for p, g in zip(probs, group_of) if g == group],
                                     [t for t, g in zip(truths, group_of) if g == group], cut)[0]
                        for group in GROUPS if (group_of == group).any()}
        if on_known.any():
            groups[name][KNOWN] = score([p for p, k in zip(probs, on_known) if k], [t for t, k in zip(truths, on_known) if k],
                                        cut)[0]
        split = "  ".join(f"{group} {value:.4f}" for group, value in groups[name].items())
        print(f"{name:32s} competition score {results[name][0]:.4f}  pixel IoU {results[name][1]:.4f}  ({split})",
              flush=True)
        kept[name] = np.stack(probs).astype(np.float32)
        per_tile[name] = {"plain": tile_scores(probs, truths, cut), "min_area": tile_scores(probs, truths, cut, area)}
        plain = per_tile[name]["plain"]
        groups[name]["salt tiles"], groups[name]["empty tiles"] = float(plain[has_salt].mean()), float(plain[~has_salt].mean())
        given = sum(bool((p > cut).any()) for p, salt in zip(probs, has_salt) if not salt)
        print(f"{'':32s} on the tiles with salt {plain[has_salt].mean():.4f}, on the empty ones {plain[~has_salt].mean():.4f} "
              f"({given} of them given salt)", flush=True)
        base = per_tile[BASE]  # reported first
        parts = []
        for rule, subset, label in [("plain", slice(None), "all"), ("min_area", slice(None), f"min area {area}"),
                                    ("plain", on_known, KNOWN), ("min_area", on_known, f"{KNOWN}, min area")]:
            d, se = paired_difference(base[rule][subset], per_tile[name][rule][subset])
            parts.append(f"{label} {per_tile[name][rule][subset].mean():.4f} ({d:+.3f} +- {se:.3f})")
        print(f"{'':32s} against predict.py: " + "; ".join(parts), flush=True)

    ensemble = load_ensemble(run)
    model, _ = ensemble_model(run, 32, True, False)
    tiles = np.stack([m.tile(r, c)[0] for m, cells in scored for r, c in cells])
    report(BASE, list(predict_probs(ensemble, tiles, progress=False)))
    # a run that reads with context (section_context.py's): segment.py's windows with their margin, at the
    # threshold and minimum area tuned on windows read so; predict.py's tiles alone at the run's own
    cut, area = (ensemble.context["threshold"], ensemble.context["min_area"]) if ensemble.context else (threshold, min_area)
    if ensemble.context:
        print(f"segment.py reads with {ensemble.context['margin']} px of context: threshold {cut:.3f}, "
              f"minimum area {area}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        variants = [v for v, reading in zip([("global", "1", False), ("minmax", "1", False), ("minmax", "1", True)],
                                            READINGS) if reading in args.readings]
        scaled = [("minmax", s, False) for s in args.scales] if "minmax" in args.readings else []
        for windows, scales, fill in variants + scaled:
            probs, patched = [], []
            with_patches = (windows, scales, fill) == ("minmax", "1", False) and area > 1  # the default only
            for k, (m, cells) in enumerate(scored):
                if cells:
                    image = m.image.astype(np.float32)
                    p = segment_section(run, model, nearest_known(m, image) if fill else image, tmp, f"s{k}-{fill}", 50,
                                        windows, scales)
                    probs += [p[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r, c in cells]
                    if with_patches:
                        q = without_small_patches(p, cut, area)
                        patched += [q[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r, c in cells]
            name = (f"segment, stride 50, {windows}" + ("" if scales == "1" else f", scale {scales}")
                    + (", unknown filled" if fill else ""))
            report(name, probs, cut, area)
            if with_patches:
                report(f"{name}, patches under {area} px out", patched, cut, area)
        flats = {False: [mosaics.continuous(m) for m, _ in scored]}
        flats[True] = [nearest_known(m, flat) for (m, _), flat in zip(scored, flats[False])]
        grids = [fill for fill, reading in ((False, "grid"), (True, "grid filled")) if reading in args.readings]
        for shift, fill in [(shift, fill) for fill in grids for shift in args.shifts]:
            probs, patched = [], []
            with_patches = not fill and area > 1
            for k, (m, cells) in enumerate(scored):
                if cells:
                    flat = flats[fill][k][shift:, shift:]
                    p = segment_section(run, model, flat, tmp, f"c{k}-{shift}-{fill}", 101, "minmax")
                    kinds = [(probs, p)] + ([(patched, without_small_patches(p, cut, area))] if with_patches else [])
                    for out, values in kinds:
                        out += [values[r * TILE - shift : (r + 1) * TILE - shift, c * TILE - shift : (c + 1) * TILE - shift]
                                for r, c in cells]
            report(f"minmax on the grid, shift {shift}" + (", unknown filled" if fill else ""), probs, cut, area)
            if with_patches:
                report(f"minmax on the grid, shift {shift}, patches under {area} px out", patched, cut, area)
        probs, patched = [], []  # as section_context.py reads a section: made continuous, unknown filled, stride 50
        for k, (m, cells) in enumerate(scored):
            if cells and "continuous" in args.readings:
                p = segment_section(run, model, flats[True][k], tmp, f"f{k}", 50, "minmax")
                probs += [p[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r, c in cells]
                q = without_small_patches(p, cut, area)
                patched += [q[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r, c in cells]
        if probs:
            name = "segment, stride 50, minmax, continuous, unknown filled"
            report(name, probs, cut, area)
            if area > 1:
                report(f"{name}, patches under {area} px out", patched, cut, area)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        figures = {"tiles": n, "groups": {g: int((group_of == g).sum()) for g in GROUPS}, KNOWN: int(on_known.sum()),
                   "salt tiles": int(has_salt.sum()),
                   "empty answer": {"all": float(empty.mean()), KNOWN: float(empty[on_known].mean())},
                   "threshold": threshold, "min_area": min_area, "run": str(run), "context": ensemble.context,
                   "scores": {k: {"competition": v[0], "pixel_iou": v[1], "by_group": groups[k],
                                  "tiles": {rule: per_tile[k][rule].tolist() for rule in ("plain", "min_area")}}
                              for k, v in results.items()},
                   "tile_ids": [str(m.ids[r, c]) for m, cells in scored for r, c in cells], "group": group_of.tolist(),
                   "on_known_cells": on_known.tolist(), "labelled_sides": labelled_sides.tolist()}
        part = args.out / "real_sections.json.part"
        part.write_text(json.dumps(figures, indent=1))
        part.replace(args.out / "real_sections.json")
        with open(args.out / "probabilities.npz.part", "wb") as f:
            np.savez_compressed(f, **kept)
        (args.out / "probabilities.npz.part").replace(args.out / "probabilities.npz")


if __name__ == "__main__":
    main()
