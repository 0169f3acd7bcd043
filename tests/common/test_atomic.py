"""Tests for salt_tf/common/atomic.py: a folder is built beside its target and appears whole or not at all."""
from __future__ import annotations

import pytest

from salt_tf.common.atomic import building, write_text


def test_building_renames_the_finished_folder_into_place(tmp_path):
    target = tmp_path / "out"
    with building(target) as built:
        assert built.parent.parent == tmp_path and not target.exists()
        (built / "a.txt").write_text("a")
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_building_fills_an_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    with building(tmp_path / "out") as built:
        (built / "a.txt").write_text("a")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]


def test_building_leaves_nothing_when_the_build_fails(tmp_path):
    with pytest.raises(RuntimeError, match="midway"):
        with building(tmp_path / "out") as built:
            (built / "half.txt").write_text("half")
            raise RuntimeError("midway")
    assert not any(tmp_path.iterdir())


def test_building_refuses_a_non_empty_folder_or_a_file(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        with building(tmp_path / "out"):
            pytest.fail("nothing is built for a taken target")
    write_text(tmp_path / "afile", "x")
    with pytest.raises(FileExistsError, match="not a folder"):
        with building(tmp_path / "afile"):
            pass


def test_building_does_not_overwrite_a_folder_filled_meanwhile(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        with building(target) as built:
            (built / "ours.txt").write_text("ours")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
