"""Ways to spend a training budget, side by side on the real data (issue 11).

Each variant is the ``cpu-60min`` preset with one setting changed, trained for ``--budget-min``
minutes by ``benchmarks/real_data.py`` (same held-out split, same seed) and scored on the held-out
tiles. The variants run one after another, never together; each has its own folder ``OUT/NAME``
with its log, and a variant whose ``holdout.json`` exists is not run again, so an interrupted
comparison goes on where it stopped. ``OUT/compare.md`` is rewritten after every variant.

    python benchmarks/budget_compare.py --budget-min 15 --out runs/compare15 [--only baseline,resnet34] [--seeds 0,1]

With ``--seeds``, every variant trains once per seed (``--seed``; the held-out split stays the same),
in ``OUT/NAME-seedS``, in the order variant by variant within each seed, so that an interrupted
comparison still holds every variant at the first seed; ``compare.md`` adds each variant's mean.

Run it on an otherwise idle machine: the variants are compared by what a fixed time buys.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import _bench  # start-up: the project on sys.path, quiet TensorFlow logs
import pandas as pd

from salt_tf.common.atomic import write_text

# name -> the flags that differ from the preset (issue 11's list: phase split, size schedule,
# ResNet18 vs ResNet34 at equal time, batch size, learning-rate schedule).
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "resnet34": ["--encoder", "resnet34"],
    "phase1-share-0.45": ["--phase1-share", "0.45"],
    "phase1-share-0.75": ["--phase1-share", "0.75"],
    "batch-32": ["--batch-size", "32"],
    "warmup-share-0.75": ["--warmup-share", "0.75"],
    "cosine": ["--phase1-schedule", "cosine"],
    # issue 20
    # the preset's decoder since 2026-12-01 (RESULTS.md's rows before then: "baseline" is the wide one)
    "narrow-decoder": ["--decoder-filters", "128,64,32,16,16"],
    "wide-decoder": ["--decoder-filters", "none"],  # segmentation-models' widths 256,128,64,32,16, the preset before
    "light-decoder": ["--decoder", "light", "--decoder-filters", "none"],  # its own widths, 64 x 5
    "symmetric-lovasz": ["--lovasz-symmetric"],
    "lovasz-from-start": ["--phase1-lovasz-weight", "0.5"],
    "ema": ["--ema", "0.99"],
    "narrow-decoder-ema": ["--decoder-filters", "128,64,32,16,16", "--ema", "0.99"],
    # padding 101 -> 128 cannot warm up at 64: measure it against the preset without the warm-up too
    "no-warmup": ["--warmup-size", "none"],
    "pad": ["--fit", "pad", "--warmup-size", "none"],
    "narrow-decoder-pad": ["--decoder-filters", "128,64,32,16,16", "--fit", "pad", "--warmup-size", "none"],
    # deep supervision and the image head (tugstugi/pytorch-saltnet's weights), on the narrow decoder
    "narrow-decoder-aux": ["--decoder-filters", "128,64,32,16,16", "--supervision-weight", "0.1", "--empty-weight", "0.05"],
    "narrow-decoder-hypercolumn": ["--decoder-filters", "128,64,32,16,16", "--hypercolumn"],
    "narrow-decoder-hypercolumn-aux": ["--decoder-filters", "128,64,32,16,16", "--hypercolumn",
                                       "--supervision-weight", "0.1", "--empty-weight", "0.05"],
}


def summary(name: str, folder: Path, seed: int | None = None) -> dict:
    result = json.loads((folder / "holdout.json").read_text())
    history = pd.read_csv(folder / "run" / "fold0" / "history.csv")
    epochs = " + ".join(f"{n}@{size}" for size, n in history[history["phase"] == 1].groupby("size", sort=False).size().items())
    val = history["val_seconds"].sum() / 60
    return {
        "variant": name, "seed": "" if seed is None else seed, "flags": " ".join(VARIANTS[name]) or "(the preset)",
        "held-out": f"{result['holdout_score']:.4f}", "held-out at 0.5": f"{result['holdout_score_threshold_0.5']:.4f}",
        "best val": f"{result['val_score']:.4f}",
        "phase 1 epochs": epochs, "phase 2 epochs": int((history["phase"] == 2).sum()),
        "validation min": f"{val:.1f}", "train min": f"{result['train_minutes']:.1f}",
    }


def write_table(out: Path, rows: list[dict], command: str) -> None:
    table = pd.DataFrame(rows)
    lines = [f"`{command}`", "", "| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    if table["seed"].astype(str).str.len().gt(0).any():
        lines += ["", "| variant | seeds | held-out, mean | held-out, each |", "| --- | --- | --- | --- |"]
        for name, group in table.groupby("variant", sort=False):
            scores = group["held-out"].astype(float)
            lines.append(f"| {name} | {len(group)} | {scores.mean():.4f} | {', '.join(group['held-out'])} |")
    write_text(out / "compare.md", "\n".join(lines) + "\n")


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--budget-min", type=float, default=15.0, help="training minutes per variant (default: 15)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the comparison")
    parser.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants, in order "
                        f"(default: all: {','.join(VARIANTS)})")
    parser.add_argument("--seeds", default=None, help="comma-separated training seeds, each variant once per seed "
                        "(default: the preset's seed, one run per variant)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    command = "python " + " ".join(sys.argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [None] if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        for name in names:
            label = name if seed is None else f"{name}-seed{seed}"
            folder = args.out / label
            if not (folder / "holdout.json").exists():
                started = time.perf_counter()
                cmd = [sys.executable, str(_bench.ROOT / "benchmarks" / "real_data.py"), "--preset", "cpu-60min",
                       "--budget-min", str(args.budget_min), "--out", str(folder), *VARIANTS[name],
                       *([] if seed is None else ["--seed", str(seed)])]
                print(f"{label}: {' '.join(cmd[1:])}", flush=True)
                with open(args.out / f"{label}.log", "a") as log:
                    subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
                print(f"{label}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
            rows.append(summary(name, folder, seed))
            print(json.dumps(rows[-1]), flush=True)
            write_table(args.out, rows, command)


if __name__ == "__main__":
    main()
