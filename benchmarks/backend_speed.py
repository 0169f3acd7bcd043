"""Epoch times of the README's main command on each Keras backend, side by side in one script (issue 40).

    python benchmarks/backend_speed.py [--rounds 2] [--backends tensorflow jax] [--out DIR] [-- TRAIN FLAGS]

Per round and backend, one process of ``python train.py --folds 5 --size 128 --preset demo --fold 0``
(the embedded synthetic tiles), with ``KERAS_BACKEND`` set, backends alternating; then its
``fold0/history.csv``. ``jax-fp32`` is JAX with ``--no-mixed-precision`` (float32 throughout),
to see what bfloat16 does there. Printed per backend: the whole process's seconds, each phase's
first epoch (Keras traces or compiles the step in it) and the median of the other epochs' training
seconds, and their ratio to the first backend named. Flags after ``--`` go to every train.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench
import numpy as np
import pandas as pd

COMMAND = ["--folds", "5", "--size", "128", "--preset", "demo", "--fold", "0"]
BACKENDS = {"tensorflow": ("tensorflow", []), "jax": ("jax", []), "jax-fp32": ("jax", ["--no-mixed-precision"]),
            "torch": ("torch", [])}


def train_once(label: str, out: Path, extra: list[str]) -> dict:
    backend, flags = BACKENDS[label]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(_bench.ROOT / "train.py"), *COMMAND, "--out", str(out), *flags, *extra],
                          env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True, cwd=_bench.ROOT)
    if done.returncode:
        raise SystemExit(f"{label}: train.py failed:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    history = pd.read_csv(out / "fold0" / "history.csv")
    firsts = history.groupby("phase").head(1)
    rest = history.drop(firsts.index)
    policy = next((line for line in done.stdout.splitlines() if "dtype policy" in line), "")
    return {"process_seconds": seconds, "first_epochs": [float(s) for s in firsts["train_seconds"]],
            "median_epoch": float(rest["train_seconds"].median()) if len(rest) else float("nan"),
            "val_score": float(history["val_score"].max()), "log": policy}


def main() -> None:
    parser = _bench.parser(__doc__, rounds=2)
    parser.add_argument("--backends", nargs="+", choices=sorted(BACKENDS), default=["tensorflow", "jax", "jax-fp32"])
    parser.add_argument("--out", type=Path, help="keep the runs and write backend_speed.json here")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    _bench.header(f"train.py {' '.join(COMMAND)} {' '.join(extra)}".strip())
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        found = {label: [] for label in args.backends}
        for round_ in range(args.rounds):
            for label in args.backends:
                found[label].append(train_once(label, root / f"{label}-{round_}", extra))
                r = found[label][-1]
                print(f"round {round_ + 1} {label:<10} process {r['process_seconds']:6.1f} s, first epochs "
                      f"{', '.join(f'{s:.1f}' for s in r['first_epochs'])} s, median epoch {r['median_epoch']:.1f} s, "
                      f"best val_score {r['val_score']:.4f}  [{r['log'].strip()}]", flush=True)
        if args.out:
            (args.out / "backend_speed.json").write_text(json.dumps(found, indent=1))
    base = args.backends[0]
    print(f"\n{'backend':<12}{'process s':>10}{'epoch s (median)':>18}{'vs ' + base:>10}{'first epochs s':>22}")
    for label in args.backends:
        epoch = float(np.median([r["median_epoch"] for r in found[label]]))
        ratio = epoch / float(np.median([r["median_epoch"] for r in found[base]]))
        firsts = np.median([r["first_epochs"] for r in found[label]], axis=0)
        print(f"{label:<12}{np.median([r['process_seconds'] for r in found[label]]):>10.1f}{epoch:>18.2f}{ratio:>10.2f}"
              f"{', '.join(f'{s:.1f}' for s in firsts):>22}")


if __name__ == "__main__":
    main()
