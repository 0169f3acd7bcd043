"""The network: the U-Net builder, its encoders, custom layers (scSE and the fast kernels), losses and the Keras metric. Imports ``tiles`` and ``common``; knows nothing of a run's settings."""
