"""Train on the real competition data under a wall-clock budget, then score tiles training never saw.

    python benchmarks/real_data.py --preset cpu-60min --out runs/real-60min

Everything runs through the project's own code paths:

1. The 3,200 labelled tiles of the data set (``$SALT_TF_TGS_DIR``, default ``../shared/tgs``
   beside the project) are split, stratified by depth, into a training pool and a held-out split
   (``--holdout``, default 0.2). Both are written as data folders of symlinks in Kaggle's layout
   under ``OUT/data``; nothing is copied. With ``--holdout-sections DIR`` (a folder with the jigsaw's
   ``mosaics/``, e.g. ``../shared/realdata``) whole sections are held out first, every tile of a
   section together, then tiles in no section, so that ``benchmarks/real_sections.py`` scores many
   more held-out tiles inside sections (about 640 of the 801 train tiles in sections, against 155 in
   a split by depth); the held-out tiles are then sections' tiles, not a sample of all.
2. ``salt_tf.training.train.run`` trains on the pool, fold ``--fold`` (default 0) of ``--folds``, under
   ``--budget-min`` (from the preset); the fold's validation split picks the best epoch and tunes
   the threshold. Every train.py flag works here too.
3. ``salt_tf.inference.predict.run`` predicts the held-out images with flip TTA and the tuned threshold and
   minimum salt area, writing ``OUT/holdout_submission.csv`` and a grid of overlays (``OUT/overlays.png``).
4. The submission is decoded again and scored against the held-out masks with the competition
   metric. ``OUT/holdout.json`` records the scores, the times, the seeds and the machine.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import numpy as np
import pandas as pd

from salt_tf.run import config as config_mod
from salt_tf.tiles import folds as folds_mod
from salt_tf.common import machine
from salt_tf.tiles import rle
from salt_tf.common.atomic import write_text
from salt_tf.tiles.data import load_train, read_mask
from salt_tf.tiles.metrics import competition_score


def sections_of(ids, realdata: Path) -> dict[str, str]:
    """Each tile id's group for a split by sections: the jigsaw section holding it, else the id itself."""
    from salt_tf.tiles import mosaics

    group = {str(i): str(i) for i in ids}
    for path in mosaics.mosaic_paths(Path(realdata) / "mosaics"):
        for tile_id in mosaics.read_grid(path).ravel():
            if tile_id in group:
                group[tile_id] = path.stem
    return group


def held_by_sections(ids, realdata: Path, fraction: float, seed: int) -> set[str]:
    """Whole sections in a seeded random order, then tiles in no section, until ``fraction`` of the
    tiles: as many held-out tiles inside sections as the split allows, each with its neighbours."""
    group = sections_of(ids, realdata)
    members: dict[str, list[str]] = {}
    for tile_id, name in sorted(group.items()):
        members.setdefault(name, []).append(tile_id)
    rng = np.random.default_rng(seed)
    sections = sorted(name for name in members if name not in group)  # a tile in no section is its own group
    alone = sorted(name for name in members if name in group)
    held: set[str] = set()
    for name in [sections[k] for k in rng.permutation(len(sections))] + [alone[k] for k in rng.permutation(len(alone))]:
        if len(held) >= round(fraction * len(group)):
            break
        held.update(members[name])
    return held


def split_holdout(tgs: Path, out: Path, fraction: float, seed: int, sections: Path | None = None
                  ) -> tuple[Path, Path, np.ndarray]:
    """Write ``out/pool`` (a data set in Kaggle's layout) and ``out/holdout/{images,masks}`` as
    symlinks into ``tgs``; return both folders and the held-out ids. ``out/split.json`` records
    the split, so that a second run into the same folder finds it or is refused. With ``sections``,
    whole jigsaw sections are held out (``held_by_sections``); else tiles stratified by depth."""
    recorded = out / "split.json"
    wanted = json.dumps({"data": str(Path(tgs).resolve()), "fraction": fraction, "seed": seed}
                        | ({"sections": str(Path(sections).resolve())} if sections else {}))
    if recorded.exists() and recorded.read_text() != wanted:
        raise SystemExit(f"{out}: holds another split ({recorded.read_text()}); use another --out")
    train = load_train(tgs)
    if sections:
        held = held_by_sections(train.ids, sections, fraction, seed)
    else:
        parts = folds_mod.assign_folds(train.table, round(1 / fraction), seed=seed, by="depth")
        held = set(parts["id"][parts["fold"] == 0])
    table = pd.read_csv(tgs / "train.csv", dtype=str, keep_default_na=False)
    pool, holdout = out / "pool", out / "holdout"
    for folder in (pool / "train" / "images", pool / "train" / "masks", holdout / "images", holdout / "masks"):
        folder.mkdir(parents=True, exist_ok=True)
    for tile_id in table["id"]:
        target = holdout if tile_id in held else pool / "train"
        for kind in ("images", "masks"):
            link = target / kind / f"{tile_id}.png"
            if not link.is_symlink():
                link.symlink_to((tgs / "train" / kind / f"{tile_id}.png").resolve())
    write_text(pool / "train.csv", table[~table["id"].isin(held)].to_csv(index=False))
    write_text(pool / "depths.csv", (tgs / "depths.csv").read_text())
    write_text(recorded, wanted)
    held_ids = np.array(sorted(held), dtype=str)
    return pool, holdout, held_ids


def score_submission(path: Path, masks_dir: Path) -> tuple[float, list[str], np.ndarray]:
    """Decode the submission and score it against the true masks; also return its ids and those masks."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    truth = np.stack([read_mask(masks_dir / f"{i}.png") for i in table["id"]])
    predicted = np.stack([rle.decode(text, truth.shape[1:]) for text in table["rle_mask"]])
    return competition_score(truth, predicted), list(table["id"]), truth


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)  # + every train.py flag, --batch-size and --out among them
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of tiles held out from training (default: 0.2)")
    parser.add_argument("--holdout-seed", type=int, default=0, help="seed of the held-out split (default: 0)")
    parser.add_argument("--holdout-sections", type=Path, help="hold out whole jigsaw sections of this folder's mosaics/ "
                        "(e.g. ../shared/realdata) instead of tiles stratified by depth")
    config_mod.add_arguments(parser)
    args = parser.parse_args()
    tgs, fraction, holdout_seed, by_sections = args.tgs, args.holdout, args.holdout_seed, args.holdout_sections
    for name in ("tgs", "holdout", "holdout_seed", "holdout_sections"):
        delattr(args, name)
    config = config_mod.from_args(args)
    if config.out is None:
        parser.error("--out is required (the experiment's folder)")
    if config.fold is None:
        config = dataclasses.replace(config, fold=0)
    out = Path(config.out)

    from salt_tf.inference import predict
    from salt_tf.training import train  # after argument parsing: importing TensorFlow takes seconds

    _bench.header()
    started = time.perf_counter()
    pool, holdout, held_ids = split_holdout(tgs, out / "data", fraction, holdout_seed, by_sections)
    print(f"held out {len(held_ids)} of the tiles in {tgs} (seed {holdout_seed}"
          f"{f', whole sections of {by_sections}' if by_sections else ''}); training pool in {pool}")
    config = dataclasses.replace(config, data=str(pool), out=str(out / "run"))
    report = train.run(config, resume=(out / "run").exists())
    trained = time.perf_counter()
    prediction = predict.run(out / "run", holdout / "images", out / "holdout_submission.csv",
                             overlays=out / "overlays.png", masks_dir=holdout / "masks")
    predicted = time.perf_counter()
    score, ids, truth = score_submission(out / "holdout_submission.csv", holdout / "masks")
    if ids != list(prediction["ids"]) or sorted(ids) != list(held_ids):
        raise RuntimeError(f"{out / 'holdout_submission.csv'}: its ids are not the {len(held_ids)} held-out ones")
    n = len(ids)
    plain = competition_score(truth, prediction["probs"] > 0.5)
    all_empty = float(np.mean([m.max() == 0 for m in truth]))
    fold = report["folds"][0]
    result = {
        "holdout_score": score, "holdout_score_threshold_0.5": plain, "holdout_all_empty_score": all_empty,
        "holdout_tiles": n, "holdout_fraction": fraction, "holdout_seed": holdout_seed,
        "holdout_sections": str(by_sections) if by_sections else None,
        "val_score": fold["val_score"], "val_score_101": fold["val_score_101"], "cv_score_tuned": report["cv_score_tuned"],
        "threshold": report["threshold"], "min_area": report["min_area"],
        "phase_epochs": fold["phase_epochs"], "phase_seconds": fold["phase_seconds"],
        "stopped_by_budget": fold["stopped_by_budget"], "best_phase": fold["best_phase"], "best_epoch": fold["best_epoch"],
        "train_minutes": (trained - started) / 60, "predict_seconds": predicted - trained,
        "predict_tiles_per_second": prediction["tiles_per_second"],
        "config": json.loads((out / "run" / "config.json").read_text()),
        "command": "python " + " ".join(sys.argv),
        "machine_at_the_end": machine.describe(),
    }
    write_text(out / "holdout.json", json.dumps(result, indent=1) + "\n")
    print(f"held-out competition score {score:.4f} on {n} tiles (flip TTA, threshold {report['threshold']:.3f}, "
          f"minimum salt area {report['min_area']} px); {plain:.4f} at threshold 0.5; all-empty {all_empty:.4f}")
    print(f"training {result['train_minutes']:.1f} min (phase epochs {fold['phase_epochs']}), "
          f"prediction {result['predict_seconds']:.0f} s; {out / 'holdout.json'}")


if __name__ == "__main__":
    main()
