"""nanog1.io: atomic writes with a plain open()'s mode, fsynced; weights-only loads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from nanog1 import io
from nanog1.errors import UserError


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda value: os.umask(value)
    os.umask(old)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_open_would_give(tmp_path: Path, umask, mask: int, expected: int):
    umask(mask)
    assert io.current_umask() == mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    paths = [io.atomic_write_text(tmp_path / "a.txt", "x"), io.atomic_write_bytes(tmp_path / "b.bin", b"x"),
             io.atomic_write_with(tmp_path / "c.pt", lambda p: torch.save({"w": torch.ones(2)}, p))]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == expected == stat.S_IMODE(plain.stat().st_mode), path


def test_a_failed_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    target = io.atomic_write_text(tmp_path / "out.tsv", "old\n")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.atomic_write_with(target, broken)
    with pytest.raises(KeyError), io.atomic_open(target) as handle:
        handle.write("new\n")
        raise KeyError("mid-write")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]


def test_file_and_folder_are_fsynced_before_and_after_the_rename(tmp_path: Path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    io.atomic_write_text(tmp_path / "sub" / "x.json", "{}")
    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path / "sub" and synced[0] != str(tmp_path / "sub" / "x.json")
    assert synced[1] == str(tmp_path / "sub")  # the folder, after the rename


def test_an_explicit_mode_is_kept(tmp_path: Path, umask):
    umask(0o077)
    path = io.atomic_write_text(tmp_path / "shared.npy", "x", mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_load_weights_reads_tensors_and_refuses_pickled_objects(tmp_path: Path):
    good = io.atomic_write_with(tmp_path / "good.pt", lambda p: torch.save({"w": torch.arange(3)}, p))
    assert io.load_weights(good)["w"].tolist() == [0, 1, 2]
    bad = tmp_path / "bad.pt"
    torch.save({"model": _Payload()}, bad)
    with pytest.raises(UserError, match=r"bad\.pt: holds pickled Python objects"):
        io.load_weights(bad)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:100])
    with pytest.raises(UserError, match=r"cut\.pt: not a torch checkpoint"):
        io.load_weights(tmp_path / "cut.pt")
    with pytest.raises(UserError, match=r"gone\.pt: no such model"):
        io.load_weights(tmp_path / "gone.pt")


def test_a_folder_given_as_the_output_file_is_named_in_the_error(tmp_path: Path):
    """`-o results/` (a folder) is an error naming that folder, not the temporary file beside it, and
    leaves nothing behind (was '.results.x1y2.tmp: Is a directory')."""
    (tmp_path / "results").mkdir()
    with pytest.raises(UserError, match=r"results: is a folder; give the path of the file to write"):
        io.atomic_write_text(tmp_path / "results", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert not list((tmp_path / "results").iterdir())
