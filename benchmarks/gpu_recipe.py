"""The seed's recipe on a GPU machine that has JAX or PyTorch and no TensorFlow (issue 40).

    python benchmarks/gpu_recipe.py --wheels WHEELS --out runs/gpu          # on the GPU machine
    python benchmarks/gpu_recipe.py --dry-run --out runs/gpu-dry            # anywhere: the CPU, tiny

What it does, printing as it goes and writing ``OUT/gpu_recipe.json`` after every step:

1. Installs what the project needs beside the machine's own JAX or PyTorch from ``WHEELS`` (no
   network: ``pip install --no-index --find-links WHEELS -r benchmarks/gpu_requirements.txt``),
   unless all of it is importable already. The wheels are made on a machine with the network:
   ``pip download -r benchmarks/gpu_requirements.txt -d WHEELS --only-binary=:all:
   --python-version 3.11`` (the GPU machine's Python; about 170 MB with NumPy and SciPy).
2. Picks the backend: ``--backend`` or, by default, JAX where it is installed, else PyTorch.
   TensorFlow is hidden (`salt_tf.common.machine.hide_tensorflow`), as on that machine.
3. Trains fold 0 of 5 of the real tiles (``--tgs``, default ``../shared/tgs``; stratified by depth,
   as ``train.py``) with the seed's recipe at 128: ResNet34 + scSE from random weights (no ImageNet
   download there), mixed precision (bfloat16 on a GPU with JAX or PyTorch), 10 epochs of phase 1
   (SGD + BCE), then phase 2 (AdamW + Lovasz hinge) until its patience stops it, within
   ``--budget-min`` (default 8) minutes of training.
4. Prints each epoch's time and images per second (``fold0/history.csv``) and the held-out score:
   fold 0's 640 tiles, which training never sees, scored as ``predict.py`` scores them (flip TTA,
   at 0.5 and at the tuned threshold). For reference (measured outside this project): the same
   architecture from random weights in PyTorch on an H100 reached 0.68 / 0.75 / 0.79 on held-out
   tiles after 30 / 60 / 100 epochs.

``--dry-run`` checks the whole path on a CPU: 2 steps per epoch, one epoch per phase, batch 8,
validation on the same 640 tiles; its score means nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("keras", "albumentations", "cv2", "pandas", "sklearn", "scipy", "matplotlib", "h5py")


def write(out: Path, record: dict) -> None:
    """``OUT/gpu_recipe.json`` as far as the run got (written to a temporary name, then renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".gpu_recipe.json.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out / "gpu_recipe.json")


def install(wheels: Path | None) -> dict:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return {"installed": [], "seconds": 0.0}
    if wheels is None:
        raise SystemExit(f"missing {', '.join(missing)}: give --wheels DIR (made by pip download, see --help)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
                    "-r", str(ROOT / "benchmarks" / "gpu_requirements.txt")], check=True)
    return {"installed": missing, "seconds": round(time.perf_counter() - started, 1)}


def pick_backend(chosen: str) -> str:
    if chosen != "auto":
        return chosen
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    raise SystemExit("neither JAX nor PyTorch is installed; this script is for a machine with one of them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, help="folder of wheels made by pip download (see above)")
    default_tgs = Path(os.environ.get("SALT_TF_TGS_DIR", ROOT.parent / "shared" / "tgs"))
    parser.add_argument("--tgs", type=Path, default=default_tgs,
                        help="the competition data in Kaggle's layout (default: $SALT_TF_TGS_DIR or ../shared/tgs)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the run and gpu_recipe.json")
    parser.add_argument("--backend", choices=("auto", "jax", "torch"), default="auto")
    parser.add_argument("--budget-min", type=float, default=8.0, help="minutes of training at most (default: 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="the whole path in a few minutes on a CPU")
    args = parser.parse_args()

    record = {"command": "python " + " ".join(sys.argv), "dry_run": args.dry_run, "seed": args.seed}
    record["install"] = install(args.wheels)
    backend = pick_backend(args.backend)
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, str(ROOT))
    from salt_tf.common import machine

    machine.hide_tensorflow()  # as on the GPU machine: TensorFlow is not there, even where it is installed
    write(args.out, record)

    import dataclasses

    import numpy as np

    from salt_tf.run.config import Config
    from salt_tf.training import train

    record["machine"] = machine.describe()
    record["backend"] = backend
    print(*record["machine"], sep="\n", flush=True)
    config = Config(data=str(args.tgs), out=str(args.out / "run"), folds=5, fold=0, size=128, encoder="resnet34",
                    encoder_weights=None, scse=True, phase1_epochs=10, mixed_precision=True, seed=args.seed,
                    budget_min=args.budget_min)
    if args.dry_run:
        config = dataclasses.replace(config, phase1_epochs=1, phase2_epochs=1, steps_per_epoch=2, batch_size=8,
                                     budget_min=None)
    record["config"] = dataclasses.asdict(config)
    write(args.out, record)
    started = time.perf_counter()
    report = train.run(config, resume=(args.out / "run" / "config.json").exists())
    record["train_minutes"] = round((time.perf_counter() - started) / 60, 2)

    import pandas as pd

    history = pd.read_csv(args.out / "run" / "fold0" / "history.csv")
    result = json.loads((args.out / "run" / "fold0" / "result.json").read_text())
    steps = config.steps_per_epoch or result["n_train"] // config.batch_size
    images = steps * config.batch_size
    epochs = [{"phase": int(r.phase), "epoch": int(r.epoch), "seconds": float(r.seconds),
               "train_seconds": float(r.train_seconds), "images_per_second": round(images / float(r.train_seconds), 1),
               "val_score": float(r.val_score)} for r in history.itertuples()]
    for e in epochs:
        print(f"phase {e['phase']} epoch {e['epoch']:3d}: {e['seconds']:6.1f} s ({e['train_seconds']:.1f} s training, "
              f"{e['images_per_second']:.0f} images/s), val_score {e['val_score']:.4f}", flush=True)
    record.update({
        "epochs": epochs, "phase_epochs": result["phase_epochs"], "stopped_by_budget": result["stopped_by_budget"],
        "median_images_per_second": float(np.median([e["images_per_second"] for e in epochs[1:] or epochs])),
        "held_out_tiles": result["n_val"], "held_out_score_0.5": result["val_score_101"],
        "held_out_score_tuned": report["cv_score_tuned"], "threshold": report["threshold"],
    })
    write(args.out, record)
    print(f"{backend}: {sum(result['phase_epochs'].values())} epochs in {record['train_minutes']} min, median "
          f"{record['median_images_per_second']:.0f} images/s; held-out score on {result['n_val']} tiles "
          f"{result['val_score_101']:.4f} at 0.5, {report['cv_score_tuned']:.4f} tuned; {args.out / 'gpu_recipe.json'}")


if __name__ == "__main__":
    main()
