"""The competition's tiles put back into the sections they were cut from: the 1st-place solution's
jigsaw (``../shared/realdata/mosaics``, README there). Pure NumPy and SciPy, no TensorFlow.

A mosaic CSV is a grid of tile ids, one row per row of tiles (depth increases downward); an empty
cell, or an id found in no folder given, is unknown. ``assemble`` reads the tiles into one section
of grey levels with a label on every pixel: 1 salt, 0 not salt where a train tile's mask says so,
``UNLABELLED`` on test tiles (the competition kept their masks) and on unknown cells, whose grey
levels are 0 and whose ``known`` cells are False.

Each released tile was min-max stretched on its own (90% of the train tiles span exactly 0..255), so
the assembled section steps in brightness and contrast at tile edges. ``continuous`` undoes that up
to one gain and offset for each group of connected tiles: per tile a gain and an offset, fitted by
least squares so that every pair of neighbours continues across their shared edge.
"""
from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import lsqr

from salt_tf.tiles.data import TILE_SHAPE, DataError, read_image, read_mask
from salt_tf.tiles.framing import stretch
from salt_tf.tiles.metrics import UNLABELLED

TILE = TILE_SHAPE[0]


@dataclass
class Mosaic:
    """One section: ``image`` uint8 (rows * 101, cols * 101), ``label`` uint8 (1 salt, 0 not,
    UNLABELLED), ``ids`` (rows, cols) of str ('' unknown), ``known`` bool (rows, cols)."""
    name: str
    image: np.ndarray
    label: np.ndarray
    ids: np.ndarray
    known: np.ndarray

    def tile(self, r: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        """The image and label of grid cell (r, c)."""
        window = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        return self.image[window], self.label[window]


def read_grid(path: str | os.PathLike) -> np.ndarray:
    """The (rows, cols) grid of tile ids of a mosaic CSV ('' where a cell is empty); short rows are
    padded with empty cells."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read the mosaic ({err})") from None
    rows = [row for row in rows if any(row)] if rows else []
    if not rows:
        raise DataError(f"{path}: expected a grid of tile ids, found no id")
    width = max(len(row) for row in rows)
    return np.array([row + [""] * (width - len(row)) for row in rows], dtype=object)


def assemble(path: str | os.PathLike, labelled: str | os.PathLike, unlabelled: list) -> Mosaic:
    """The section of a mosaic CSV: tiles from ``labelled`` (a folder in Kaggle's train layout, with
    ``images/`` and ``masks/``) carry their masks; tiles found in one of the ``unlabelled`` image
    folders carry UNLABELLED; ids in neither are unknown."""
    ids = read_grid(path)
    labelled = Path(labelled)
    image = np.zeros((ids.shape[0] * TILE, ids.shape[1] * TILE), np.uint8)
    label = np.full(image.shape, UNLABELLED, np.uint8)
    known = np.zeros(ids.shape, bool)
    for (r, c), tile_id in np.ndenumerate(ids):
        if not tile_id:
            continue
        window = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        if (labelled / "images" / f"{tile_id}.png").is_file():
            image[window] = read_image(labelled / "images" / f"{tile_id}.png")
            label[window] = read_mask(labelled / "masks" / f"{tile_id}.png")
            known[r, c] = True
            continue
        found = next((Path(d) / f"{tile_id}.png" for d in unlabelled if (Path(d) / f"{tile_id}.png").is_file()), None)
        if found is not None:
            image[window] = read_image(found)
            known[r, c] = True
    return Mosaic(Path(path).stem, image, label, ids, known)


def neighbours(known: np.ndarray):
    """Pairs of neighbouring cells where ``known`` is True: (r, c, r2, c2, side), side 'right' or 'below'."""
    rows, cols = known.shape
    for r in range(rows):
        for c in range(cols):
            if known[r, c] and c + 1 < cols and known[r, c + 1]:
                yield r, c, r, c + 1, "right"
            if known[r, c] and r + 1 < rows and known[r + 1, c]:
                yield r, c, r + 1, c, "below"


def labelled_cells(mosaic: Mosaic) -> np.ndarray:
    """(rows, cols) bool: the cells whose every pixel is labelled (the train tiles)."""
    rows, cols = mosaic.ids.shape
    return np.array([[(mosaic.tile(r, c)[1] != UNLABELLED).all() for c in range(cols)] for r in range(rows)], bool)


def labelled_neighbours(mosaic: Mosaic) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int each: how many of a cell's four side neighbours, and of its eight neighbouring
    cells, are labelled tiles (``labelled_cells``). A window that reads across a tile's edges is judged
    by labels only where these are."""
    labelled = np.pad(labelled_cells(mosaic), 1).astype(int)
    rows, cols = mosaic.ids.shape
    around = sum(labelled[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols] for dr in (-1, 0, 1) for dc in (-1, 0, 1))
    sides = sum(labelled[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols] for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    return sides, around - labelled[1:-1, 1:-1]


def label_seams(mosaic: Mosaic, share: float = 0.2) -> list[tuple[int, int, int, int, str]]:
    """The label seams, as ``neighbours`` gives pairs of cells: two neighbouring labelled tiles whose
    labels differ on ``share`` or more of their shared edge. The competition's masks were drawn tile
    by tile and stop at tile edges where the seismic goes on (``benchmarks/label_seams.py``)."""
    found = []
    for r, c, r2, c2, side in neighbours(labelled_cells(mosaic)):
        a, b = mosaic.tile(r, c)[1], mosaic.tile(r2, c2)[1]
        mine, theirs = (a[:, -1], b[:, 0]) if side == "right" else (a[-1], b[0])
        if (mine != theirs).mean() >= share:
            found.append((r, c, r2, c2, side))
    return found


def unlabel_seams(mosaic: Mosaic, band: int, share: float = 0.2) -> Mosaic:
    """``mosaic`` with ``band`` pixels on both sides of every label seam (``label_seams``) set to
    ``UNLABELLED``: which side is right is unknown, so neither is trained on there."""
    if band <= 0:
        return mosaic
    label = mosaic.label.copy()
    for r, c, r2, c2, side in label_seams(mosaic, share):
        if side == "right":
            label[r * TILE : (r + 1) * TILE, c2 * TILE - band : c2 * TILE + band] = UNLABELLED
        else:
            label[r2 * TILE - band : r2 * TILE + band, c * TILE : (c + 1) * TILE] = UNLABELLED
    return Mosaic(mosaic.name, mosaic.image, label, mosaic.ids, mosaic.known)


def _solve(pairs: list[tuple[int, int, float]], n: int, anchor: float) -> np.ndarray:
    """Least squares for x (n,) with x_i - x_j = d for each (i, j, d), and a weak pull of every x_k
    towards 0 that fixes what the differences leave free (each group of connected tiles' level)."""
    rows = [e for e in range(len(pairs)) for _ in (0, 1)] + list(range(len(pairs), len(pairs) + n))
    cols = [k for i, j, _ in pairs for k in (i, j)] + list(range(n))
    values = [v for _ in pairs for v in (1.0, -1.0)] + [anchor] * n
    matrix = coo_matrix((values, (rows, cols)), shape=(len(pairs) + n, n)).tocsr()
    rhs = np.array([d for _, _, d in pairs] + [0.0] * n)
    return lsqr(matrix, rhs, atol=1e-12, btol=1e-12)[0]


def continuous(mosaic: Mosaic, anchor: float = 1e-3) -> np.ndarray:
    """The section's grey levels as float32 with each tile's own stretch undone: tile k's pixels g
    become ``gain_k * g + offset_k`` so that, across every shared edge, the last row (or column) of
    one tile and the first of its neighbour have the same spread and the same mean. Log gains, then
    offsets, are fitted by least squares over all edges (a tile's edge with no spread, an all-black
    tile's, gives no gain equation); a weak pull (``anchor``) towards gain 1 and offset 0 fixes each
    group of connected tiles' overall level. Unknown cells stay 0."""
    cells = list(zip(*np.nonzero(mosaic.known)))
    index = {rc: k for k, rc in enumerate(cells)}
    edges = []
    for r, c, r2, c2, side in neighbours(mosaic.known):
        a, b = mosaic.tile(r, c)[0].astype(np.float64), mosaic.tile(r2, c2)[0].astype(np.float64)
        edges.append((index[(r, c)], index[(r2, c2)], *((a[:, -1], b[:, 0]) if side == "right" else (a[-1], b[0]))))
    # spread: g_i * std(a) = g_j * std(b)  ->  log g_i - log g_j = log std(b) - log std(a)
    log_gain = _solve([(i, j, np.log(eb.std() / ea.std())) for i, j, ea, eb in edges
                       if ea.std() > 1.0 and eb.std() > 1.0], len(cells), anchor)
    gain = np.exp(log_gain)
    # mean: g_i * mean(a) + o_i = g_j * mean(b) + o_j  ->  o_i - o_j = g_j * mean(b) - g_i * mean(a)
    offset = _solve([(i, j, gain[j] * eb.mean() - gain[i] * ea.mean()) for i, j, ea, eb in edges],
                    len(cells), anchor)
    out = np.zeros(mosaic.image.shape, np.float32)
    for (r, c), k in index.items():
        window = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
        out[window] = gain[k] * mosaic.image[window].astype(np.float64) + offset[k]
    return out


def mosaic_paths(folder: str | os.PathLike) -> list[Path]:
    """The mosaic CSVs of a folder, sorted by name."""
    paths = sorted(Path(folder).glob("mosaic_*.csv"))
    if not paths:
        raise DataError(f"{folder}: no mosaic_*.csv files")
    return paths


def load_sections(folder: str | os.PathLike, labelled: str | os.PathLike, unlabelled: list) -> list[Mosaic]:
    """Every mosaic of ``folder/mosaics`` assembled (``assemble``), with the folder's ``test_tiles``
    among the unlabelled image folders."""
    folder = Path(folder)
    return [assemble(path, labelled, [*unlabelled, folder / "test_tiles"]) for path in mosaic_paths(folder / "mosaics")]


@functools.lru_cache(maxsize=1)
def data_sections(folder: str, data: str, seams: int = 0) -> tuple[Mosaic, ...]:
    """The sections of ``folder`` (``load_sections``) with a data set's tiles in Kaggle's layout: its
    train tiles labelled, its test tiles (if any) and ``folder/test_tiles`` not, ``seams`` pixels on
    both sides of a label seam unlabelled (``unlabel_seams``); read once per process."""
    test = Path(data) / "test" / "images"
    sections = load_sections(folder, Path(data) / "train", [test] if test.is_dir() else [])
    return tuple(unlabel_seams(m, seams) for m in sections)


def sample_windows(sections: list[Mosaic], n: int, seed: int, exclude=(), min_labelled: float = 0.25,
                   tries: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows (uint8 images, labels) of 101x101 at random positions of the continuous sections,
    framed as the tiles were (``framing.stretch``): across the tile grid, where the model learns that
    salt does not begin at a tile's edge. A window never touches an unknown cell nor a cell whose
    id is in ``exclude`` (a validation fold's tiles: none of their pixels is trained on), and has at
    least ``min_labelled`` of its pixels labelled: a section is drawn by its number of window
    positions, a position uniformly, and a draw that breaks a rule is drawn again. Fewer than ``n``
    come back when ``tries`` x ``n`` draws find no more."""
    exclude = set(exclude)
    rng = np.random.default_rng(seed)
    usable = []
    for m in sections:
        blocked = ~m.known | np.isin(m.ids, list(exclude))
        if (~blocked).sum() and max(m.ids.shape) > 1:
            usable.append((m, np.kron(blocked, np.ones((TILE, TILE), bool))))
    weights = np.array([(m.image.shape[0] - TILE + 1) * (m.image.shape[1] - TILE + 1) for m, _ in usable], float)
    images, labels, flats = [], [], {}
    for _ in range(tries * n if usable else 0):
        if len(images) == n:
            break
        k = int(rng.choice(len(usable), p=weights / weights.sum()))
        m, blocked = usable[k]
        y, x = (int(rng.integers(0, s - TILE + 1)) for s in m.image.shape)
        window = np.s_[y : y + TILE, x : x + TILE]
        label = m.label[window]
        if blocked[window].any() or np.mean(label != UNLABELLED) < min_labelled:
            continue
        if k not in flats:
            flats[k] = continuous(m)
        images.append(stretch(flats[k][window][None])[0])
        labels.append(label)
    if not images:
        return np.zeros((0, TILE, TILE), np.uint8), np.zeros((0, TILE, TILE), np.uint8)
    return np.stack(images), np.stack(labels)
