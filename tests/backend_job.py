"""The project on another Keras backend, with TensorFlow made unimportable: run by tests/test_backends.py
as ``KERAS_BACKEND=jax python tests/backend_job.py WORK DATA``, it writes ``WORK/job.json``.

In one process (the backend's start-up and compilation paid once): import the model, losses and data
path; load the model that TensorFlow saved in ``WORK/tf_model.keras`` and predict ``WORK/tf_io.npz``'s
input; then the README's commands: ``train.py`` (one tiny fold), ``predict.py`` and ``segment.py``.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from salt_tf.common import machine  # noqa: E402  (before Keras, which must not find TensorFlow)

machine.hide_tensorflow()


def main(work: Path, data: Path) -> dict:
    record = {"backend": os.environ.get("KERAS_BACKEND"), "steps": {}}
    started = time.perf_counter()

    def step(name, fn):
        t = time.perf_counter()
        try:
            record["steps"][name] = {"result": fn()}
        except BaseException:  # noqa: BLE001  (a failed step is reported, the test says which)
            record["steps"][name] = {"error": traceback.format_exc()[-4000:]}
        record["steps"][name]["seconds"] = round(time.perf_counter() - t, 1)

    def imports():
        import importlib.util

        import keras

        from salt_tf.model import losses  # noqa: F401
        from salt_tf.model.unet import build_unet
        from salt_tf.run.config import Config
        from salt_tf.tiles import pipeline

        try:
            import tensorflow  # noqa: F401
            blocked = False
        except ModuleNotFoundError:
            blocked = importlib.util.find_spec("tensorflow") is None  # as not installed, to PyTorch's probes too
        model = build_unet("resnet18", 64, scse=True)
        sequence = pipeline.train_data(*_tiles(), Config(size=64, batch_size=4), seed=0)
        return {"keras_backend": keras.backend.backend(), "tensorflow_blocked": blocked,
                "model_outputs": list(model.output_shape), "sequence": type(sequence).__name__,
                "batch_shape": list(sequence[0][0].shape)}

    def tf_model():
        import keras
        import numpy as np

        import salt_tf.model.layers  # noqa: F401  (the custom layers, registered)

        model = keras.saving.load_model(work / "tf_model.keras", compile=False)
        x = np.load(work / "tf_io.npz")["x"]
        np.save(work / "tf_model_here.npy", np.asarray(model.predict_on_batch(x)))
        return True

    def command(script, *args):
        from scripts import load_script

        code = load_script(script, script.replace(".py", "_cli")).main([str(a) for a in args])
        if code:
            raise RuntimeError(f"{script} exited with {code}")
        return code

    def segment():
        from salt_tf.seismic import synthetic

        sections = synthetic.write_sections(work / "sections", seed=5, section=(230, 120), volume=(14, 70, 90))
        return command("segment.py", "--run", work / "run", "--input", sections / "volume.npy", "--out", work / "segmented",
                       "--lines", "1:2", "--stride", "40", "--figures", "1")

    from scripts import TINY

    step("imports", imports)
    step("tf_model", tf_model)
    step("train", lambda: command("train.py", "--data", data, "--out", work / "run", *TINY, "--fold", 0))
    step("predict", lambda: command("predict.py", "--run", work / "run", "--images", data / "test" / "images",
                                    "--out", work / "submission.csv", "--probs", work / "probs.npz"))
    step("segment", segment)
    record["tensorflow_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "segmentation_models")
                                          and sys.modules[m] is not None)
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def _tiles():
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 101, 101), dtype=np.uint8)
    return images, (images > 127).astype(np.uint8)


if __name__ == "__main__":
    work, data = Path(sys.argv[1]), Path(sys.argv[2])
    result = main(work, data)
    (work / "job.json").write_text(json.dumps(result, indent=1))
