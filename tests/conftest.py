"""Shared fixtures. The real competition data is read from ../shared/tgs beside the project root;
the environment variable SALT_TF_TGS_DIR overrides that path. It is never copied into the project."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tgs_dir() -> Path:
    path = Path(os.environ.get("SALT_TF_TGS_DIR", ROOT.parent / "shared" / "tgs"))
    if not (path / "train.csv").is_file():
        pytest.fail(f"real TGS data not found at {path}; set SALT_TF_TGS_DIR to its folder")
    return path
