"""The off-grid gaps scored only where labels can judge them: each held-out tile inside a section scored
on its pixels at least ``band`` pixels from every edge (and corner) it shares with a cell that holds no
label (a test tile or an unknown cell), from saved probabilities; no model is run.

    python benchmarks/judged_pixels.py --real OUT --from DIR [DIR ...] [--bands 0 10 25 50] [--out FILE]

A window off the tile grid carries salt across tile edges; where the cell beyond is unlabelled, no label
says whether the body goes on there (``benchmarks/RESULTS.md``, "No held-out tile has labels on all four
sides"). Band 0 is the ordinary score. Each ``DIR`` is either a ``section_context.py`` folder
(``probs_shift0/shift50/stride50.npy``, its tuned threshold and minimum area in ``figures.json``: the grid,
50 pixels off it, blended as ``segment.py`` reads) or a ``real_sections.py`` folder (``probabilities.npz``,
``real_sections.json``: ``predict.py`` tile by tile against the default ``segment.py``). The minimum area
empties a tile's mask on the whole tile first, as everywhere else; then only the judged pixels count
(``metrics.image_scores`` with ``labelled``). Last, for each reading whose windows' centres lie at
known lines (the grid, 50 px off, ``predict.py``), the held-out empty tiles given salt as whole window
centres (``whole_centres``: each window decided its centre is salt, the false salt the twenty-sixth and
thirty-third sessions found off the grid). Folders saved before the thirty-second session hold float16
probabilities: pixels within a rounding step of the threshold may flip, and band 0 may differ from the
folder's own figures by 0.001 (``t50s1``: 0.6381 against 0.6390).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _bench  # noqa: F401  (the project on sys.path)
from _bench import refuse
import numpy as np

import real_sections as rs
from salt_tf.common.atomic import write_text
from salt_tf.tiles import mosaics
from salt_tf.tiles.data import real_data_dir, real_seismic_dir
from salt_tf.tiles.metrics import image_scores, remove_small

TILE = mosaics.TILE


def judged_pixels(labelled: np.ndarray, r: int, c: int, band: int) -> np.ndarray:
    """(101, 101) bool: the pixels of cell (r, c) at least ``band`` pixels (in rows or columns) from every
    side and corner it shares with a cell of the section that is not a labelled tile (``labelled``: the
    section's ``mosaics.labelled_cells``). Beyond the section's border there is no cell and nothing to
    carry across: those sides are judged."""
    keep = np.ones((TILE, TILE), bool)
    if band <= 0:
        return keep
    rows, cols = labelled.shape
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rr, cc = r + dr, c + dc
            if (dr, dc) == (0, 0) or not (0 <= rr < rows and 0 <= cc < cols) or labelled[rr, cc]:
                continue
            ys = slice(0, band) if dr < 0 else slice(TILE - band, TILE) if dr > 0 else slice(0, TILE)
            xs = slice(0, band) if dc < 0 else slice(TILE - band, TILE) if dc > 0 else slice(0, TILE)
            keep[ys, xs] = False
    return keep


CENTRE_LINES = {"on the grid": 0, "predict.py": 0, "50 px off": 50}  # where windows' centres meet inside a tile


def whole_centres(mask: np.ndarray, cut: int, full: float = 0.95) -> bool:
    """Whether a tile's salt (``mask``, (101, 101)) comes as whole window centres: it has salt, and every
    piece of it that one window's centre covers is ``full`` salt or none. The piece is the tile itself
    for windows on the grid (``cut`` 0) and its four quarters, split at row and column ``cut``, for the
    grid shifted by ``cut``: a window that called its whole centre salt, not a patch it traced."""
    edges = [slice(0, TILE)] if cut == 0 else [slice(0, cut), slice(cut, TILE)]
    pieces = [mask[a, b] for a in edges for b in edges]
    return bool(mask.any()) and all(p.mean() >= full or not p.any() for p in pieces)


def readings(folder: Path) -> tuple[dict[str, np.ndarray], float, int, str]:
    """(variant -> (105, 101, 101) probabilities with the grid's reading first, threshold, minimum area,
    what the folder is)."""
    if (folder / "figures.json").is_file():
        tuned = json.loads((folder / "figures.json").read_text())["validation_tuned"]
        probs = {name: np.load(folder / f"probs_{key}.npy").astype(np.float32)
                 for name, key in (("on the grid", "shift0"), ("50 px off", "shift50"), ("blended", "stride50"))}
        return probs, tuned["threshold"], tuned["min_area"], "section_context.py"
    if (folder / "real_sections.json").is_file():
        saved = json.loads((folder / "real_sections.json").read_text())
        with np.load(folder / "probabilities.npz") as found:
            probs = {"predict.py": found["predict.py, tile by tile"].astype(np.float32),
                     "segment.py default": found["segment, stride 50, minmax"].astype(np.float32)}
        return probs, saved["threshold"], saved["min_area"], "real_sections.py"
    refuse(f"{folder}: neither a section_context.py folder (figures.json) nor a real_sections.py one "
           "(real_sections.json)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="the benchmarks/real_data.py folder")
    parser.add_argument("--from", dest="folders", type=Path, nargs="+", required=True)
    parser.add_argument("--bands", type=int, nargs="+", default=[0, 10, 25, 50])
    parser.add_argument("--tgs", type=Path, default=real_data_dir())
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir())
    parser.add_argument("--out", type=Path, help="a JSON file for the figures")
    args = parser.parse_args(argv)

    scored = rs.scored_cells(rs.held_out_sections(args.real, args.tgs, args.realdata), 50)
    truths = np.stack([m.tile(r, c)[1] for m, cells in scored for r, c in cells]).astype(np.uint8)
    salt = truths.any(axis=(1, 2))
    labelled = [mosaics.labelled_cells(m) for m, _ in scored]  # once per section, for every band
    figures = {"tiles": len(truths), "with_salt": int(salt.sum()), "folders": {}}
    for folder in args.folders:
        probs, threshold, min_area, kind = readings(folder)
        if any(len(p) != len(truths) for p in probs.values()):
            refuse(f"{folder}: {len(next(iter(probs.values())))} tiles, not the {len(truths)} of {args.real}'s held-out tiles")
        masks = {name: remove_small(p > threshold, min_area).astype(np.uint8) for name, p in probs.items()}
        base = next(iter(masks))
        print(f"{folder} ({kind}; threshold {threshold}, minimum area {min_area}); {len(truths)} tiles, "
              f"{int(salt.sum())} with salt")
        print("| band | judged pixels | " + " | ".join(masks) + " | salt tiles: " + " / ".join(masks)
              + " | empty tiles given salt on judged pixels |")
        print("| --- " * (4 + len(masks)) + "|")
        rows = {}
        for band in args.bands:
            judged = np.stack([judged_pixels(known, r, c, band) for known, (_, cells) in zip(labelled, scored)
                               for r, c in cells])
            scores = {name: image_scores(truths, mask, judged) for name, mask in masks.items()}
            cells = []
            for name, s in scores.items():
                if name == base:
                    cells.append(f"{np.nanmean(s):.4f}")
                else:
                    gap, se = rs.paired_difference(scores[base][~np.isnan(s)], s[~np.isnan(s)])
                    cells.append(f"{np.nanmean(s):.4f} ({gap:+.3f} +- {se:.3f})")
            on_salt = " / ".join(f"{np.nanmean(s[salt]):.3f}" for s in scores.values())
            given = {name: int(((mask & judged).any(axis=(1, 2)) & ~salt).sum()) for name, mask in masks.items()}
            print(f"| {band} | {judged.mean():.3f} | " + " | ".join(cells) + f" | {on_salt} | "
                  + " / ".join(map(str, given.values())) + " |")
            rows[band] = {"judged_share": float(judged.mean()),
                          **{name: {"score": float(np.nanmean(s)), "salt_tiles": float(np.nanmean(s[salt])),
                                    "empty_tiles_given_salt": given[name]} for name, s in scores.items()}}
        whole = {name: [int(i) for i in np.flatnonzero(mask.any(axis=(1, 2)) & ~salt)
                        if whole_centres(mask[i], CENTRE_LINES[name])] for name, mask in masks.items() if name in CENTRE_LINES}
        print("empty tiles given salt as whole window centres (every window centre in the tile 95% salt or none): "
              + ", ".join(f"{name} {len(found)}" for name, found in whole.items()))
        figures["folders"][str(folder)] = {"kind": kind, "threshold": threshold, "min_area": min_area, "bands": rows,
                                           "empty_tiles_given_whole_centres": whole}
    if args.out:
        write_text(args.out, json.dumps(figures, indent=1))  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main())
