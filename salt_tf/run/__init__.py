"""What a run folder is, for everyone who reads one: the settings, the report, checkpoints and the run's lifecycle, the training tiles' grey levels. Imports ``model``, ``tiles`` and ``common``."""
