"""Context learned: a real-data run's fold-0 model fine-tuned on windows wider than a tile, then scored
with that context on its held-out tiles, on the tile grid and 50 pixels off it.

    python benchmarks/section_context.py --real OUT --margin 50 --minutes 8 [--steps N] [--seed 0] --out DIR

``OUT`` is a ``benchmarks/real_data.py`` folder (its ``run`` of fold 0, the held-out split in
``data/holdout``). Every window is 101 + 2 x ``--margin`` pixels at the tiles' scale (50: 201 pixels,
resized to 256 as a tile's 101 are to 128), stretched to 0..255 on its own:

- **training** (the run's phase 2: AdamW at its learning rate and weight decay, the Lovasz hinge with
  unlabelled pixels out, horizontal flips, batches of 8 for ``--minutes`` or ``--steps``, in the run's
  precision as ``train.py`` picks it on this machine; ``--bfloat16`` as before; ``--lr`` another
  learning rate, ``--frozen-norm`` batch normalisation kept as the run left it, ``--loss symmetric``
  the mean of the Lovasz hinge on salt and on its complement, ``--bce-weight`` binary cross-entropy
  added, ``--empty-weight W`` counted W times on a window whose centre is labelled with no salt (a
  tile alone: no salt in it); ``--rehearse W`` adds W x the loss on 8 of fold 0's training tiles
  alone, as ``predict.py`` reads them, at the run's input size, to each step): half of each batch
  is fold 0's training tiles, each with its section around it (``mosaics.continuous``, the unknown
  cells filled from the nearest known pixel) or, for a tile in no section, reflected around it
  (``--tile-share``: another share); the rest windows anywhere on the sections, at least a quarter
  of their centre labelled (``--empty-share S``: a share S of them with an empty centre beside salt,
  none labelled in the centre and some in the margin, the cases where a context reading puts salt on
  an empty tile; ``--mute-share S``: a share S of all the windows with a top mute, ``with_mute``, which
  left the false salt at the USGS line's ends where it was, benchmarks/RESULTS.md, fortieth session;
  ``--section-seams N``: N pixels on both sides of every label seam unlabelled, no better, forty-first).
  Every other label in a window counts. The held-out tiles and fold 0's validation tiles are unknown cells
  to training: no pixel of them, image or label, is trained on;
- **scoring**: every image known. The threshold and minimum area are tuned on fold 0's validation
  tiles with their context, then the 640 held-out tiles are scored tile by tile with theirs (and alone,
  as ``predict.py`` reads a tile: ``holdout_alone``, tuned on the validation tiles read alike, each
  tile's score in ``holdout_alone_scores.npy`` and paired with the start's own ``predict.py`` reading,
  ``REAL/holdout_submission.csv``: ``paired_gain``), and the
  held-out tiles inside sections (``real_sections.py``'s at ``--shifts 0 50``) on the tile grid and
  on the grid shifted by 50 pixels, each tile's prediction the centres of the windows that cover it.

  The same tiles are also read as ``segment.py`` reads a section (``stride 50, blended``): windows
  whose centres start every 50 pixels from -25 (none on the tile grid of any section here), each with
  its margin, their centres blended with ``segment.py``'s weights (``sections.weight_window``).

``--margin 0`` is the control: the same loop and scores with windows of one tile. ``--targets teacher``:
the windows anywhere learn not the tiles' labels but the starting model's own reading of every known
cell tile by tile (thresholded as the run tuned it; test tiles too), so that a window across the grid
is taught what the grid reads there (the tiles keep their labels). ``--rescore DIR``
scores an earlier run's saved model (``DIR/model.keras``, with its margin, threshold and minimum area)
inside the sections again, with no fine-tune. With a margin, ``OUT/run`` is the fine-tuned model as a
run folder (``export_run``): ``segment.py --run OUT/run`` reads each window with its context, and
``predict.py --run OUT/run`` reads tiles alone, each at its own tuned threshold. Figures go to
``DIR/figures.json`` as they come, the 105 tiles' probabilities to ``DIR/probs_*.npy`` (float32; float16
before the thirty-second session, which moved pixels within a rounding step of the threshold: 0.001 of a
score at most).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import _bench
import cv2
import numpy as np
import pandas as pd

import real_sections as rs
from salt_tf.seismic.sections import mirror_into_mutes, weight_window
from salt_tf.tiles import mosaics, pipeline
from salt_tf.tiles.data import read_image, read_mask, real_seismic_dir
from salt_tf.tiles.framing import stretch
from salt_tf.tiles.metrics import UNLABELLED, competition_score, image_scores, remove_small, tune_postprocessing

TILE = mosaics.TILE


def input_size(margin: int) -> int:
    """The model's input side for a window of 101 + 2 x margin pixels: a tile's 101 -> 128, rounded to 32."""
    return int(round((TILE + 2 * margin) * 128 / TILE / 32)) * 32


def cell_window(padded: np.ndarray, pad: int, r: int, c: int, margin: int) -> np.ndarray:
    """The window of cell (r, c) with ``margin`` pixels around it, from a section padded by ``pad``."""
    y, x = pad + r * TILE - margin, pad + c * TILE - margin
    return padded[y : y + TILE + 2 * margin, x : x + TILE + 2 * margin]


def windows_at(values: np.ndarray, origins: list[tuple[int, int]], margin: int) -> list[np.ndarray]:
    """The windows whose 101-pixel centres start at ``origins`` (which may lie up to 2 tiles outside the
    section), each with ``margin`` pixels around it, the section reflected beyond its edges."""
    pad = margin + 2 * TILE
    padded = np.pad(values, pad, mode="reflect")
    side = TILE + 2 * margin
    return [padded[y + pad - margin : y + pad - margin + side, x + pad - margin : x + pad - margin + side] for y, x in origins]


def covering_windows(values: np.ndarray, cells, shift: int, margin: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The windows (with ``margin``) of the tile grid shifted by ``shift`` that cover each cell, one per
    cell at shift 0, four otherwise, with their centres' origins in the section."""
    steps = (0,) if shift == 0 else (-TILE, 0)
    origins = [(r * TILE + shift + dy, c * TILE + shift + dx) for r, c in cells for dy in steps for dx in steps]
    return windows_at(values, origins, margin), origins


def tiles_from_centres(cells, origins, centres: np.ndarray, shift: int) -> list[np.ndarray]:
    """Each cell's tile put together from the (101, 101) centres of ``covering_windows``."""
    per = 1 if shift == 0 else 4
    tiles = []
    for k, (r, c) in enumerate(cells):
        tile = np.zeros((TILE, TILE), np.float32)
        for (y, x), centre in zip(origins[per * k : per * (k + 1)], centres[per * k : per * (k + 1)]):
            ys, xs, ye, xe = max(y, r * TILE), max(x, c * TILE), min(y, r * TILE) + TILE, min(x, c * TILE) + TILE
            if ye > ys and xe > xs:
                tile[ys - r * TILE : ye - r * TILE, xs - c * TILE : xe - c * TILE] = centre[ys - y : ye - y, xs - x : xe - x]
        tiles.append(tile)
    return tiles


def stride_windows(values: np.ndarray, cells, margin: int, stride: int = 50) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``segment.py``'s reading of a section with context: windows whose 101-pixel centres start every
    ``stride`` pixels from -(101 - stride) // 2 (as ``sections.starts`` pads a section), each with
    ``margin`` pixels around it, those whose centre meets one of ``cells``; with their centres' origins."""
    first = -((TILE - stride) // 2)

    def meets(start: int, cell: int) -> bool:
        return start < (cell + 1) * TILE and start + TILE > cell * TILE

    origins = [(y, x) for y in range(first, values.shape[0], stride) for x in range(first, values.shape[1], stride)
               if any(meets(y, r) and meets(x, c) for r, c in cells)]
    return windows_at(values, origins, margin), origins


def blended_tiles(cells, origins, centres: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """Each cell's tile from the centres of ``stride_windows``, blended with ``segment.py``'s weights."""
    pad = 2 * TILE
    weight = weight_window()
    total = np.zeros((shape[0] + 2 * pad, shape[1] + 2 * pad))
    summed = np.zeros_like(total)
    for (y, x), centre in zip(origins, centres):
        summed[y + pad : y + pad + TILE, x + pad : x + pad + TILE] += weight * centre
        total[y + pad : y + pad + TILE, x + pad : x + pad + TILE] += weight
    section = summed[pad:-pad, pad:-pad] / np.maximum(total[pad:-pad, pad:-pad], 1e-12)
    return [section[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE].astype(np.float32) for r, c in cells]


MUTE_SLOPES = (0.0, 5.0)  # samples per trace: flat to steeper than the USGS line's ends (176 samples in ~40 traces)


def with_mute(image: np.ndarray, label: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """A window (samples, traces) with a top mute across it, as a real line's mute meets ``segment.py``:
    every sample above an edge that slopes by up to ``MUTE_SLOPES`` samples per trace (at most half the
    window deep, so the data below can mirror it) is no data, filled as ``segment.py`` fills a mute
    (``sections.mirror_into_mutes``), and unlabelled (``segment.py`` gives no answer there); the data
    below keeps its labels. Tried because the context runs gave salt along the USGS line's steep mute;
    it did not move that salt, which fills the noisy wedge below the mute at the line's ends
    (benchmarks/RESULTS.md, fortieth session)."""
    rows, cols = image.shape
    slope = rng.uniform(*MUTE_SLOPES) * (1 if rng.random() < 0.5 else -1)
    edge = rng.uniform(0, rows // 2) + slope * (np.arange(cols) - rng.integers(cols))
    depth = np.clip(np.round(edge), 0, rows // 2).astype(int)
    empty = np.arange(rows)[:, None] < depth[None, :]
    return mirror_into_mutes(image.T, empty.T).T, np.where(empty, UNLABELLED, label).astype(label.dtype)


class Windows:
    """Training windows: fold 0's training tiles with their context, and windows anywhere on the sections;
    ``mute_share`` of them (tiles and anywhere alike) with a top mute across them (``with_mute``)."""

    def __init__(self, sections: list[mosaics.Mosaic], tiles: dict, train_ids: list[str], margin: int, seed: int,
                 tile_share: float = 0.5, window_labels: list[np.ndarray] | None = None, empty_share: float = 0.0,
                 mute_share: float = 0.0):
        self.margin, self.side, self.size = margin, TILE + 2 * margin, input_size(margin)
        self.tile_share, self.empty_share, self.mute_share = tile_share, empty_share, mute_share
        self.tiles, self.train_ids = tiles, train_ids
        self.rng = np.random.default_rng(seed)
        self.padded, self.where, self.anywhere_labels = [], {}, []
        for k, m in enumerate(sections):
            if not m.known.any() or max(m.ids.shape) < 2:
                continue
            flat = rs.nearest_known(m, mosaics.continuous(m))
            for (r, c), tile_id in np.ndenumerate(m.ids):
                if tile_id in tiles and m.known[r, c]:
                    self.where[tile_id] = (len(self.padded), r, c)
            self.padded.append((np.pad(flat, margin, mode="reflect"), np.pad(m.label, margin, constant_values=UNLABELLED)))
            if window_labels is not None:  # the windows anywhere learn these instead of the tiles' labels
                self.anywhere_labels.append(np.pad(window_labels[k], margin, constant_values=UNLABELLED))
        if window_labels is None:
            self.anywhere_labels = [label for _, label in self.padded]
        self.weights = np.array([(f.shape[0] - self.side + 1) * (f.shape[1] - self.side + 1) for f, _ in self.padded], float)

    def tile(self) -> tuple[np.ndarray, np.ndarray]:
        tile_id = self.train_ids[int(self.rng.integers(len(self.train_ids)))]
        if tile_id in self.where:
            k, r, c = self.where[tile_id]
            return tuple(cell_window(a, self.margin, r, c, self.margin) for a in self.padded[k])
        image, mask = self.tiles[tile_id]
        m = self.margin
        return np.pad(image.astype(np.float32), m, mode="reflect"), np.pad(mask, m, constant_values=UNLABELLED)

    def anywhere(self) -> tuple[np.ndarray, np.ndarray]:
        """A window anywhere, at least a quarter of its centre labelled; ``empty_share`` of them (drawn
        again until one is) an empty centre beside salt: no salt labelled in the centre, some in the margin."""
        m, s = self.margin, self.side
        # no draw when off: the windows of every run without --empty-share stay as they were drawn before it
        beside_salt = self.empty_share > 0 and self.rng.random() < self.empty_share
        while True:
            k = int(self.rng.choice(len(self.padded), p=self.weights / self.weights.sum()))
            flat, label = self.padded[k][0], self.anywhere_labels[k]
            y, x = (int(self.rng.integers(0, n - s + 1)) for n in flat.shape)
            window, centre = label[y : y + s, x : x + s], label[y + m : y + m + TILE, x + m : x + m + TILE]
            if np.mean(centre != UNLABELLED) >= 0.25 and (not beside_salt or ((window == 1).any() and not (centre == 1).any())):
                return flat[y : y + s, x : x + s], window

    def alone(self, n: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """``n`` training tiles alone as ``predict.py`` reads a tile (its own framing, resized to ``size``,
        ``pipeline.to_input``), half of them mirrored, with their labels resized as the windows' are."""
        xs, ys = [], []
        for _ in range(n):
            image, mask = self.tiles[self.train_ids[int(self.rng.integers(len(self.train_ids)))]]
            if self.rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
            xs.append(pipeline.to_input(np.ascontiguousarray(image)[None], size)[0])
            ys.append(cv2.resize(np.ascontiguousarray(mask), (size, size), interpolation=cv2.INTER_NEAREST))
        return np.stack(xs), np.stack(ys)[..., None].astype(np.float32)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for j in range(n):
            image, label = self.tile() if j < round(n * self.tile_share) else self.anywhere()
            # no draw when off: the windows of every run without --mute-share stay as they were drawn before it
            if self.mute_share > 0 and self.rng.random() < self.mute_share:
                image, label = with_mute(image, label, self.rng)
            image = stretch(image[None])[0]
            if self.rng.random() < 0.5:
                image, label = image[:, ::-1], label[:, ::-1]
            xs.append(cv2.resize(np.ascontiguousarray(image), (self.size, self.size), interpolation=cv2.INTER_LINEAR))
            ys.append(cv2.resize(np.ascontiguousarray(label), (self.size, self.size), interpolation=cv2.INTER_NEAREST))
        return np.stack(xs).astype(np.float32)[..., None] / 255.0, np.stack(ys)[..., None].astype(np.float32)


def window_loss(loss: str = "lovasz", bce_weight: float = 0.0, empty_weight: float = 1.0, margin_share: float = 0.0):
    """(labels, logits) -> each window's loss: the Lovasz hinge (``lovasz``: the run's phase 2; on a window
    whose labels are all empty only its worst pixel has a gradient) or its mean with the complement's
    (``symmetric``: every false-salt pixel of an empty window has one), + ``bce_weight`` x binary
    cross-entropy, counted ``empty_weight`` times on a window whose centre (the window less
    ``margin_share`` of its side on each side) is labelled with no salt; unlabelled pixels out of all."""
    import keras

    from salt_tf.model.losses import BCELovasz, LovaszHinge, bce_per_image

    symmetric = loss == "symmetric"  # as train.py's phase 2 builds it (losses._main_loss)
    if empty_weight == 1.0:
        return (BCELovasz(bce_weight, 1.0, symmetric=symmetric) if bce_weight else LovaszHinge(symmetric=symmetric)).call
    hinge, ops = LovaszHinge(symmetric=symmetric).call, keras.ops

    def weighted(y_true, y_pred):
        side = y_true.shape[1]
        k = int(round(side * margin_share))
        centre = y_true[:, k : side - k, k : side - k]
        empty = ops.logical_and(ops.logical_not(ops.any(ops.equal(centre, 1.0), axis=(1, 2, 3))),
                                ops.any(ops.not_equal(centre, float(UNLABELLED)), axis=(1, 2, 3)))
        return hinge(y_true, y_pred) + bce_weight * ops.where(empty, empty_weight, 1.0) * bce_per_image(y_true, y_pred)

    return weighted


def fine_tune(model, config, windows: Windows, minutes: float, steps: int, say, lr: float | None = None,
              frozen_norm: bool = False, loss=None, rehearse: float = 0.0, alone_loss=None) -> int:
    """The run's phase 2 on ``windows`` (batches of 8) for ``minutes`` or ``steps``; the steps taken.
    ``lr``: AdamW's learning rate (the run's phase-2 initial one if None); ``frozen_norm``: every batch
    normalisation keeps the run's statistics and scale (Keras runs a frozen one in inference mode);
    ``loss``: a ``window_loss`` (the Lovasz hinge if None); ``rehearse``: each step adds this x the loss
    on 8 training tiles alone, as ``predict.py`` reads them (``windows.alone``), with ``alone_loss`` (``loss``
    if None)."""
    import keras
    import tensorflow as tf

    from salt_tf.model.unet import all_layers

    loss = loss or window_loss()
    alone_loss = alone_loss or loss

    if frozen_norm:
        for layer in all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    optimizer = keras.optimizers.AdamW(config.phase2_lr if lr is None else lr, weight_decay=config.phase2_weight_decay)

    def mean_loss(x, y, loss):
        return tf.reduce_mean(loss(y, tf.cast(model(x, training=True), tf.float32)))

    @tf.function
    def step(x, y, *alone):
        with tf.GradientTape() as tape:
            found = mean_loss(x, y, loss) + (rehearse * mean_loss(*alone, alone_loss) if alone else 0.0)
        optimizer.apply_gradients(zip(tape.gradient(found, model.trainable_variables), model.trainable_variables))
        return found

    start, done, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < minutes * 60 and done < steps:
        losses.append(float(step(*windows.batch(8), *(windows.alone(8, pipeline.data_size(config)) if rehearse else ()))))
        done += 1
        if done % 100 == 0:
            say(f"step {done}: loss {np.mean(losses[-100:]):.4f}, {time.perf_counter() - start:.0f} s")
    return done


def predictor(model, margin: int):
    """(windows of 101 + 2 x margin) -> the probability of their centres, with horizontal-flip TTA."""
    import keras

    side, size = TILE + 2 * margin, input_size(margin)

    def probability(x):
        return keras.ops.convert_to_numpy(keras.ops.sigmoid(keras.ops.cast(model(x, training=False), "float32")))[..., 0]

    def predict(windows: list[np.ndarray]) -> np.ndarray:
        x = np.stack([cv2.resize(w, (size, size), interpolation=cv2.INTER_LINEAR) for w in stretch(np.stack(windows))])
        x = x.astype(np.float32)[..., None] / 255.0
        batches = np.array_split(x, max(1, len(x) // 16))
        p = np.concatenate([(probability(b) + probability(b[:, :, ::-1])[:, :, ::-1]) / 2 for b in batches])
        centre = np.s_[margin : margin + TILE, margin : margin + TILE]
        return np.stack([cv2.resize(q, (side, side), interpolation=cv2.INTER_AREA)[centre] for q in p])

    return predict


def training_sections(realdata: Path, pool: Path, unlabelled: list[Path], val_ids: list[str],
                      seams: int = 0) -> list[mosaics.Mosaic]:
    """The sections with the pool's tiles labelled and fold 0's validation cells made unknown (the
    held-out tiles are not in the pool, so they are unknown already): no pixel of either is trained on.
    ``seams``: that many pixels on both sides of every label seam between training tiles unlabelled
    (``mosaics.unlabel_seams``, as ``train.py --section-seams``)."""
    sections = []
    for path in mosaics.mosaic_paths(realdata / "mosaics"):
        m = mosaics.assemble(path, pool, unlabelled)
        blocked = np.isin(m.ids, val_ids)
        m.known &= ~blocked
        m.image[np.kron(blocked, np.ones((TILE, TILE), bool))] = 0
        m.label[np.kron(blocked, np.ones((TILE, TILE), bool))] = UNLABELLED
        sections.append(mosaics.unlabel_seams(m, seams))
    return sections


def teacher_labels(sections: list[mosaics.Mosaic], predict, threshold: float, min_area: int) -> list[np.ndarray]:
    """Per section, every known cell labelled by the starting model's own reading of it tile by tile, as the
    grid reads it (thresholded, patches under ``min_area`` removed); unknown cells UNLABELLED. Test tiles
    get a label too: no human label is used."""
    cells = [(k, r, c) for k, m in enumerate(sections) for (r, c), known in np.ndenumerate(m.known) if known]
    masks = remove_small(predict([sections[k].tile(r, c)[0].astype(np.float32) for k, r, c in cells]) > threshold, min_area)
    labels = [np.full_like(m.label, UNLABELLED) for m in sections]
    for (k, r, c), mask in zip(cells, masks):
        labels[k][r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = mask
    return labels


def context_reader(realdata: Path, labelled: Path, unlabelled: list[Path], margin: int):
    """(reader, the ids of the tiles in a section): the reader maps (tile id, its image) to the tile with
    ``margin`` pixels of its section around it, every image known (unknown cells filled from the
    nearest known pixel), or reflected for a tile in no section."""
    full, at = [], {}
    for path in mosaics.mosaic_paths(realdata / "mosaics"):
        m = mosaics.assemble(path, labelled, unlabelled)
        if max(m.ids.shape) > 1:
            for (r, c), tile_id in np.ndenumerate(m.ids):
                if tile_id and m.known[r, c]:
                    at.setdefault(tile_id, (len(full), r, c))
            full.append(np.pad(rs.nearest_known(m, mosaics.continuous(m)), margin, mode="reflect"))

    def with_context(tile_id: str, image: np.ndarray) -> np.ndarray:
        if tile_id in at:
            k, r, c = at[tile_id]
            return cell_window(full[k], margin, r, c, margin)
        return np.pad(image.astype(np.float32), margin, mode="reflect")

    return with_context, set(at)


def read_cells(predict, flat: np.ndarray, cells, margin: int, variant: str) -> list[np.ndarray]:
    """The cells' probabilities as ``variant`` reads the section: ``shift 0`` (one window per tile, on
    the grid), ``shift 50`` (the grid shifted by 50 pixels, four windows per tile) or ``stride 50,
    blended`` (``segment.py``'s windows, none on the grid, blended)."""
    if variant == "stride 50, blended":
        values, origins = stride_windows(flat, cells, margin)
        return blended_tiles(cells, origins, predict(values), flat.shape)
    shift = int(variant.split()[-1])
    values, origins = covering_windows(flat, cells, shift, margin)
    return tiles_from_centres(cells, origins, predict(values), shift)


VARIANTS = ("shift 0", "shift 50", "stride 50, blended")


def score_inside_sections(args, predict, threshold: float, min_area: int, record, alone=None) -> None:
    """The held-out tiles inside sections (``real_sections.py``'s at ``--shifts 0 50``) on the tile grid,
    50 pixels off it and as ``segment.py`` reads a section: scores, pixel IoU, the salt tiles and the
    empty ones apart, and each variant's gap from the grid. ``alone``: (an ``alone_reader``, its
    ``holdout_alone``): the same tiles read alone as ``predict.py`` reads them too, at its threshold
    and minimum area, and each variant's gap from that (the issue's "segment.py within 0.02 of predict.py"),
    also without the tiles at a label seam (``gaps_from``)."""
    found = rs.held_out_sections(args.real, args.tgs, args.realdata)
    scored = rs.scored_cells(found, 50)
    truths = [m.tile(r, c)[1] for m, cells in scored for r, c in cells]
    salt = np.array([t.any() for t in truths])
    known = np.array([rs.windows_on_known_cells(m, r, c) for m, cells in scored for r, c in cells])
    empty = image_scores(np.stack(truths), np.zeros((len(truths), TILE, TILE), np.uint8))
    record(tiles_inside_sections=len(truths), with_salt=int(salt.sum()), empty_answer=float(empty.mean()))
    per_tile = {}
    flats = [rs.nearest_known(m, mosaics.continuous(m)) for m, _ in scored]  # once, for every variant
    for variant in VARIANTS:
        probs = [p for (_, cells), flat in zip(scored, flats) for p in read_cells(predict, flat, cells, args.margin, variant)]
        np.save(args.out / f"probs_{variant.split(',')[0].replace(' ', '')}.npy", np.stack(probs).astype(np.float32))
        per_tile[variant] = rs.tile_scores(probs, truths, threshold, min_area)
        given = remove_small(np.stack(probs) > threshold, min_area).any(axis=(1, 2))
        record(**{variant: {"score": float(per_tile[variant].mean()), "pixel_iou": rs.score(probs, truths, threshold)[1],
                            "salt_tiles": float(per_tile[variant][salt].mean()),
                            "empty_tiles": float(per_tile[variant][~salt].mean()),
                            "empty_tiles_given_salt": int((given & ~salt).sum())}})
    grid = per_tile["shift 0"]
    record(gap_50=rs.paired_difference(grid, per_tile["shift 50"]),
           gap_50_known_cells=rs.paired_difference(grid[known], per_tile["shift 50"][known]),
           gap_blended=rs.paired_difference(grid, per_tile["stride 50, blended"]))
    record(by_group=by_group(scored, per_tile, salt))
    if alone is not None:
        read, tuned = alone
        probs = read([m.tile(r, c)[0] for m, cells in scored for r, c in cells])
        np.save(args.out / "probs_alone.npy", probs.astype(np.float32))
        base = rs.tile_scores(list(probs), truths, tuned["threshold"], tuned["min_area"])
        seams = np.array([g == rs.GROUPS[0] for m, cells in scored for g in rs.seam_groups(m, cells)])
        record(**{"predict.py, alone": {"score": float(base.mean()), "salt_tiles": float(base[salt].mean()),
                                        "empty_tiles": float(base[~salt].mean())}},
               gaps_from_alone=gaps_from(base, per_tile), seam_tiles=int(seams.sum()),
               gaps_from_alone_without_seams=gaps_from(base, per_tile, ~seams))


def gaps_from(base: np.ndarray, per_tile: dict, keep: np.ndarray | None = None) -> dict:
    """Each variant's gap from ``base`` (``predict.py``'s reading of the same tiles), paired over the
    tiles ``keep`` (all by default; ``~seams``: without the tiles at a label seam, which
    ``real_sections.seam_groups`` picks from the labels alone, before any model reads them)."""
    keep = np.ones(len(base), bool) if keep is None else keep
    return {v: rs.paired_difference(base[keep], per_tile[v][keep]) for v in VARIANTS}


def by_group(scored, per_tile: dict, salt: np.ndarray) -> dict:
    """Each variant's score and gap from the grid on ``real_sections.seam_groups``' groups of the tiles
    ("no labelled neighbour": none of its four sides is a labelled tile, ``mosaics.labelled_neighbours``)."""
    group_of = np.array([g for m, cells in scored for g in rs.seam_groups(m, cells)])
    grid, found = per_tile["shift 0"], {}
    for name in rs.GROUPS:
        s = group_of == name
        if s.any():
            found[name] = {"tiles": int(s.sum()), "with_salt": int((s & salt).sum()), "shift 0": float(grid[s].mean())}
            found[name].update({v: {"score": float(per_tile[v][s].mean()), "gap": rs.paired_difference(grid[s], per_tile[v][s])}
                                for v in VARIANTS[1:]})
    return found


def precision(args, mixed: bool) -> str:
    """The fine-tune's policy, set: the run's mixed precision as ``train.py`` chooses it on this machine
    (float32 on a CPU that would emulate bfloat16: its steps 1.9-2.3x slower on an AVX-512 CPU without
    BF16, ``unet_speed.py --variants emulated``), or ``--bfloat16`` as every run of this script before
    the twenty-ninth session, whatever the CPU."""
    import keras

    from salt_tf.common import machine

    if not mixed:
        policy = "float32"
    elif args.bfloat16:
        policy = "mixed_bfloat16"
    else:
        policy = machine.mixed_policy() or "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def train_and_tune(args, record):
    """REAL's fold-0 model fine-tuned on windows with ``--margin``, saved; its threshold and minimum area
    tuned on fold 0's validation tiles with their context; the 640 held-out tiles scored tile by tile."""
    import keras

    from salt_tf.run.config import Config, build_from_config

    run = args.real / "run"
    saved = json.loads((run / "config.json").read_text())
    config = Config(**{k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(Config)}})
    policy = precision(args, config.mixed_precision)
    record(policy=policy)
    model = build_from_config(config, None)  # any input size
    model.set_weights(keras.saving.load_model(run / "fold0" / "model.keras", compile=False).get_weights())
    folds = pd.read_csv(run / "folds.csv", dtype={"id": str})
    val_ids, train_ids = sorted(folds.id[folds.fold == 0]), sorted(folds.id[folds.fold != 0])
    pool = args.real / "data" / "pool" / "train"
    tiles = {i: (read_image(pool / "images" / f"{i}.png"), read_mask(pool / "masks" / f"{i}.png")) for i in folds.id}
    unlabelled = [args.tgs / "test" / "images", args.realdata / "test_tiles"]

    sections = training_sections(args.realdata, pool, unlabelled, val_ids, args.section_seams)
    taught = None
    if args.targets == "teacher":
        start = time.perf_counter()
        holdout = json.loads((args.real / "holdout.json").read_text())
        taught = teacher_labels(sections, predictor(model, 0), holdout["threshold"], holdout["min_area"])
        record(teacher={"threshold": holdout["threshold"], "min_area": holdout["min_area"],
                        "cells": int(sum(m.known.sum() for m in sections)), "seconds": round(time.perf_counter() - start),
                        "salt_share": float(np.mean([(t == 1).sum() / max((t != UNLABELLED).sum(), 1) for t in taught]))})
    windows = Windows(sections, {i: tiles[i] for i in train_ids}, train_ids, args.margin, args.seed, args.tile_share, taught,
                      args.empty_share, args.mute_share)
    record(window=TILE + 2 * args.margin, input_size=windows.size, training_tiles=len(train_ids),
           training_tiles_in_sections=len(windows.where))
    start = time.perf_counter()
    steps = fine_tune(model, config, windows, args.minutes, args.steps, print, args.lr, args.frozen_norm,
                      window_loss(args.loss, args.bce_weight, args.empty_weight, args.margin / windows.side), args.rehearse,
                      window_loss(args.loss, args.bce_weight, args.empty_weight))
    record(steps=steps, train_seconds=round(time.perf_counter() - start))
    model.save(args.out / "model.keras")
    predict = predictor(model, args.margin)

    with_context, in_sections = context_reader(args.realdata, args.tgs / "train", unlabelled, args.margin)
    val_probs = predict([with_context(i, tiles[i][0]) for i in val_ids])
    tuned = tune_postprocessing(np.stack([tiles[i][1] for i in val_ids]), val_probs)
    record(validation_tuned=tuned, validation_in_sections=len(in_sections.intersection(val_ids)))
    held = sorted(p.stem for p in (args.real / "data" / "holdout" / "images").glob("*.png"))
    held_probs = predict([with_context(i, read_image(args.real / "data" / "holdout" / "images" / f"{i}.png")) for i in held])
    held_truth = np.stack([read_mask(args.tgs / "train" / "masks" / f"{i}.png") for i in held])
    record(holdout_tiles=len(held), holdout_in_sections=len(in_sections.intersection(held)),
           holdout_score=competition_score(held_truth, remove_small(held_probs > tuned["threshold"], tuned["min_area"])))
    record(holdout_alone=holdout_alone(args, alone_reader(model, args.real)))
    return model, tuned


def alone_reader(model, real: Path):
    """uint8 tiles (N, 101, 101) -> their probabilities read alone as ``predict.py`` reads a tile (its
    ``predict_probs``: at the run's input size, flip TTA), with no context."""
    from salt_tf.inference.predict import Ensemble, predict_probs
    from salt_tf.run.config import Config

    saved = json.loads((real / "run" / "config.json").read_text())
    size = pipeline.data_size(Config(**{k: v for k, v in saved.items() if k in {"fit", "size"}}))
    ensemble = Ensemble([0], [model], size, kind="keras")
    return lambda images: predict_probs(ensemble, np.asarray(images, np.uint8), progress=False)


def holdout_alone(args, read) -> dict:
    """The 640 held-out tiles read alone (``read``: an ``alone_reader``), threshold and minimum area tuned
    on fold 0's validation tiles read alike: what ``predict.py`` scores with this model. Each tile's
    score goes to ``holdout_alone_scores.npy``, and its paired difference from the start's own
    ``predict.py`` reading (``REAL/holdout_submission.csv``) to the figures: the issue's tiles' condition."""
    folds = pd.read_csv(args.real / "run" / "folds.csv", dtype={"id": str})
    pool, holdout = args.real / "data" / "pool" / "train", args.real / "data" / "holdout" / "images"
    val_ids, held = sorted(folds.id[folds.fold == 0]), sorted(p.stem for p in holdout.glob("*.png"))
    masks = np.stack([read_mask(pool / "masks" / f"{i}.png") for i in val_ids])
    tuned = tune_postprocessing(masks, read([read_image(pool / "images" / f"{i}.png") for i in val_ids]))
    probs = read([read_image(holdout / f"{i}.png") for i in held])
    truth = np.stack([read_mask(args.tgs / "train" / "masks" / f"{i}.png") for i in held])
    scores = image_scores(truth, remove_small(probs > tuned["threshold"], tuned["min_area"]))
    np.save(args.out / "holdout_alone_scores.npy", scores.astype(np.float32))
    found = {"threshold": tuned["threshold"], "min_area": tuned["min_area"], "score": float(scores.mean())}
    start = start_scores(args.real / "holdout_submission.csv", held, truth)
    if start is not None:
        found.update(start_score=float(start.mean()), paired_gain=rs.paired_difference(start, scores))
    return found


def start_scores(submission: Path, held: list[str], truth: np.ndarray) -> np.ndarray | None:
    """Each held-out tile's score as the start's ``predict.py`` read it (its submission, in ``held``'s
    order), or None if it wrote none."""
    from salt_tf.tiles import rle

    if not submission.is_file():
        return None
    masks = pd.read_csv(submission, dtype={"id": str}, keep_default_na=False).set_index("id").rle_mask
    missing = sorted(set(held) - set(masks.index))
    if missing:
        raise ValueError(f"{submission}: no row for {len(missing)} held-out tiles (first {missing[0]}); "
                         "not the start's own held-out submission")
    return image_scores(truth, np.stack([rle.decode(masks[i]) for i in held]))


def earlier_fine_tune(args) -> dict:
    """``--rescore DIR``'s figures, checked before anything is written: one ``error:`` line, exit 2."""
    problem = next((f"no {name}; --rescore takes an earlier section_context.py --out"
                    for name in ("figures.json", "model.keras") if not (args.rescore / name).is_file()), None)
    earlier = {} if problem else json.loads((args.rescore / "figures.json").read_text())
    if not problem and Path(earlier["command"]["real"]).resolve() != args.real.resolve():
        problem = f"fine-tuned from {earlier['command']['real']}, not --real {args.real}"
    if problem:
        print(f"error: {args.rescore}: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return earlier


def rescored(args, earlier: dict, record):
    """An earlier run's fine-tuned model (``--rescore DIR``) with its margin, threshold and minimum area;
    the held-out tiles read alone again unless DIR kept each tile's score (before the thirty-seventh
    session it kept only their mean)."""
    import keras

    import salt_tf.model.layers  # noqa: F401  (the model's custom layers, for loading)

    args.margin = int(earlier["command"]["margin"])
    mixed = json.loads((args.real / "run" / "config.json").read_text()).get("mixed_precision")
    # as the fine-tune ran: folders from before the policy was recorded ran in bfloat16 on every CPU
    keras.mixed_precision.set_global_policy(earlier.get("policy", "mixed_bfloat16" if mixed else "float32"))
    model = keras.saving.load_model(args.rescore / "model.keras", compile=False)
    record(rescored=str(args.rescore), margin=args.margin, validation_tuned=earlier["validation_tuned"])
    kept = (args.rescore / "holdout_alone_scores.npy").is_file() and earlier.get("holdout_alone")
    record(holdout_alone=kept or holdout_alone(args, alone_reader(model, args.real)))
    return model, earlier["validation_tuned"]


def export_run(args, model_file: Path, tuned: dict, alone: dict, command: dict) -> Path:
    """``OUT/run``: the fine-tuned model as a run folder that ``predict.py`` and ``segment.py`` load (fold
    0's ``model.keras``, a hard link to ``model_file`` where the file system allows; REAL's config,
    folds and tile statistics). Its report.json gives ``predict.py`` the threshold and minimum area
    tuned on fold 0's validation tiles read alone (``holdout_alone``), and ``segment.py`` the
    ``context``: the margin, the input size such a window is read at, and the threshold and minimum
    area tuned on the validation tiles read with their context; ``command``, the fine-tune's flags."""
    import shutil

    from salt_tf.common.atomic import atomic_path

    start = args.real / "run"
    with atomic_path(args.out / "run") as tmp:
        (tmp / "fold0").mkdir(parents=True)
        try:
            (tmp / "fold0" / "model.keras").hardlink_to(model_file)
        except OSError:
            shutil.copy2(model_file, tmp / "fold0" / "model.keras")
        for name in ("config.json", "folds.csv", "tile_stats.json"):
            if (start / name).is_file():
                shutil.copy2(start / name, tmp / name)
        report = {"folds_done": [0], "threshold": alone["threshold"], "min_area": alone["min_area"],
                  "context": {"margin": args.margin, "size": input_size(args.margin), "threshold": tuned["threshold"],
                              "min_area": tuned["min_area"]},
                  "fine_tuned_from": str(start.resolve()), "made_by": "benchmarks/section_context.py", "command": command}
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
    return args.out / "run"


def command_of(args) -> dict:
    """The flags as ``figures.json`` records them, every folder absolute (a later ``--rescore`` from
    another working folder then finds its ``--real`` the same run)."""
    return {k: str(v.resolve()) if isinstance(v, Path) else v for k, v in vars(args).items()}


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--real", type=Path, required=True, help="a benchmarks/real_data.py output folder")
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir(), help="../shared/realdata")
    parser.add_argument("--margin", type=int, default=50, help="context on each side of a tile, in pixels (0: the control)")
    parser.add_argument("--minutes", type=float, default=8.0, help="fine-tuning time")
    parser.add_argument("--steps", type=int, default=10**9, help="at most this many steps of 8 windows")
    parser.add_argument("--seed", type=int, default=0, help="the windows' draw and the fine-tune's seed")
    parser.add_argument("--tile-share", type=float, default=0.5, help="the share of each batch that is tiles")
    parser.add_argument("--empty-share", type=float, default=0.0,
                        help="the share of the windows anywhere with an empty centre beside salt (none labelled in the "
                             "centre, some in the margin; needs --margin > 0)")
    parser.add_argument("--mute-share", type=float, default=0.0,
                        help="the share of the training windows with a top mute across them, filled as segment.py fills "
                             "a mute and unlabelled above it (an experiment: it did not help)")
    parser.add_argument("--section-seams", type=int, default=0,
                        help="leave this many pixels on both sides of every label seam out of the windows' labels "
                             "(as train.py --section-seams)")
    parser.add_argument("--targets", choices=("labels", "teacher"), default="labels",
                        help="what the windows anywhere learn: the tiles' labels, or the starting model's own "
                             "tile-by-tile reading of every known cell (test tiles too)")
    parser.add_argument("--lr", type=float, help="the fine-tune's learning rate (default: the run's phase-2 initial one)")
    parser.add_argument("--frozen-norm", action="store_true",
                        help="batch normalisation frozen: the run's statistics and scale, inference mode")
    parser.add_argument("--loss", choices=("lovasz", "symmetric"), default="lovasz",
                        help="the fine-tune's loss: the run's Lovasz hinge, or its mean with the complement's")
    parser.add_argument("--bce-weight", type=float, default=0.0, help="add this x binary cross-entropy to the loss")
    parser.add_argument("--empty-weight", type=float, default=1.0,
                        help="the cross-entropy of a window whose centre is labelled with no salt counts this many times "
                             "(needs --bce-weight)")
    parser.add_argument("--rehearse", type=float, default=0.0,
                        help="each step adds this x the loss on 8 training tiles alone, as predict.py reads them")
    parser.add_argument("--bfloat16", action="store_true",
                        help="mixed bfloat16 whatever the CPU (as before; emulated and slow where it is not native)")
    parser.add_argument("--rescore", type=Path, help="no fine-tune: score DIR's model (an earlier --out, its margin) again")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.empty_share and not args.rescore and (args.margin <= 0 or not 0 < args.empty_share <= 1):
        print("error: --empty-share takes a share in (0, 1] and a --margin above 0 (the salt beside a centre is in "
              "the window's margin)", file=sys.stderr)
        raise SystemExit(2)
    if not 0 <= args.mute_share <= 1 and not args.rescore:
        print("error: --mute-share takes a share in [0, 1]", file=sys.stderr)
        raise SystemExit(2)
    if args.section_seams < 0 and not args.rescore:
        print("error: --section-seams takes pixels, 0 or more", file=sys.stderr)
        raise SystemExit(2)
    if args.empty_weight != 1.0 and not args.rescore and (args.empty_weight <= 0 or not args.bce_weight > 0):
        print("error: --empty-weight takes a weight above 0 and a --bce-weight above 0 (it weighs the cross-entropy)",
              file=sys.stderr)
        raise SystemExit(2)
    earlier = earlier_fine_tune(args) if args.rescore else None
    _bench.header(f"run {args.real / 'run'}")
    import keras

    args.out.mkdir(parents=True, exist_ok=True)
    figures = {"command": command_of(args)}

    def record(**found) -> None:
        figures.update(found)
        (args.out / "figures.json.part").write_text(json.dumps(figures, indent=1))
        (args.out / "figures.json.part").replace(args.out / "figures.json")
        print(found, flush=True)

    keras.utils.set_random_seed(args.seed)
    model, tuned = rescored(args, earlier, record) if args.rescore else train_and_tune(args, record)
    if args.margin > 0:
        made = export_run(args, (args.rescore or args.out) / "model.keras", tuned, figures["holdout_alone"],
                          earlier["command"] if earlier else figures["command"])
        record(run=str(made.resolve()))
    score_inside_sections(args, predictor(model, args.margin), tuned["threshold"], tuned["min_area"], record,
                          (alone_reader(model, args.real), figures["holdout_alone"]))


if __name__ == "__main__":
    main()
