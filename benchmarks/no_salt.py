"""Salt where there is none: segment.py on the real SEG-Y files of ../shared/realdata that hold no salt
(the USGS 1981 2-D line, two F3 crops), counting the traces it gives any salt.

    python benchmarks/no_salt.py --runs REAL/run REAL1/run [--window-norms minmax global] [--out F]

Every run is segmented with its defaults but the window framing (``--window-norms``; the run's own,
which the default ``segment.py`` uses, is marked). Prints one row per run and framing and, with
``--out``, writes the figures as JSON (written aside, then renamed). Issue 38's targets: fewer than
65 of the USGS line's 534 traces and 197 of ``segyio_f3.sgy``'s 414.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import _bench

from salt_tf.tiles.data import real_seismic_dir

FILES = ("31_81_PR.sgy", "F3_very_small.sgy", "segyio_f3.sgy")


def traces_with_salt(run: Path | None, path: Path, windows: str, tmp: Path, model=None) -> tuple[int, int]:
    """(traces with any salt, traces) of ``path`` segmented by ``run`` (or ``model``, a stand-in) with
    ``windows`` framing."""
    from salt_tf.seismic.segment import run as segment_run

    summary = segment_run(run, path, tmp / f"{path.stem}-{windows}", windows=windows, n_figures=0, progress=False,
                          model=model, log=lambda line: None, warn=lambda line: None)
    geometry = summary["geometry"]
    return summary["surfaces"]["traces_with_salt"], geometry["lines"] * geometry["traces"] - geometry["absent_traces"]


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="train.py run folders")
    parser.add_argument("--window-norms", nargs="+", default=["minmax", "global"], choices=["minmax", "global"])
    parser.add_argument("--realdata", type=Path, default=real_seismic_dir(), help="../shared/realdata")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = parser.parse_args()
    _bench.header("traces with salt on real SEG-Y files with none")
    from salt_tf.run import tile_stats
    from salt_tf.seismic.segment import window_norm

    rows = []
    print(f"{'run':40s} {'windows':10s} " + " ".join(f"{name:>18s}" for name in FILES), flush=True)
    for run in args.runs:
        own = window_norm(tile_stats.read_tile_stats(run, lambda line: None), None)[0]
        for windows in args.window_norms:
            with tempfile.TemporaryDirectory() as tmp:
                counts = {name: traces_with_salt(run, args.realdata / "small_real_segy" / name, windows, Path(tmp))
                          for name in FILES}
            rows.append({"run": str(run), "windows": windows, "default": windows == own,
                         "traces_with_salt": {name: list(c) for name, c in counts.items()}})
            label = windows + (" *" if windows == own else "")
            print(f"{str(run):40s} {label:10s} " + " ".join(f"{f'{n} of {t}':>18s}" for n, t in counts.values()), flush=True)
    print("* the run's own framing: segment.py's default")
    if args.out:
        part = args.out.with_name(args.out.name + ".part")
        part.write_text(json.dumps({"rows": rows}, indent=1))
        part.replace(args.out)


if __name__ == "__main__":
    main()
