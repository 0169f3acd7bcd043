"""Do the competition's salt labels continue across tile edges, where the seismic does?

    python benchmarks/label_seams.py [--tgs DIR]

The jigsaw mosaics (``salt_tf.tiles.mosaics``, ``$SALT_TF_REALDATA_DIR`` or ``../shared/realdata``)
put neighbouring train tiles side by side. For every pair of neighbouring train tiles (left/right
and above/below), two rows of figures:

- labels: the share of the shared edge's pixel pairs (the last column of one tile, the first of the
  next) whose labels differ, against the same share between two adjacent columns (rows) inside the
  tiles (49 and 50): labels drawn as one body continue across an edge as they do inside a tile;
- images: the correlation of the same two columns (rows) of the continuous section
  (``mosaics.continuous``) across the edge and inside the tile, for pairs whose labels agree on the
  edge (under 5% differ) and pairs whose labels do not (20% or more): if the seismic continues
  across the edge as well as inside a tile where the labels stop, the labels were drawn tile by tile.

Last, how many of each train tile's four side neighbours and of its eight neighbouring cells are
labelled tiles (``mosaics.labelled_neighbours``): only there can a window that reads across a
tile's edges be judged by labels.

No model, no TensorFlow: a few seconds.
"""
from __future__ import annotations

from collections import Counter

import _bench
import numpy as np

from salt_tf.tiles import mosaics
from salt_tf.tiles.data import real_seismic_dir

TILE = mosaics.TILE


def pairs(section: mosaics.Mosaic):
    """(side, first tile's cell, second tile's cell) of every two neighbouring labelled tiles."""
    for r, c, r2, c2, side in mosaics.neighbours(mosaics.labelled_cells(section)):
        yield {"right": "left/right", "below": "above/below"}[side], (r, c), (r2, c2)


def edge_and_inside(a: np.ndarray, b: np.ndarray, side: str):
    """((a's last column, b's first), (a's columns 49, 50)); rows for above/below."""
    if side == "left/right":
        return (a[:, -1], b[:, 0]), (a[:, 49], a[:, 50])
    return (a[-1], b[0]), (a[49], a[50])


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    args = parser.parse_args()
    _bench.header()
    realdata = real_seismic_dir()
    sections = mosaics.load_sections(realdata, args.tgs / "train", [args.tgs / "test" / "images"])
    rows = []  # side, label share differing across the edge, inside; image correlation across, inside
    sides, around = Counter(), Counter()
    for section in sections:
        labelled = mosaics.labelled_cells(section)
        found = mosaics.labelled_neighbours(section)
        sides.update(found[0][labelled].tolist())
        around.update(found[1][labelled].tolist())
        image = mosaics.continuous(section)
        for side, (r, c), (r2, c2) in pairs(section):
            (la, lb), (li, lj) = edge_and_inside(section.tile(r, c)[1], section.tile(r2, c2)[1], side)
            tile_a = image[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE]
            tile_b = image[r2 * TILE:(r2 + 1) * TILE, c2 * TILE:(c2 + 1) * TILE]
            (ia, ib), (ii, ij) = edge_and_inside(tile_a, tile_b, side)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows.append((side, (la != lb).mean(), (li != lj).mean(), bool(la.any()) != bool(lb.any()),
                             np.corrcoef(ia, ib)[0, 1], np.corrcoef(ii, ij)[0, 1]))
    print(f"{len(sections)} sections, {len(rows)} pairs of neighbouring labelled train tiles")
    print("| pairs | n | label pixels differing across the edge | inside a tile | salt on one side only "
          "| image correlation across / inside, labels agree | the same, labels disagree (>= 20%) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for side in ("left/right", "above/below"):
        mine = [row for row in rows if row[0] == side]
        across, inside = np.mean([row[1] for row in mine]), np.mean([row[2] for row in mine])
        agree = [row for row in mine if row[1] < 0.05]
        disagree = [row for row in mine if row[1] >= 0.2]

        def corr(group):
            if not group:
                return "-"
            return (f"{np.nanmedian([row[4] for row in group]):.3f} / {np.nanmedian([row[5] for row in group]):.3f} "
                    f"({len(group)})")

        print(f"| {side} | {len(mine)} | {across:.4f} | {inside:.4f} | {sum(row[3] for row in mine)} "
              f"| {corr(agree)} | {corr(disagree)} |")

    print(f"\n{sum(sides.values())} labelled tiles in the sections; how many of their "
          "neighbouring cells are labelled tiles too:")
    print("| neighbours labelled | " + " | ".join(str(k) for k in range(9)) + " |")
    print("| --- |" + " --- |" * 9)
    for name, counts, most in (("of the four sides", sides, 4), ("of the eight around", around, 8)):
        print(f"| {name} | " + " | ".join(str(counts[k]) if k <= most else "" for k in range(9)) + " |")


if __name__ == "__main__":
    main()
