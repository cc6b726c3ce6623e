"""Atomic output keeps the old file on failure and leaves no temporary behind."""
import pytest

from star_plugin.atomic import atomic_path, write_bytes_atomic


def test_failure_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder crashed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_success_replaces_and_creates_directories(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]
