"""salt_tf: salt bodies in seismic images, with a U-Net trained on the TGS competition's tiles.

One package a concern; a package imports only those below it (``tests/test_layout.py`` checks it):

- ``common``: small helpers every package may use (atomic writes, errors, the machine, figures);
- ``tiles``: the competition's tiles: reading, folds, the tf.data pipeline, the synthetic tile set,
  RLE, the competition metric (imports ``common``);
- ``model``: the U-Net, its encoders, custom layers, losses and the Keras metric (``tiles``, ``common``);
- ``run``: what a run folder holds: settings, report, checkpoints, the training tiles' grey levels
  (``model``, ``tiles``, ``common``);
- ``inference``: a run's fold ensemble on tiles, flip TTA, submission (``run`` and below);
- ``training``: the cross-validated training loop, callbacks, optimizers (``inference`` and below);
- ``seismic``: SEG-Y in and out, whole sections and volumes, segmentation, deliverables, the Dask
  path, synthetic sections (``inference`` and below; never ``training``).
"""
