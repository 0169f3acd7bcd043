"""The measurements behind segment.py's domain check (issue 18): what the real training tiles, the
synthetic volumes and badly mapped amplitudes give against its two bounds.

    python benchmarks/domain_check_bounds.py [--tgs ../shared/tgs] [--groups 400]

The check (``salt_tf.seismic.qc.DomainCheck``) warns when more than ``CLIP_LIMIT`` of the live
samples sit at grey level 0 or at 255, or when the total variation distance (TV, ``BINS`` bins)
between the input's grey levels and the training tiles' exceeds ``DISTANCE_LIMIT``. Printed:
- the real tiles' shares at 0 and 255 and their TV to the built-in training histogram;
- random groups of 8 real tiles (an 808-trace line's worth): TV and clipped share;
- the real tiles taken as amplitudes (grey - 120), mapped back by ``sections.amplitude_map`` with
  the right gain and with the gain times 0.1 ... 10: clipped shares and TV;
- three synthetic volumes (``synthetic_sections.make_volume``, seeds 0-2) mapped the same way.
"""
from __future__ import annotations

import dataclasses

import _bench
import numpy as np

from salt_tf.run import tile_stats
from salt_tf.seismic import qc, sections
from salt_tf.tiles.data import load_train
from salt_tf.seismic.synthetic import make_volume

GAINS = (0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0)


def figures(grey: np.ndarray) -> tuple[float, float, float, bool]:
    """What segment.py's check (built-in training histogram) says of these grey levels, taken as one
    line: shares at grey 0 and 255, the TV distance, and whether it warns."""
    check = qc.DomainCheck()
    check.add_line(grey.reshape(-1, grey.shape[-1]))
    s = check.summary()
    return s["clipped_low"], s["clipped_high"], s["distance"], s["warning"] is not None


def mapped(amplitudes: np.ndarray, gain_factor: float) -> np.ndarray:
    amap = sections.amplitude_map(amplitudes, tile_stats.DEFAULT_TILE_STATS)
    return dataclasses.replace(amap, gain=amap.gain * gain_factor)(amplitudes)


def main() -> None:
    parser = _bench.parser(__doc__, tgs=True)
    parser.add_argument("--groups", type=int, default=400, help="random groups of 8 tiles (default: 400)")
    args = parser.parse_args()
    _bench.header(f"limits: clipped {qc.CLIP_LIMIT:.0%} at either end, TV {qc.DISTANCE_LIMIT}")
    images = load_train(args.tgs).images  # (N, 101, 101) uint8
    low, high, tv, _ = figures(images)
    print(f"real tiles ({len(images)}): {100 * low:.3f}% at 0, {100 * high:.3f}% at 255, TV {tv:.3f} "
          f"to the built-in histogram")

    rng = np.random.default_rng(0)
    groups = [figures(images[rng.choice(len(images), 8, replace=False)]) for _ in range(args.groups)]
    tvs, clipped = np.array([g[2] for g in groups]), np.array([max(g[:2]) for g in groups])
    print(f"{args.groups} random groups of 8 tiles: TV median {np.median(tvs):.3f}, 99th percentile "
          f"{np.percentile(tvs, 99):.3f}, max {tvs.max():.3f}; clipped share median {np.median(clipped):.4f}, "
          f"max {clipped.max():.3f}")

    volumes = {"real tiles as amplitudes (grey - 120)": images.astype(np.float32) - 120.0}
    for seed in range(3):
        volumes[f"synthetic volume, seed {seed}"] = make_volume(np.random.default_rng(seed), 12, 160, 200)[0]
    print("| input | gain x | at 0 | at 255 | TV | warned |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, amplitudes in volumes.items():
        for factor in GAINS:
            low, high, tv, warned = figures(mapped(amplitudes, factor))
            print(f"| {name} | {factor:g} | {100 * low:.2f}% | {100 * high:.2f}% | {tv:.3f} | {'yes' if warned else 'no'} |",
                  flush=True)


if __name__ == "__main__":
    main()
