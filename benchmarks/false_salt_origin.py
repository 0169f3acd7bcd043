"""Where a context model's false salt off the tile grid comes from: a ``section_context.py`` fine-tune
read over whole sections, on the tile grid and 50 pixels off it.

    python benchmarks/false_salt_origin.py --real OUT --rescore DIR [--out DIR2]

``DIR`` is a ``benchmarks/section_context.py --out`` folder (its saved model, margin, threshold and
minimum area). Every cell of each section holding scored held-out tiles (``real_sections.py``'s at
shift 50) is predicted twice: by windows on the tile grid (one per cell) and by the grid shifted by
50 pixels, each window's centre kept (``section_context.covering_windows``). Then:

- **where the masks step**: the share of pixel pairs, between neighbouring known cells side by side,
  on which the mask differs across a tile edge, across a line where two windows' centres meet, and
  across a line inside both; the labels' share across a tile edge and inside one beside them (the
  competition drew each tile's mask alone: ``label_seams.py``);
- **each empty held-out tile given salt 50 px off the grid** (at least the minimum area): whether the
  grid gives it salt too, and which neighbouring cells its salt patches (4-connected, over the whole
  section) run on into where the grid calls most of the reached pixels salt: a labelled tile with salt,
  an empty one, a test tile (no label) or an unknown cell.

Figures go to ``DIR2/false_salt.json`` (default: ``DIR``).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import _bench
import numpy as np
from scipy import ndimage

import real_sections as rs
import section_context as sc
from salt_tf.tiles import mosaics
from salt_tf.tiles.data import real_seismic_dir
from salt_tf.tiles.metrics import UNLABELLED, remove_small

TILE = mosaics.TILE
NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def section_map(predict, flat: np.ndarray, margin: int, shift: int) -> np.ndarray:
    """A whole section's probability from the centres of windows on the tile grid shifted by ``shift``."""
    rows, cols = flat.shape[0] // TILE, flat.shape[1] // TILE
    first = shift - TILE if shift else 0
    cells = [(r, c) for r in range(rows + (1 if shift else 0)) for c in range(cols + (1 if shift else 0))]
    origins = [(first + r * TILE, first + c * TILE) for r, c in cells]
    centres = predict(sc.windows_at(flat, origins, margin))
    pad = 2 * TILE
    full = np.zeros((flat.shape[0] + 2 * pad, flat.shape[1] + 2 * pad), np.float32)
    for (y, x), centre in zip(origins, centres):
        full[y + pad : y + pad + TILE, x + pad : x + pad + TILE] = centre
    return full[pad:-pad, pad:-pad]


def step_counts(mask: np.ndarray, known: np.ndarray, columns: list[int]) -> tuple[int, int]:
    """(pixel pairs that differ, pairs) across the lines between column ``k - 1`` and ``k`` of each cell
    (``k`` in ``columns``, TILE: the edge to the next cell), over neighbouring known cells side by side."""
    differ = total = 0
    for r, c in zip(*np.nonzero(known[:, :-1] & known[:, 1:])):
        rows = mask[r * TILE : (r + 1) * TILE]
        for k in columns:
            differ += int((rows[:, c * TILE + k - 1] != rows[:, c * TILE + k]).sum())
            total += TILE
    return differ, total


def neighbour_kind(m: mosaics.Mosaic, r: int, c: int) -> str:
    if not m.known[r, c]:
        return "unknown cell"
    label = m.label[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
    if (label == UNLABELLED).all():
        return "test tile"
    return "salt tile" if (label == 1).any() else "empty tile"


def origin_of(m: mosaics.Mosaic, r: int, c: int, grid: np.ndarray, off: np.ndarray) -> dict:
    """An empty tile given salt off the grid: does the grid give it salt, and into which neighbours
    where the grid calls it salt does its off-grid salt run on."""
    cell = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
    patches, _ = ndimage.label(off)
    reached = np.isin(patches, np.setdiff1d(np.unique(patches[cell][off[cell]]), [0]))
    into = []
    for dr, dc in NEIGHBOURS:
        rr, cc = r + dr, c + dc
        if 0 <= rr < m.known.shape[0] and 0 <= cc < m.known.shape[1]:
            there = reached[rr * TILE : (rr + 1) * TILE, cc * TILE : (cc + 1) * TILE]
            if there.sum() >= TILE and grid[rr * TILE : (rr + 1) * TILE, cc * TILE : (cc + 1) * TILE][there].mean() >= 0.5:
                into.append(neighbour_kind(m, rr, cc))
    return {"off_grid_salt": int(off[cell].sum()), "grid_salt": int(grid[cell].sum()), "continues_into": sorted(set(into))}


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--real", type=Path, required=True, help="the benchmarks/real_data.py folder the fine-tune started from")
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir(), help="../shared/realdata")
    parser.add_argument("--rescore", type=Path, required=True, help="a benchmarks/section_context.py --out folder")
    parser.add_argument("--out", type=Path, help="where false_salt.json goes (default: --rescore)")
    args = parser.parse_args()
    _bench.header(f"model {args.rescore / 'model.keras'}")
    loaded = argparse.Namespace(**vars(args), margin=None)
    earlier = sc.earlier_fine_tune(loaded)
    out = args.out or args.rescore
    out.mkdir(parents=True, exist_ok=True)
    model, tuned = sc.rescored(loaded, earlier, lambda **found: print(found, flush=True))
    margin, threshold, min_area = loaded.margin, tuned["threshold"], tuned["min_area"]
    predict = sc.predictor(model, margin)
    differ, pairs = Counter(), Counter()
    tiles = []
    for m, cells in rs.scored_cells(rs.held_out_sections(args.real, args.tgs, args.realdata), 50):
        flat = rs.nearest_known(m, mosaics.continuous(m))
        grid, off = (section_map(predict, flat, margin, shift) > threshold for shift in (0, 50))
        labelled = m.known & ~np.array([[(m.label[r * TILE, c * TILE] == UNLABELLED) for c in range(m.known.shape[1])]
                                        for r in range(m.known.shape[0])])
        for name, counted in (("label, tile edge", step_counts(m.label, labelled, [TILE])),
                              ("label, inside", step_counts(m.label, labelled, [50])),
                              ("grid: tile edge = window edge", step_counts(grid, m.known, [TILE])),
                              ("grid: inside", step_counts(grid, m.known, [25, 50])),
                              ("50 px: tile edge", step_counts(off, m.known, [TILE])),
                              ("50 px: window edge", step_counts(off, m.known, [50])),
                              ("50 px: inside", step_counts(off, m.known, [25]))):
            differ[name] += counted[0]
            pairs[name] += counted[1]
        for r, c in cells:
            empty = not m.tile(r, c)[1].any()
            cell_off = off[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            if empty and remove_small(cell_off[None], min_area).any():
                tiles.append({"cell": [int(r), int(c)], "section": m.name, **origin_of(m, r, c, grid, off)})
                print(tiles[-1], flush=True)
    found = {"threshold": threshold, "min_area": min_area, "margin": margin,
             "steps": {name: differ[name] / max(pairs[name], 1) for name in pairs}, "pairs": dict(pairs),
             "empty_tiles_given_salt_off_the_grid": tiles,
             "summary": Counter(("grid too" if t["grid_salt"] >= max(min_area, 1) else "grid empty") + ": "
                                + (", ".join(t["continues_into"]) or "no neighbour the grid calls salt") for t in tiles)}
    (out / "false_salt.json.part").write_text(json.dumps(found, indent=1))
    (out / "false_salt.json.part").replace(out / "false_salt.json")
    for key in ("steps", "summary"):
        print(json.dumps(found[key], indent=1))


if __name__ == "__main__":
    main()
