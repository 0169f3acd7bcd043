"""Where a fold's weights start: the encoder's ImageNet weights, a local weights file, or another
run's exported model (``--init-from``); checked before any folder is made."""
from __future__ import annotations

from pathlib import Path

from salt_tf.run.config import PRESETS, Config, build_from_config


class WeightsError(ValueError):
    """The encoder's pretrained weights are not available."""


def start_model_path(config: Config, fold: int) -> Path:
    """The model a fine-tuned fold starts from: ``init_from``'s fold of the same number, else its fold 0."""
    for k in (fold, 0):
        path = Path(config.init_from) / f"fold{k}" / "model.keras"
        if path.is_file():
            return path
    raise ValueError(f"--init-from {config.init_from}: no fold{fold}/model.keras nor fold0/model.keras; "
                     f"expected a run folder with a finished fold")


def start_weights(config: Config, fold: int, model) -> list:
    """The start model's weights for ``model`` (built from ``config``), or a ValueError: how they differ."""
    import keras

    path = start_model_path(config, fold)
    theirs, mine = keras.models.load_model(path, compile=False).get_weights(), model.get_weights()
    shapes = [(a.shape, b.shape) for a, b in zip(theirs, mine) if a.shape != b.shape]
    if len(theirs) != len(mine) or shapes:
        where = (f"a weight of shape {shapes[0][0]} there, {shapes[0][1]} here" if shapes
                 else f"{len(theirs)} weight arrays there, {len(mine)} here")
        raise ValueError(f"--init-from {config.init_from}: its model ({path}) does not match these settings "
                         f"(encoder {config.encoder}, decoder {config.decoder}, scSE {config.scse}, hypercolumn "
                         f"{config.hypercolumn}): {where}")
    return theirs


def check_weights(config: Config) -> None:
    """Before any folder is made: the start model fits (``init_from``), or the ImageNet weights are here."""
    if config.init_from is not None:
        start_weights(config, config.fold or 0, build_from_config(config, config.size))
        return
    if config.encoder_weights != "imagenet":
        return
    from salt_tf.model.encoders import imagenet_weights_path

    try:
        imagenet_weights_path(config.encoder)
    except FileNotFoundError as err:
        raise WeightsError(
            f"{err} To train without it: --encoder-weights PATH (a local copy of that file), "
            f"--encoder-weights none (random initialisation), or a preset that trains from scratch "
            f"(--preset {' / --preset '.join(sorted(PRESETS))})") from None
