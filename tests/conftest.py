"""Shared fixtures. The real competition data is read from ../shared/tgs beside the project root;
the environment variable SALT_TF_TGS_DIR overrides that path. It is never copied into the project."""
from __future__ import annotations

from pathlib import Path

import pytest

from salt_tf.data import real_data_dir


@pytest.fixture(scope="session")
def tgs_dir() -> Path:
    path = real_data_dir()
    if not (path / "train.csv").is_file():
        pytest.fail(f"real TGS data not found at {path}; set SALT_TF_TGS_DIR to its folder")
    return path
