"""Several real-data runs averaged, on the held-out tiles inside sections: does an ensemble of seeds
or recipes bring off-grid windows closer to the tile grid? No model: it reads what
``benchmarks/real_sections.py --out DIR`` kept of each run (``real_sections.json``, the scored tiles'
probabilities in ``probabilities.npz``).

    python benchmarks/section_ensembles.py --sections A/sections B/sections [--groups A+B ...]

Each group (``+`` between folder indices 0, 1, ... or the folders themselves; default: each folder
alone, then all together) averages its runs' probabilities per variant and thresholds them at the
mean of the runs' thresholds (no minimum area: the runs' areas differ and a section has no tiles
to apply one to). Per variant: the competition score, its paired difference from the group's own
``predict.py`` +- one standard error, the pooled pixel IoU and the number of tiles with any salt. The
runs must have scored the same tiles (the same held-out split).
"""
from __future__ import annotations

import json
from pathlib import Path

import _bench
import numpy as np

from real_sections import BASE, paired_difference, score, tile_scores
from salt_tf.tiles.data import read_mask

VARIANTS = (BASE, "segment, stride 50, minmax", "minmax on the grid, shift 0", "minmax on the grid, shift 50")


def load(folder: Path) -> tuple[dict, dict]:
    figures = json.loads((folder / "real_sections.json").read_text())
    with np.load(folder / "probabilities.npz") as z:
        return figures, {name: z[name].astype(np.float32) for name in VARIANTS if name in z}


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--sections", type=Path, nargs="+", required=True, help="real_sections.py --out folders")
    parser.add_argument("--groups", nargs="*", help="runs to average, e.g. 0+1 (default: each alone, then all)")
    args = parser.parse_args()
    runs = [load(folder) for folder in args.sections]
    ids = runs[0][0]["tile_ids"]
    for folder, (figures, _) in zip(args.sections, runs):
        if figures["tile_ids"] != ids:
            raise SystemExit(f"error: {folder}: scored other tiles than {args.sections[0]} (another held-out split?)")
    truths = [read_mask(args.tgs / "train" / "masks" / f"{tile_id}.png") for tile_id in ids]
    index = {str(folder): k for k, folder in enumerate(args.sections)}
    groups = args.groups or [str(k) for k in range(len(runs))] + ["+".join(str(k) for k in range(len(runs)))]
    print(f"{len(ids)} tiles, {sum(int(t.any()) for t in truths)} with salt")
    for group in groups:
        chosen = [int(part) if part.isdigit() else index[part] for part in group.split("+")]
        members = [runs[k] for k in chosen]
        threshold = float(np.mean([figures["threshold"] for figures, _ in members]))
        names = "+".join(args.sections[k].parent.name for k in chosen)
        print(f"{names} (threshold {threshold:.3f})")
        probs = {name: np.mean([p[name] for _, p in members], axis=0) for name in VARIANTS
                 if all(name in p for _, p in members)}
        base = tile_scores(list(probs[BASE]), truths, threshold)
        for name, p in probs.items():
            d, se = paired_difference(base, tile_scores(list(p), truths, threshold))
            value, iou = score(list(p), truths, threshold)
            print(f"  {name:32s} {value:.4f} ({d:+.3f} +- {se:.3f})  pixel IoU {iou:.3f}  "
                  f"tiles with salt {int(sum((q > threshold).any() for q in p))}", flush=True)


if __name__ == "__main__":
    main()
