"""The training step of this tree against another commit's, side by side in one script (issue 40:
TensorFlow's step must not get slower when the code learns other backends).

    python benchmarks/trees_speed.py --before REV [--rounds 3] [--variants decoder] [--steps 3]

``REV`` is checked out into a temporary git worktree (removed after). Then, alternately, one
process of ``benchmarks/unet_speed.py --rounds 1`` in each tree, ``--rounds`` times (a process each,
since both trees are the package ``salt_tf``); each prints ms per training tile by variant. Printed:
per variant, the median of each tree's rounds and the ratio this tree / ``REV``.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import _bench
import numpy as np

ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<ms>\d+\.\d+)\s{2}")


def unet_speed(tree: Path, variants: str, steps: int, batch_size: int) -> dict[str, float]:
    """ms per training tile by variant, from one process of ``tree``'s own unet_speed.py."""
    done = subprocess.run([sys.executable, str(tree / "benchmarks" / "unet_speed.py"), "--rounds", "1",
                           "--steps", str(steps), "--variants", variants, "--batch-size", str(batch_size)],
                          capture_output=True, text=True, cwd=tree, check=True)
    rows = done.stdout.split("GFLOP/s", 1)[1].splitlines()
    return {m["name"].strip(): float(m["ms"]) for m in map(ROW.match, rows) if m}


def main() -> None:
    parser = _bench.parser(__doc__, rounds=3, batch_size=16)
    parser.add_argument("--before", required=True, help="the commit to compare with (e.g. the one before a change)")
    parser.add_argument("--variants", default="decoder", help="unet_speed.py's --variants (default: decoder)")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=_bench.ROOT)
    _bench.header(f"this tree: {head.stdout.strip()} (with any uncommitted changes), before: {args.before}")
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=_bench.ROOT, check=True,
                       capture_output=True)
        try:
            times = {"before": [], "after": []}
            for round_ in range(args.rounds):
                for label, tree in (("before", before), ("after", _bench.ROOT)):
                    times[label].append(unet_speed(tree, args.variants, args.steps, args.batch_size))
                    shown = ", ".join(f"{k} {v:.1f}" for k, v in times[label][-1].items())
                    print(f"round {round_ + 1} {label}: {shown}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=_bench.ROOT, capture_output=True)
    print(f"\n{'variant':<46}{'before ms/tile':>15}{'after ms/tile':>15}{'after / before':>16}")
    for name in times["after"][0]:
        b = float(np.median([r[name] for r in times["before"]]))
        a = float(np.median([r[name] for r in times["after"]]))
        print(f"{name:<46}{b:>15.1f}{a:>15.1f}{a / b:>16.3f}")


if __name__ == "__main__":
    main()
