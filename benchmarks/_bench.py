"""What every benchmark shares: start-up, the flags, the machine header and interleaved timing.

Each script starts with ``import _bench`` (its own folder is first on sys.path): that puts the
project root on sys.path and quietens TensorFlow's C++ logs before anything imports TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(doc: str, *, rounds: int | None = None, batch_size: int | None = None,
           tgs: bool = False) -> argparse.ArgumentParser:
    """An argument parser showing the script's docstring, with the shared flags it asks for:
    ``--rounds`` (interleaved rounds), ``--batch-size`` and ``--tgs`` (the real data folder)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if rounds is not None:
        p.add_argument("--rounds", type=int, default=rounds,
                       help=f"interleaved rounds of the timings (default: {rounds})")
    if batch_size is not None:
        p.add_argument("--batch-size", type=int, default=batch_size,
                       help=f"tiles per batch (default: {batch_size})")
    if tgs:
        from salt_tf.tiles.data import real_data_dir

        p.add_argument("--tgs", type=Path, default=real_data_dir(),
                       help="the real data set in Kaggle's layout (default: $SALT_TF_TGS_DIR or "
                            "../shared/tgs beside the project)")
    return p


def volume_flags(p: argparse.ArgumentParser, lines: int, lines_help: str = "") -> None:
    """The flags of the benchmarks that segment a synthetic volume with a run: the run (or random-init
    U-Nets of --folds x --encoder at --size) and the volume's inlines x crosslines x samples."""
    p.add_argument("--run", help="a trained run folder (default: random-init U-Nets, see --folds/--encoder/--size)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--encoder", default="resnet34")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--lines", type=int, default=lines, help=f"inlines of the volume (default: {lines}{lines_help})")
    p.add_argument("--xlines", type=int, default=200, help="crosslines (traces per inline) (default: 200)")
    p.add_argument("--samples", type=int, default=200, help="samples per trace (default: 200)")


def random_tiles(n: int, size: int, seed: int = 0):
    """``n`` random (size, size, 1) float32 tiles in [0, 1) and random 0/1 masks of the same shape:
    a training step's inputs for timing."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1), dtype=np.float32)
    y = (rng.random((n, size, size, 1)) > 0.5).astype("float32")
    return x, y


def refuse(message: str):
    """One ``error:`` line on stderr, exit 2 (before anything is written)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def say(out: Path, line: str) -> None:
    """Print ``line`` and append it to ``out/results.txt``: a long run's figures kept as it goes."""
    print(line, flush=True)
    with open(out / "results.txt", "a") as f:
        f.write(line + "\n")


def header(*extra: str) -> None:
    """Print the command, the machine (processor, cores, load, versions) and any ``extra`` lines."""
    from salt_tf.common import machine

    print("command: python", " ".join(sys.argv))
    print(*machine.describe(), *extra, sep="\n", flush=True)


def seconds(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` made to return its wall-clock seconds instead of its result."""
    def timed() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return timed


def interleave(runs: dict[str, Callable[[], Any]] | Iterable[tuple[str, Callable[[], Any]]],
               rounds: int, *, alternate: bool = False,
               after: Callable[[int, str, Any], None] | None = None) -> dict[str, list]:
    """Call every run once per round, in turn, and return each name's results in call order.

    One run after the other inside each round, so that load from other processes on a shared
    machine (and the host's own drift) hits all of them alike; ratios taken round by round cancel
    it. ``alternate`` reverses the order every other round, so that no run always goes first. A
    name may appear twice (a reference measured between two others). ``after(round, name,
    result)`` is called after each run, to print progress.
    """
    runs = list(runs.items() if isinstance(runs, dict) else runs)
    results: dict[str, list] = {name: [] for name, _ in runs}
    for r in range(rounds):
        for name, run in (runs[::-1] if alternate and r % 2 else runs):
            result = run()
            results[name].append(result)
            if after is not None:
                after(r, name, result)
    return results
