"""How close to the truth a top of salt can be on the README's synthetic volume, if a model's salt
boundary is off sideways by a fraction of a trace (issue 18's 95%-within-3-samples target).

    python benchmarks/top_of_salt_ceiling.py [--seed 0]

No model: the true mask of ``python -m salt_tf.tiles.synthetic sections`` (``write_sections``, into a
temporary folder), its top of salt per trace (``interpret.trace_surfaces``), and the top that a boundary displaced by d traces
along the crosslines (or the inlines) would give, read off the true top by linear interpolation
between a trace and its neighbour (both with salt). On a flank that dips s samples per trace the
displaced top is s * d samples off, so the share within 3 samples is what a model whose boundary
is that far aside can score at best. Prints one row per displacement, both directions averaged.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import _bench
import numpy as np

from salt_tf.seismic import interpret
from salt_tf.seismic.synthetic import write_sections

DISPLACEMENTS = (0.1, 0.25, 0.5, 1.0)


def true_top(mask: np.ndarray) -> np.ndarray:
    """First salt sample per trace of a volume (inlines, crosslines, samples), NaN where none."""
    top = np.stack([interpret.trace_surfaces(line)[0] for line in mask]).astype(np.float64)
    return np.where(top >= 0, top, np.nan)


def within(top: np.ndarray, axis: int, d: float, samples: float = 3.0) -> tuple[float, int]:
    """Share of salty traces (with a salty neighbour on that side) whose top, displaced d traces
    towards the neighbour along ``axis``, stays within ``samples`` of the truth; both sides pooled."""
    step = np.abs(np.diff(top, axis=axis))  # NaN where either trace lacks salt
    step = step[~np.isnan(step)]
    both_sides = np.concatenate([step, step])  # towards the next trace, and the next towards this one
    return float(np.mean(d * both_sides <= samples)), both_sides.size


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--seed", type=int, default=0, help="the sections' seed (default: 0, the README's)")
    args = parser.parse_args()
    _bench.header()
    with tempfile.TemporaryDirectory() as tmp:
        mask = np.load(write_sections(Path(tmp) / "sections", seed=args.seed) / "volume_mask.npy")
    top = true_top(mask)
    print(f"volume {mask.shape} (inlines, crosslines, samples), {int(np.sum(~np.isnan(top)))} traces with salt")
    print("| boundary aside by | within 3 samples, along crosslines | along inlines |")
    print("| --- | --- | --- |")
    for d in DISPLACEMENTS:
        (xl, n_xl), (il, n_il) = within(top, 1, d), within(top, 0, d)
        print(f"| {d:g} trace | {100 * xl:.1f}% of {n_xl} | {100 * il:.1f}% of {n_il} |")


if __name__ == "__main__":
    main()
