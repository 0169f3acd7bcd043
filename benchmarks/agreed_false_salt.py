"""The empty tiles that every model reads as salt: how much of ``segment.py``'s gap from ``predict.py``
they hold, from saved probabilities (no model is run but ``--model``, for ``--shifts``).

    python benchmarks/agreed_false_salt.py --real OUT --from DIR [DIR ...] [--image FILE.png] [--out FILE.json]
        [--shifts 0 2 5 10 25 50 --model DIR]

Each ``DIR`` is a ``section_context.py`` folder (``probs_alone/shift0/shift50/stride50.npy`` of the 105
held-out tiles inside sections, its thresholds in ``figures.json``: as ``predict.py`` reads a tile alone,
on the grid, 50 pixels off it, blended as ``segment.py`` reads a section). Every held-out tile labelled
empty is counted: how many folders give it salt in each reading (at the folder's threshold and minimum
area). The tiles that every folder gives salt blended ("agreed") are the ones no model here reads as
the labels do once it sees beyond the tile's own framing. For each folder, its blended and 50-pixel gaps
from its own ``predict.py`` reading are split into what falls on the agreed tiles and what on the rest
(the two parts add up to the gap; the rest's mean +- one standard error over its own tiles is printed
too). The agreed tiles are chosen by the models themselves: the split says where the gap is, not that
the labels are wrong. ``--image`` draws each agreed tile with the 3 x 3 cells around it: the section
(made continuous), the labels (red salt, blue unlabelled) with the first folder's blended salt outlined
in yellow, and the tile alone as ``predict.py`` sees it.

``--shifts S [S ...] --model DIR`` then runs one model (a ``section_context.py --margin 0`` folder: a
model that reads windows of one tile, e.g. the tile-only start saved with ``--steps 0``) on the same tiles
with windows of one tile, each stretched on its own, on the tile grid shifted by S pixels down and
right (``section_context.covering_windows``: four windows per tile off the grid, the section made
continuous and its unknown cells filled from the nearest known pixel), at the folder's threshold and
minimum area: how many of the agreed tiles, of the other empty tiles, and of the salt tiles get salt
at each shift (with the median salt pixels of those that do: a sliver from the window over the next
cell, or the tile read as salt), and the salt tiles' score. It asks whether an agreed tile's empty
label holds only for the exact framing the competition cut.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _bench  # noqa: F401  (the project on sys.path)
from _bench import refuse
import cv2
import numpy as np

import real_sections as rs
from salt_tf.common.atomic import atomic_path, write_text
from salt_tf.tiles import mosaics
from salt_tf.tiles.data import real_data_dir, real_seismic_dir
from salt_tf.tiles.metrics import UNLABELLED, image_scores, remove_small

TILE = mosaics.TILE
READINGS = {"alone": "alone", "on the grid": "shift0", "50 px off": "shift50", "blended": "stride50"}


def check(folder: Path) -> None:
    """Refuse, before anything is read, a folder that is not a ``section_context.py`` one with every reading."""
    if not (folder / "figures.json").is_file():
        refuse(f"{folder}: no figures.json; --from takes section_context.py --out folders")
    for key in READINGS.values():
        if not (folder / f"probs_{key}.npy").is_file():
            refuse(f"{folder / f'probs_{key}.npy'}: missing (section_context.py folders hold it from session 35 on)")


def masks_of(folder: Path, tiles: int) -> dict[str, np.ndarray]:
    """Reading -> (tiles, 101, 101) bool masks at the folder's thresholds (``holdout_alone``'s for
    ``alone``, the context reading's for the others)."""
    figures = json.loads((folder / "figures.json").read_text())
    found = {}
    for name, key in READINGS.items():
        path = folder / f"probs_{key}.npy"
        probs = np.load(path)
        if len(probs) != tiles:
            refuse(f"{path}: {len(probs)} tiles, not the {tiles} held-out tiles inside sections")
        tuned = figures["holdout_alone" if name == "alone" else "validation_tuned"]
        found[name] = remove_small(probs > tuned["threshold"], tuned["min_area"])
    return found


def split_gap(base: np.ndarray, other: np.ndarray, agreed: np.ndarray) -> dict:
    """``other - base`` over all tiles as the part on ``agreed`` plus the part on the rest (each summed
    over its tiles and divided by all), and the rest's own mean difference +- one standard error."""
    d = np.asarray(other, float) - np.asarray(base, float)
    return {"gap": float(d.mean()), "on_agreed": float(d[agreed].sum() / len(d)), "on_rest": float(d[~agreed].sum() / len(d)),
            "rest_alone": rs.paired_difference(base[~agreed], other[~agreed])}


def neighbours(m: mosaics.Mosaic, r: int, c: int) -> dict:
    """Of the eight cells around (r, c) in its section: how many are labelled tiles, and how many of
    those hold salt; and ``edge_salt``, the most salt pixels that a labelled tile on one of its four
    sides has along the edge they share (101: its salt runs the whole edge, so an empty label here
    cuts a body off at the tile's straight edge)."""
    labelled = mosaics.labelled_cells(m)
    around = [(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)
              and 0 <= r + dr < labelled.shape[0] and 0 <= c + dc < labelled.shape[1] and labelled[r + dr, c + dc]]
    edges = [0]
    for dr, dc in ((r2 - r, c2 - c) for r2, c2 in around if abs(r2 - r) + abs(c2 - c) == 1):
        label = m.tile(r + dr, c + dc)[1]
        edge = label[-1] if dr < 0 else label[0] if dr > 0 else label[:, -1] if dc < 0 else label[:, 0]
        edges.append(int((edge == 1).sum()))
    return {"labelled": len(around), "with_salt": sum(bool((m.tile(rr, cc)[1] == 1).any()) for rr, cc in around),
            "edge_salt": max(edges)}


def panel(m: mosaics.Mosaic, r: int, c: int, salt: np.ndarray) -> np.ndarray:
    """The 3 x 3 cells around (r, c): section, labels with ``salt`` (the tile's mask) outlined, tile alone."""
    image = np.pad(rs.nearest_known(m, mosaics.continuous(m)), TILE)[r * TILE : (r + 3) * TILE, c * TILE : (c + 3) * TILE]
    label = np.pad(m.label, TILE, constant_values=UNLABELLED)[r * TILE : (r + 3) * TILE, c * TILE : (c + 3) * TILE]
    grey = cv2.cvtColor(cv2.normalize(image.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8),
                        cv2.COLOR_GRAY2BGR)
    over = grey.copy()
    over[label == 1] = (0.5 * over[label == 1] + [0, 0, 127]).astype(np.uint8)
    over[label == UNLABELLED] = (0.7 * over[label == UNLABELLED] + [60, 0, 0]).astype(np.uint8)
    outline = np.zeros(label.shape, np.uint8)
    outline[TILE : 2 * TILE, TILE : 2 * TILE] = salt
    contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(over, contours, -1, (0, 255, 255), 1)
    for line in (TILE, 2 * TILE):
        over[line, :] = over[:, line] = (0, 255, 0)
    alone = cv2.resize(m.tile(r, c)[0].astype(np.uint8), (3 * TILE, 3 * TILE), interpolation=cv2.INTER_NEAREST)
    row = np.concatenate([grey, over, cv2.cvtColor(alone, cv2.COLOR_GRAY2BGR)], axis=1)
    cv2.putText(row, f"{m.name} ({r}, {c}) {m.ids[r, c]}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 0), 1)
    return row


def by_shift(args, scored, truths: np.ndarray, agreed: np.ndarray, salt: np.ndarray) -> dict:
    """``--shifts`` with ``--model``: per shift, the agreed / other empty / salt tiles given salt by
    windows of one tile on the shifted grid, and the salt tiles' score."""
    import keras

    import salt_tf.model.layers  # noqa: F401  (the model's custom layers, for loading)
    import section_context as sc

    figures = json.loads((args.model / "figures.json").read_text())
    keras.mixed_precision.set_global_policy(figures.get("policy", "float32"))
    predict = sc.predictor(keras.saving.load_model(args.model / "model.keras", compile=False), 0)
    tuned = figures["validation_tuned"]
    flats = [rs.nearest_known(m, mosaics.continuous(m)) for m, _ in scored]
    found = {}
    print(f"{args.model}'s windows of one tile on the shifted grid (median salt pixels of the tiles given salt in "
          f"brackets; a tile is 10,201):\n| shift | agreed given salt (of {int(agreed.sum())}) | other empty given salt "
          f"(of {int((~salt & ~agreed).sum())}) | salt tiles given salt (of {int(salt.sum())}) | salt tiles' score |\n"
          "| --- | --- | --- | --- | --- |")
    for shift in args.shifts:
        probs = [p for (_, cells), flat in zip(scored, flats) for p in sc.read_cells(predict, flat, cells, 0, f"shift {shift}")]
        masks = remove_small(np.stack(probs) > tuned["threshold"], tuned["min_area"])
        area = masks.sum(axis=(1, 2))
        on_salt = image_scores(truths, masks)[salt].mean()
        found[shift] = {}
        for name, group in (("agreed", agreed), ("other_empty", ~salt & ~agreed), ("salt", salt)):
            given = area[group][area[group] > 0]
            found[shift][name] = {"given": len(given), "median_pixels": float(np.median(given)) if len(given) else 0.0}
        found[shift]["salt_score"] = float(on_salt)
        print(f"| {shift} | " + " | ".join(f"{g['given']} ({g['median_pixels']:.0f} px)" for g in list(found[shift].values())[:3])
              + f" | {on_salt:.3f} |")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="the benchmarks/real_data.py folder")
    parser.add_argument("--from", dest="folders", type=Path, nargs="+", required=True)
    parser.add_argument("--tgs", type=Path, default=real_data_dir())
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir())
    parser.add_argument("--image", type=Path, help="a PNG of the agreed tiles")
    parser.add_argument("--shifts", type=int, nargs="*", default=[], help="grid shifts to read --model's windows at")
    parser.add_argument("--model", type=Path, help="a section_context.py --margin 0 folder, for --shifts")
    parser.add_argument("--out", type=Path, help="a JSON file for the figures")
    args = parser.parse_args(argv)
    if args.image and args.image.suffix.lower() != ".png":
        refuse(f"{args.image}: --image writes a PNG; give a name ending in .png")
    if bool(args.shifts) != bool(args.model) or (args.model and not (args.model / "model.keras").is_file()):
        refuse("--shifts and --model go together; --model takes a section_context.py --out folder with its model.keras")
    if any(not 0 <= s < TILE for s in args.shifts):
        refuse(f"--shifts takes pixels from 0 to {TILE - 1}")
    if args.model and not (args.model / "figures.json").is_file():
        refuse(f"{args.model}: no figures.json; --model takes a section_context.py --out folder")
    if args.model:
        margin = json.loads((args.model / "figures.json").read_text())["command"]["margin"]
        if int(margin) != 0:
            refuse(f"{args.model}: a model fine-tuned with --margin {margin}; --model takes a --margin 0 folder "
                   "(windows of one tile)")
    for folder in args.folders:
        check(folder)

    scored = rs.scored_cells(rs.held_out_sections(args.real, args.tgs, args.realdata), 50)
    where = [(m, r, c) for m, cells in scored for r, c in cells]
    truths = np.stack([m.tile(r, c)[1] for m, r, c in where])
    salt = truths.any(axis=(1, 2))
    masks = {folder: masks_of(folder, len(truths)) for folder in args.folders}
    given = {name: np.stack([found[name].any(axis=(1, 2)) & ~salt for found in masks.values()]) for name in READINGS}
    agreed = given["blended"].all(axis=0)
    print(f"{len(truths)} tiles, {int((~salt).sum())} empty; empty tiles given salt by how many of the {len(masks)} "
          "folders: " + "; ".join(f"{name}: " + " / ".join(f"{int((given[name].sum(axis=0) >= k).sum())} by {k}+"
                                                           for k in range(1, len(masks) + 1)) for name in READINGS))
    figures = {"tiles": len(truths), "empty": int((~salt).sum()), "agreed": [], "folders": {}}
    for i in np.flatnonzero(agreed):
        m, r, c = where[i]
        around = neighbours(m, r, c)
        figures["agreed"].append({"section": m.name, "cell": [int(r), int(c)], "id": str(m.ids[r, c]), **around,
                                  **{name: int(given[name][:, i].sum()) for name in READINGS}})
        print(f"agreed: {m.name} ({r}, {c}) {m.ids[r, c]}: given salt by " + ", ".join(
            f"{name} {int(given[name][:, i].sum())}" for name in READINGS)
              + f"; of the 8 cells around, {around['labelled']} labelled, {around['with_salt']} with salt; a labelled "
              f"neighbour's salt on {around['edge_salt']} of the {TILE} pixels of a shared edge")
    print(f"| folder | gap blended: all / on the {int(agreed.sum())} agreed / on the rest / the rest alone "
          "| gap 50 px: all / on agreed / on the rest / the rest alone |\n| --- | --- | --- |")
    for folder, found in masks.items():
        scores = {name: image_scores(truths, mask) for name, mask in found.items()}
        split = {name: split_gap(scores["alone"], scores[name], agreed) for name in ("blended", "50 px off")}
        figures["folders"][str(folder)] = split
        cells = [f"{s['gap']:+.3f} / {s['on_agreed']:+.3f} / {s['on_rest']:+.3f} / "
                 f"{s['rest_alone'][0]:+.3f} +- {s['rest_alone'][1]:.3f}" for s in split.values()]
        print(f"| {folder} | " + " | ".join(cells) + " |")
    if args.shifts:
        figures["by_shift"] = by_shift(args, scored, truths, agreed, salt)
    if args.image and not agreed.any():
        print(f"no tile is agreed: {args.image} not written")
    elif args.image:
        first = masks[args.folders[0]]["blended"]
        rows = [panel(*where[i], first[i].astype(np.uint8)) for i in np.flatnonzero(agreed)]
        with atomic_path(args.image) as tmp:
            if not cv2.imwrite(str(tmp), np.concatenate(rows, axis=0)):
                refuse(f"{args.image}: could not be written")
    if args.out:
        write_text(args.out, json.dumps(figures, indent=1))  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main())
