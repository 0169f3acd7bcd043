"""IoU on a survey's unlabelled lines against how many inlines an interpreter labelled, for a model
trained on the survey from scratch, one fine-tuned from a competition-trained run, and that run alone.

    python benchmarks/survey_labels.py --start RUN --out DIR [--ks 1 2 4 8] [--seeds 1 2] [--draws 0 1 2 other]
    python benchmarks/survey_labels.py --out DIR --plot docs/survey_labels.png   # the figure of DIR's rows
    python benchmarks/survey_labels.py --start RUN --out DIR --loop other [--rounds 2] [--seeds 1]

``--loop DRAW`` plays the labelling loop on one draw instead: start from 2 labelled inlines, add 2 a
round chosen (a) by ``segment.py``'s ``label_next.csv`` (the previous round's model), (b) as far as
possible from every labelled line, (c) at random; after each round, fine-tune fold 0 anew from the
start run and print the IoU on the lines still unlabelled (``loop.jsonl``).

Each draw is a synthetic volume (12 inlines x 160 crosslines x 200 samples): ``0``, ``1``, ``2`` are
the README's recipe (``python -m salt_tf.seismic.synthetic``'s volume, that seed), ``other`` a survey
unlike the competition's tiles (salt sheets with a base, a longer wavelet, more noise, a weaker top,
amplitudes around 0.02). Its true mask is the interpreter's dense labels; ``K`` evenly spaced
inlines are kept (``survey_tiles --label-lines``), cut into windows at stride 20, trained on with 2
folds of whole lines (fold 0 only: it trains on half of the K lines and validates on the other
half, ``--gap 1``), for ``--phase1-epochs`` + ``--phase2-epochs``; with K = 1, ``--folds 1``: the
line trains, nothing validates, each phase's last epoch is the model:

- ``scratch``: random initialisation, the start run's architecture;
- ``fine-tune``: ``--init-from START``, the same recipe;
- ``start alone``: the start run, not trained on the survey.

Each model then segments the whole volume (``segment.py`` defaults, inline direction) and the
voxel IoU over the K-unlabelled inlines is printed and appended to ``DIR/survey_labels.jsonl`` as it
goes (the session may end before the table does).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import _bench
import numpy as np

VOLUME = (12, 160, 200)
OTHER = {"shape": "sheet", "wavelength": (10.0, 16.0), "noise": 0.4, "top_strength": 1.2, "amplitude": 0.02}


def volume(draw: str) -> tuple[np.ndarray, np.ndarray]:
    from salt_tf.seismic.synthetic import make_volume

    if draw == "other":
        return make_volume(np.random.default_rng(100), *VOLUME, **OTHER)
    # the README's volume of that seed: write_sections' second stream
    return make_volume(np.random.default_rng(int(draw)).spawn(2)[1], *VOLUME)


def evenly(k: int, n: int) -> list[int]:
    return [int(round(v)) for v in np.linspace(0, n - 1, k + 2)[1:-1]] if k < n else list(range(n))


def iou_unlabelled(mask_path: Path, truth: np.ndarray, labelled: list[int]) -> float:
    mask = np.load(mask_path).astype(bool)
    keep = np.setdiff1d(np.arange(len(truth)), labelled)
    pred, true = mask[keep], truth[keep].astype(bool)
    return float((pred & true).sum() / max((pred | true).sum(), 1))


def plot(rows: list[dict], path: Path) -> None:
    """IoU on the unlabelled inlines against K, one panel per kind of survey, a line per mode (the
    mean over draws and seeds, each row a faint dot)."""
    import matplotlib

    rows = list({(r["draw"], r["k"], r["mode"], r["seed"]): r for r in rows}.values())  # a rerun records again
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [("the README's synthetic volume (draws " + ", ".join(sorted({r["draw"] for r in rows} - {"other"})) + ")",
              lambda r: r["draw"] != "other"), ("another survey: salt sheets, longer wavelet, more noise",
                                                lambda r: r["draw"] == "other")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, keep) in zip(axes, kinds):
        for mode, colour in (("fine-tune", "tab:green"), ("scratch", "tab:blue"), ("start alone", "tab:grey")):
            mine = [r for r in rows if keep(r) and r["mode"] == mode]
            ks = sorted({r["k"] for r in mine})
            if not ks:
                continue
            ax.scatter([r["k"] for r in mine], [r["iou_unlabelled"] for r in mine], color=colour, alpha=0.3, s=12)
            ax.plot(ks, [np.mean([r["iou_unlabelled"] for r in mine if r["k"] == k]) for k in ks], "o-",
                    color=colour, label=mode)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("labelled inlines (of 12)")
        ax.set_xticks(sorted({r["k"] for r in rows}))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("voxel IoU on the unlabelled inlines")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def next_lines(strategy: str, labelled: list[int], n: int, seg: Path, rng) -> list[int]:
    """The 2 lines a strategy labels next."""
    free = [i for i in range(n) if i not in labelled]
    if strategy == "ranked":
        import pandas as pd

        ranked = pd.read_csv(seg / "label_next.csv")["line"].tolist()
        return [int(i) for i in ranked[:2]]
    if strategy == "even":
        chosen = list(labelled)
        for _ in range(2):
            far = max((i for i in free if i not in chosen), key=lambda i: min(abs(i - j) for j in chosen))
            chosen.append(far)
        return chosen[len(labelled):]
    return [int(i) for i in rng.choice(free, 2, replace=False)]


def loop(args, draw: str, train, segment, survey_tiles, base: dict, record) -> None:
    amplitudes, truth = volume(draw)
    folder = args.out / f"loop-{draw}"
    folder.mkdir(exist_ok=True)
    np.save(folder / "v.npy", amplitudes)
    np.save(folder / "labels.npy", truth)
    quiet = dict(progress=False, log=lambda line: None, warn=lambda line: None, n_figures=0)
    for seed in args.seeds:
        for strategy in ("ranked", "even", "random"):
            rng = np.random.default_rng(seed)
            labelled = evenly(2, len(truth))
            for round_ in range(args.rounds + 1):  # round 0 is the same for every strategy: trained once
                name = folder / (f"{strategy}-seed{seed}-round{round_}" if round_ else f"seed{seed}-round0")
                windows = Path(f"{name}-windows")
                if not windows.exists():
                    survey_tiles.write(survey_tiles.build(folder / "v.npy", folder / "labels.npy", 2, labelled, 20),
                                       windows)
                if not (name / "fold0" / "result.json").exists():
                    train(base | {"survey": str(windows), "out": str(name), "seed": seed}, name)
                seg = Path(f"{name}-seg")
                if not seg.exists():
                    segment.run(name, folder / "v.npy", seg, **quiet)
                record({"loop": draw, "strategy": strategy, "seed": seed, "round": round_, "labelled": labelled,
                        "iou_unlabelled": iou_unlabelled(seg / "mask.npy", truth, labelled)})
                if round_ < args.rounds:
                    labelled = sorted(labelled + next_lines(strategy, labelled, len(truth), seg, rng))


def main() -> None:
    parser = _bench.parser(__doc__)
    parser.add_argument("--start", type=Path, help="a competition-trained run folder")
    parser.add_argument("--plot", type=Path, help="only draw the figure of --out's rows into this PNG")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ks", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1])
    parser.add_argument("--draws", nargs="*", default=["0", "1", "2", "other"])
    parser.add_argument("--modes", nargs="*", default=["scratch", "fine-tune"], choices=["scratch", "fine-tune"],
                        help="which trained models to make (the start run alone is always measured)")
    parser.add_argument("--loop", help="play the labelling loop on this draw instead (e.g. other)")
    parser.add_argument("--rounds", type=int, default=2, help="--loop: rounds of 2 lines each (default: 2)")
    parser.add_argument("--phase1-epochs", type=int, default=8)
    parser.add_argument("--phase2-epochs", type=int, default=4)
    args = parser.parse_args()
    if args.plot:
        plot([json.loads(line) for line in (args.out / "survey_labels.jsonl").read_text().splitlines()], args.plot)
        return
    if args.start is None:
        parser.error("--start RUN is needed to train and measure")
    _bench.header(f"start run {args.start}")
    from salt_tf.run.config import Config
    from salt_tf.seismic import segment, survey_tiles
    from salt_tf.training.train import run as train

    start = json.loads((args.start / "config.json").read_text())
    arch = {k: start[k] for k in ("encoder", "size", "decoder", "decoder_filters", "scse", "hypercolumn", "fit",
                                  "dropout", "mixed_precision", "batch_size")}
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / ("loop.jsonl" if args.loop else "survey_labels.jsonl")
    quiet = dict(progress=False, log=lambda line: None, warn=lambda line: None, n_figures=0)

    def record(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")

    if args.loop:
        base = dict(folds=2, fold=0, gap=1, encoder_weights=None, phase1_epochs=args.phase1_epochs,
                    phase2_epochs=args.phase2_epochs, init_from=str(args.start), **arch)
        loop(args, args.loop, lambda settings, out: train(Config(**settings), resume=out.exists(),
                                                          log=lambda line: None), segment, survey_tiles, base, record)
        return
    for draw in args.draws:
        amplitudes, truth = volume(draw)
        folder = args.out / f"draw-{draw}"
        folder.mkdir(exist_ok=True)
        np.save(folder / "v.npy", amplitudes)
        np.save(folder / "labels.npy", truth)
        for k in args.ks:
            labelled = evenly(k, len(truth))
            name = f"k{k}"
            alone = folder / f"{name}-alone"
            if not alone.exists():
                segment.run(args.start, folder / "v.npy", alone, **quiet)
            record({"draw": draw, "k": k, "mode": "start alone", "seed": None, "labelled": labelled,
                    "iou_unlabelled": iou_unlabelled(alone / "mask.npy", truth, labelled)})
            windows, folds = folder / f"{name}-windows", 1 if k == 1 else 2  # one line: no validation
            if not windows.exists():
                survey_tiles.write(survey_tiles.build(folder / "v.npy", folder / "labels.npy", folds, labelled, 20),
                                   windows)
            for seed in args.seeds:
                for mode in args.modes:
                    out = folder / f"{name}-{mode}-seed{seed}"
                    clock = time.perf_counter()
                    if not (out / "fold0" / "result.json").exists():
                        config = Config(survey=str(windows), out=str(out), folds=folds, fold=0, gap=1, seed=seed,
                                        encoder_weights=None, phase1_epochs=args.phase1_epochs,
                                        phase2_epochs=args.phase2_epochs,
                                        init_from=str(args.start) if mode == "fine-tune" else None, **arch)
                        train(config, resume=out.exists(), log=lambda line: None)
                    seconds = time.perf_counter() - clock
                    seg = folder / f"{name}-{mode}-seed{seed}-seg"
                    if not seg.exists():
                        segment.run(out, folder / "v.npy", seg, **quiet)
                    record({"draw": draw, "k": k, "mode": mode, "seed": seed, "labelled": labelled,
                            "iou_unlabelled": iou_unlabelled(seg / "mask.npy", truth, labelled),
                            "train_seconds": round(seconds, 1)})


if __name__ == "__main__":
    main()
