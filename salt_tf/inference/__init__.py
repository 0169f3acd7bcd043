"""A run's fold ensemble on tiles: loading, flip TTA, post-processing, the submission. Imports ``run`` and the packages below it."""
