"""Cross-validated training: the loop of folds and phases, its callbacks and optimizers. Imports ``inference`` and the packages below it, never ``seismic``."""
