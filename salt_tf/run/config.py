"""Every knob of a run, with its default, in one dataclass.

The CLI maps its flags onto these fields one to one, and every run writes the config it used to
``RUN_DIR/config.json``. Defaults follow the original GPU solution; presets are named overrides
for other budgets. ``check_config`` (and ``run.start.check_weights``) refuse a bad setting before
anything is written.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from salt_tf.common.atomic import write_text


@dataclass
class Config:
    # Data and run folder. data=None means the embedded synthetic data set (generated once).
    data: str | None = None
    out: str | None = None  # None: runs/<timestamp>
    seed: int = 0

    # Folds: stratified by depth as in the original solution.
    folds: int = 5
    fold: int | None = None  # train only this fold (0-based)
    stratify: str = "depth"

    # Model.
    encoder: str = "resnet34"
    encoder_weights: str | None = "imagenet"  # "imagenet", a local weights file, or None
    size: int = 128
    # How a 101x101 tile becomes the model's input: "resize" (scaled to `size`, the original's) or
    # "pad" (reflected out to `size` by the model's first layer, its logits cropped back to 101 by
    # its last: the loss, the metric and every prediction see the tile's own pixels, unresampled).
    fit: str = "resize"
    scse: bool = True
    hypercolumn: bool = False
    dropout: float = 0.0
    decoder: str = "unet"  # salt_tf.model.unet.DECODERS
    decoder_filters: str | None = None  # five widths, deepest first, e.g. "128,64,32,16,16"

    # Training across the tile grid: windows at any position of the sections the tiles were cut from
    # (a folder with mosaics/ and test_tiles/, as ../shared/realdata), `section_windows` of them per
    # training tile, framed as the tiles were, unlabelled pixels out of the loss (issue 38).
    sections: str | None = None
    section_windows: float = 1.0
    section_seams: int = 0  # pixels on both sides of a label seam left out of the loss (mosaics.unlabel_seams)

    # A user's survey instead of tiles: a folder of windows and folds of whole lines written by
    # `python -m salt_tf.seismic.survey_tiles`; lines within `gap` of a fold's validation lines are
    # not trained on in that fold (issue 39).
    survey: str | None = None
    gap: int = 2
    # Fine-tuning: each fold starts from another run's exported model (its own fold, else fold 0)
    # instead of --encoder-weights; the settings must build the same model (issue 39).
    init_from: str | None = None

    # Augmentation (albumentations), applied to image and mask together.
    crop_prob: float = 0.5  # else a plain resize to `size`
    crop_min_area: float = 0.5  # random crop of crop_min_area..1 of the tile's area
    hflip_prob: float = 0.5
    brightness_limit: float = 0.1
    brightness_prob: float = 0.5

    # Phase 1: SGD with momentum + binary cross-entropy, learning rate decayed to 0 over the phase
    # (cosine as the original, or linear: Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020).
    batch_size: int = 16
    phase1_epochs: int = 10
    phase1_lr: float = 0.01
    phase1_momentum: float = 0.9
    phase1_schedule: str = "cosine"

    # Progressive resizing: phase 1 begins at `warmup_size` (e.g. 64, a quarter of the pixels of
    # 128) for `warmup_share` of its epochs (of its time under a budget), then goes on at `size`.
    # A warm-up stage validates at its own size; the best model is chosen among the epochs
    # validated at `size`, and exported at `size`. The U-Net is fully convolutional: one model, one
    # set of weights for both sizes.
    warmup_size: int | None = None
    warmup_share: float = 0.5

    # Phase 2: AdamW + Lovasz hinge until the validation loss stops improving; the learning rate
    # halves after `phase2_lr_patience` flat epochs, training stops after `phase2_patience`.
    phase2_epochs: int = 50
    phase2_lr: float = 1e-4
    phase2_weight_decay: float = 1e-4
    phase2_patience: int = 8
    phase2_lr_patience: int = 3
    lovasz_elu: bool = False
    # Loss weights: phase 1 is BCE + phase1_lovasz_weight x Lovasz (0: BCE alone, the recipe's),
    # phase 2 Lovasz + phase2_bce_weight x BCE (0: Lovasz alone); lovasz_symmetric makes every
    # Lovasz term the mean over salt and background (salt_tf.model.losses.symmetric_lovasz_per_image).
    phase1_lovasz_weight: float = 0.0
    phase2_bce_weight: float = 0.0
    lovasz_symmetric: bool = False
    # Training-only heads (salt_tf.model.unet._auxiliary), each on when its weight is above 0: deep
    # supervision, the phase's loss on every decoder stage's own logits (tiles with salt only), and
    # an image head, binary cross-entropy of "the tile has salt" (tugstugi/pytorch-saltnet: 0.1, 0.05).
    # Exported models and predictions have the logits alone.
    supervision_weight: float = 0.0
    empty_weight: float = 0.0
    # An exponential moving average of the weights (salt_tf.training.callbacks.WeightAverage), updated every
    # batch with this momentum: validated, kept and exported in place of the raw weights. 0: off.
    ema: float = 0.0

    # Wall-clock budget for training all requested folds (validation included). Each fold gets an
    # equal share of what is left when it starts; phase 1 gets `phase1_share` of the fold's time and
    # its learning-rate decay (linear or cosine) then runs over whichever ends first, that time or
    # phase1_epochs. Each phase stops cleanly (after a validation pass) when its time is up; the
    # best model is kept.
    budget_min: float | None = None
    phase1_share: float = 0.7

    steps_per_epoch: int | None = None  # None: one pass over the training tiles
    mixed_precision: bool = False
    preset: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        values = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}")
        return cls(**values)


# Named overrides. "demo": the README's main command on the synthetic data within minutes on a
# 2-core CPU, no download needed. "cpu-60min": one fold of the real data in an hour of a 2-core
# CPU, from scratch (no ImageNet download); the epochs are caps, the budget ends each phase (see
# benchmarks/RESULTS.md for the experiments behind it). Run it with --fold 0 (or any one fold).
# Its choices: ResNet18 (from scratch it follows ResNet34's score per epoch within about 0.01
# beyond 30 epochs, and its step is cheaper, so an hour buys more epochs); half of phase 1's time
# at 64x64 (a quarter of the pixels); phase 1's learning rate decays linearly to 0 at its end
# (Budgeted Training, ICLR 2020); 60% of the time to phase 1 (the recipe's 60 BCE + 40 Lovasz
# epochs); phase 2 is ended by the clock, not by early stopping (patience beyond any budget).
# Batch 16: batch 32 led a 15-minute comparison but tied at 60 minutes (0.776 vs 0.777 held-out).
# The narrow decoder (widths 128,64,32,16,16, 0.67x the FLOPs): 0.63-0.70x the training step, so
# more epochs in the hour; ahead at 15 minutes on two seeds and at 60 minutes (0.701 vs 0.680
# held-out, one seed, the AVX2 machine of 2026-12-01).
PRESETS: dict[str, dict] = {
    "demo": dict(
        encoder="resnet18", encoder_weights=None, batch_size=8, mixed_precision=True,
        phase1_epochs=3, phase1_lr=0.05, phase2_epochs=1, phase2_lr=5e-4, phase2_patience=1,
    ),
    "cpu-60min": dict(
        encoder="resnet18", encoder_weights=None, size=128, decoder_filters="128,64,32,16,16",
        batch_size=16, mixed_precision=True, budget_min=60.0, phase1_share=0.6, warmup_size=64, warmup_share=0.5,
        phase1_epochs=1000, phase1_lr=0.05, phase1_schedule="linear",
        phase2_epochs=1000, phase2_lr=2e-4, phase2_patience=1000, phase2_lr_patience=3,
    ),
}


def with_preset(config: Config, preset: str | None) -> Config:
    if preset is None:
        return config
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(config, preset=preset, **PRESETS[preset])


SCHEDULES = ("cosine", "linear")
FITS = ("resize", "pad")

# One line of help per setting; the CLI has one flag per field, named after it.
HELP = {
    "data": "data set folder in Kaggle's layout (default: the embedded synthetic data set, "
    "generated once into ~/.cache/salt_tf)",
    "out": "run folder for models, logs and reports (default: runs/<date-time>)",
    "seed": "random seed for folds, initialisation, shuffling and augmentation",
    "folds": "number of cross-validation folds (1: a survey's windows made with --folds 1, no validation)",
    "fold": "train only this fold (0-based), e.g. one fold per GPU or machine",
    "stratify": "stratify folds by 'depth' (as the original) or 'coverage'",
    "encoder": "encoder backbone: resnet18, resnet34, resnet50, resnet101, resnet152, resnext50, resnext101",
    "encoder_weights": "'imagenet' (downloaded by segmentation-models), a local weights file, "
    "or 'none' for random initialisation",
    "size": "model input size (multiple of 32); 101x101 tiles are resized to it",
    "fit": "how a 101x101 tile meets --size: 'resize' (scaled to it) or 'pad' (reflected out to it inside the "
    "model, whose output is cropped back to 101, so loss, metric and predictions are on the tile's pixels)",
    "sections": "also train on windows across the tile grid of the sections the tiles were cut from: a folder with "
    "mosaics/ (the jigsaw's CSVs) and test_tiles/, e.g. ../shared/realdata (needs --data)",
    "section_windows": "windows from --sections per training tile",
    "section_seams": "with --sections: pixels on both sides of a label seam (neighbouring masks differing on 20%% of "
    "their edge or more) left out of the loss",
    "survey": "train on a survey's labelled lines instead of tiles: a folder written by python -m "
    "salt_tf.seismic.survey_tiles (windows, folds of whole lines)",
    "gap": "with --survey: a fold does not train on lines within this many lines of its validation lines",
    "init_from": "fine-tune: start each fold from this run folder's model (its fold of the same number, else fold 0) "
    "instead of --encoder-weights; the model settings must match that run's",
    "scse": "scSE blocks in the decoder",
    "hypercolumn": "concatenate all decoder stages before the head",
    "decoder": "decoder block: unet (two 3x3 convs on the upsampled map and its skip) or light (1x1 convs "
    "on the map and on its skip, added; after the 1st place's)",
    "decoder_filters": "the decoder's five widths, deepest first, comma-separated, e.g. 128,64,32,16,16 "
    "(none: 256,128,64,32,16 for unet, 64 x 5 for light)",
    "dropout": "spatial dropout rate before the head",
    "crop_prob": "probability of a random crop (else a plain resize)",
    "crop_min_area": "smallest crop, as a fraction of the tile's area",
    "hflip_prob": "probability of a horizontal flip",
    "brightness_limit": "largest brightness change, as a fraction of full scale",
    "brightness_prob": "probability of a brightness change",
    "batch_size": "tiles per batch",
    "phase1_epochs": "epochs of phase 1 (SGD + binary cross-entropy)",
    "phase1_lr": "phase 1 peak learning rate (decays to 0 over the phase)",
    "phase1_momentum": "phase 1 SGD momentum",
    "phase1_schedule": "phase 1 learning-rate decay to 0: 'cosine' or 'linear'",
    "warmup_size": "progressive resizing: phase 1 starts at this input size (multiple of 32, "
    "smaller than --size), then continues at --size",
    "warmup_share": "with --warmup-size, the fraction of phase 1 (epochs, or time under "
    "--budget-min) trained at that size",
    "phase2_epochs": "most epochs of phase 2 (AdamW + Lovasz hinge)",
    "phase2_lr": "phase 2 initial learning rate",
    "phase2_weight_decay": "phase 2 AdamW weight decay",
    "phase2_patience": "phase 2 stops after this many epochs without a better validation loss",
    "phase2_lr_patience": "phase 2 halves the learning rate after this many flat epochs",
    "lovasz_elu": "use elu(errors)+1 instead of relu(errors) in the Lovasz hinge",
    "phase1_lovasz_weight": "phase 1 loss is BCE + this x Lovasz hinge (0: BCE alone)",
    "phase2_bce_weight": "phase 2 loss is Lovasz hinge + this x BCE (0: Lovasz alone)",
    "lovasz_symmetric": "Lovasz hinge as the mean over salt and background: lovasz(x, y) and lovasz(-x, 1 - y)",
    "supervision_weight": "deep supervision: add this x the phase's loss on each decoder stage's own logits, on "
    "tiles with salt (0: off; try 0.1)",
    "empty_weight": "an image head that tells empty tiles: add this x its binary cross-entropy (0: off; try 0.05)",
    "ema": "momentum of an exponential moving average of the weights, updated every batch; the average is "
    "what is validated, kept as the best epoch's and exported (0: off; try 0.99)",
    "budget_min": "wall-clock minutes for training all requested folds; phases stop cleanly when "
    "their share is spent and the best model is kept (default: no limit)",
    "phase1_share": "with --budget-min, the fraction of each fold's time given to phase 1",
    "steps_per_epoch": "batches per epoch (default: one pass over the training tiles)",
    "mixed_precision": "float16 (GPU, TensorFlow) / bfloat16 (GPU with JAX or PyTorch; a CPU with native bfloat16: "
    "others stay float32, where emulated bfloat16 is ~10x slower) compute; loss and logits stay float32",
    "preset": f"named settings applied before the other flags: {', '.join(sorted(PRESETS))}",
}


DECODERS = ("unet", "light")  # salt_tf.model.unet.DECODERS (config.py stays free of TensorFlow)
CHOICES = {"preset": sorted(PRESETS), "phase1_schedule": list(SCHEDULES), "decoder": list(DECODERS), "fit": list(FITS)}


def decoder_widths(config: Config) -> tuple[int, ...] | None:
    """``--decoder-filters`` as five positive ints (None: the decoder's default widths)."""
    if config.decoder_filters is None:
        return None
    try:
        widths = tuple(int(w) for w in str(config.decoder_filters).split(","))
    except ValueError:
        widths = ()
    if len(widths) != 5 or min(widths) <= 0:
        raise ValueError(f"--decoder-filters {config.decoder_filters}: expected five positive widths, "
                         f"deepest first, e.g. 128,64,32,16,16")
    return widths


def build_from_config(config, size: int | None, weights=None):
    """The U-Net of ``config`` at ``size`` (None: any multiple of 32)."""
    from salt_tf.model.unet import build_unet
    from salt_tf.tiles.pipeline import data_size

    tile = data_size(config)  # --fit pad: the model takes 101x101 tiles and pads them to config.size
    pad = tile != config.size
    return build_unet(config.encoder, config.size if pad else size, weights, config.scse, config.hypercolumn,
                      dropout=config.dropout, decoder=config.decoder, decoder_filters=decoder_widths(config),
                      tile=tile if pad else None, supervision=config.supervision_weight > 0,
                      empty_head=config.empty_weight > 0)


def _parse_type(annotation: str):
    base = annotation.replace(" | None", "")
    return {"int": int, "float": float, "str": str, "bool": bool}[base]


def _none_or(parse):
    def convert(text: str):
        return None if text.lower() == "none" else parse(text)

    convert.__name__ = parse.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field (``--phase1-epochs`` for ``phase1_epochs``), defaults suppressed
    so that ``from_args`` can tell which flags were given."""
    defaults = Config()
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f"{HELP[f.name]} (default: {default})"
        kind = _parse_type(f.type)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        else:
            convert = _none_or(kind) if "None" in f.type else kind
            choices = CHOICES.get(f.name)
            parser.add_argument(flag, type=convert, default=argparse.SUPPRESS, choices=choices, help=help_text)


def given_settings(args: argparse.Namespace) -> dict:
    """The settings named by flags on the command line (the preset as the values it sets)."""
    given = {k: v for k, v in vars(args).items() if k in HELP}
    if given.get("preset") is not None:
        with_preset(Config(), given["preset"])  # refuses an unknown preset
        given = {**PRESETS[given["preset"]], **given}
    return given


def resumed(saved: Config, args: argparse.Namespace) -> Config:
    """The saved settings of a run, for ``--resume``: flags may repeat them, not change them
    (``--fold`` aside, which picks the fold to continue)."""
    given = given_settings(args)
    changed = [f"--{k.replace('_', '-')} {v} (the run has {getattr(saved, k)})"
               for k, v in given.items() if k not in ("fold", "out") and getattr(saved, k) != v]
    if changed:
        raise ValueError(f"--resume continues a run with its saved settings; these flags change them: "
                         f"{', '.join(changed)}. Leave them out, or start a new run with another --out")
    return dataclasses.replace(saved, fold=given.get("fold", saved.fold), out=given.get("out", saved.out))


def from_args(args: argparse.Namespace) -> Config:
    """Defaults, then the preset, then the flags that were given."""
    given = vars(args)
    config = with_preset(Config(), given.get("preset"))
    return dataclasses.replace(config, **{k: v for k, v in given.items() if k in HELP})


# --- checks before anything is written --------------------------------------------------------


def check_config(config: Config) -> None:
    """Refuse settings that would only fail later, after data loading or an epoch."""
    # Imported here: config.py stays free of TensorFlow and scikit-learn for the CLI's start-up.
    from salt_tf.model.encoders import ENCODERS
    from salt_tf.tiles.folds import STRATIFY_BY

    if config.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {config.encoder!r}; known encoders: {', '.join(ENCODERS)}")
    if config.size % 32:
        raise ValueError(f"--size {config.size} is not a multiple of 32; tiles are resized to it (try 128)")
    _check_fit(config)
    if config.stratify not in STRATIFY_BY:
        raise ValueError(f"--stratify must be one of {STRATIFY_BY}, not {config.stratify!r}")
    if config.fold is not None and not 0 <= config.fold < config.folds:
        raise ValueError(f"--fold {config.fold} is outside 0..{config.folds - 1}")
    if config.sections is not None and (config.data is None or not (Path(config.sections) / "mosaics").is_dir()):
        raise ValueError(f"--sections {config.sections}: needs --data (the tiles the mosaics name) and a folder "
                         f"holding mosaics/")
    if config.survey is not None and (config.data is not None or config.sections is not None):
        raise ValueError(f"--survey {config.survey}: trains on the survey's windows alone; drop --data and --sections")
    if config.gap < 0:
        raise ValueError(f"--gap {config.gap}: must be at least 0")
    if not 0 <= config.section_seams <= 50:
        raise ValueError(f"--section-seams {config.section_seams}: must be 0 (off) to 50 pixels, half a tile")
    if config.section_windows < 0:
        raise ValueError(f"--section-windows {config.section_windows}: must be at least 0")
    if config.budget_min is not None and config.budget_min <= 0:
        raise ValueError(f"--budget-min {config.budget_min}: the time budget must be positive (minutes)")
    if config.warmup_size is not None and (config.warmup_size % 32 or not 0 < config.warmup_size < config.size):
        raise ValueError(f"--warmup-size {config.warmup_size}: must be a multiple of 32 below --size {config.size} (try 64)")
    if not 0.0 < config.warmup_share < 1.0:
        raise ValueError(f"--warmup-share {config.warmup_share}: must be in (0, 1)")
    if config.phase1_schedule not in SCHEDULES:
        raise ValueError(f"--phase1-schedule {config.phase1_schedule!r}: must be one of {', '.join(SCHEDULES)}")
    if not 0.0 < config.phase1_share <= 1.0:
        raise ValueError(f"--phase1-share {config.phase1_share}: must be in (0, 1]")
    if config.phase1_epochs < 0 or config.phase2_epochs < 0 or config.phase1_epochs + config.phase2_epochs == 0:
        raise ValueError(f"--phase1-epochs {config.phase1_epochs} --phase2-epochs {config.phase2_epochs}: "
                         "no epoch to train; give at least one epoch to one phase (and none negative)")
    if config.decoder not in DECODERS:
        raise ValueError(f"--decoder {config.decoder!r}: must be one of {', '.join(DECODERS)}")
    decoder_widths(config)
    for flag, weight in (("--phase1-lovasz-weight", config.phase1_lovasz_weight),
                         ("--phase2-bce-weight", config.phase2_bce_weight),
                         ("--supervision-weight", config.supervision_weight), ("--empty-weight", config.empty_weight)):
        if not weight >= 0:
            raise ValueError(f"{flag} {weight}: a loss weight must be 0 or more")
    if not 0.0 <= config.ema < 1.0:
        raise ValueError(f"--ema {config.ema}: must be a momentum in [0, 1) (0: no weight average; try 0.99)")
    if config.encoder_weights not in (None, "imagenet") and not Path(config.encoder_weights).is_file():
        raise ValueError(f"--encoder-weights {config.encoder_weights}: no such file")


def _check_fit(config: Config) -> None:
    if config.fit not in FITS:
        raise ValueError(f"--fit {config.fit!r}: must be one of {', '.join(FITS)}")
    if config.fit == "pad" and not 101 < config.size <= 201:
        raise ValueError(f"--fit pad --size {config.size}: a 101x101 tile is reflected out to the size, by at most "
                         "100 pixels a side; use --size 128 or 192 (or --fit resize)")
    if config.fit == "pad" and config.warmup_size is not None:
        raise ValueError(f"--fit pad --warmup-size {config.warmup_size}: progressive resizing trains on resized "
                         "tiles; leave out --warmup-size (or use --fit resize)")
