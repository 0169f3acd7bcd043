"""Write files and folders so that a reader never sees half of one: build a temporary sibling,
then rename it into place."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Works for files and for directories (a SavedModel folder, say). On an exception the temporary
    is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(target, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def building(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder to fill beside ``path``; on success it is renamed to ``path``.

    ``path`` must not exist or be an empty folder (FileExistsError otherwise, before anything is
    built, and again if someone fills it meanwhile): a finished folder is never replaced. On an
    exception nothing is left behind, so ``path`` is either complete or as it was.
    """
    path = Path(path).absolute()
    check_free(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp gives a unique private (0700) folder; the result is built in an ordinary folder
    # inside it, so the renamed folder has the usual permissions.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        built = staging / "set"
        built.mkdir()
        yield built
        try:
            # rename() replaces an empty folder but fails on a non-empty one, which covers a
            # folder that someone filled while this was building.
            built.rename(path)
        except OSError as err:
            raise FileExistsError(f"{path}: could not move the finished folder into place "
                                  f"({err.strerror}); refusing to overwrite it") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_free(path: Path) -> None:
    """Raise FileExistsError unless ``path`` is missing or an empty folder."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder; choose another output path")
    if path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path}: folder exists and is not empty; refusing to overwrite it "
                              f"(remove it or choose another output path)")
