"""A cached binary copy of a FASTA's contigs: one .npy of ASCII letters per contig, memory-mapped.

Built on first use from any FASTA htslib reads (plain or bgzipped), one contig at a time and only for
the contigs asked for, then reused by every later process: opening a contig is an `np.load(mmap_mode=
'r')` (tens of microseconds, whatever the genome's size), and only the pages around the variants are
read from disk. Like SigProfiler's installed genome, but automatic and from any FASTA.

Where: beside the FASTA (`<fasta>.nanog1/`) when that folder is writable, else in the user cache
(`$XDG_CACHE_HOME/nanog1/references/`, default `~/.cache/nanog1/references/`). The environment
variable `NANOG1_REFERENCE_CACHE` names another folder, or `off` to read contigs from the FASTA into
memory on every use (no disk). Each cache lives in a subfolder keyed by the FASTA's size, mtime and
contig names and lengths (from its checked index), so a changed FASTA never reuses a stale copy.
Files are written to a temporary name and renamed into place (group-readable), so two processes
building the same contig at once both end with a complete, identical file.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from pathlib import Path

import numpy as np

from nanog1.genomics.fasta_index import FaiEntry, can_write
from nanog1.io import atomic_open, atomic_write_text, current_umask

ENV = "NANOG1_REFERENCE_CACHE"
FORMAT = 1


def user_cache_root() -> Path:
    """`$XDG_CACHE_HOME/nanog1/references`, or `~/.cache/nanog1/references`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nanog1" / "references"


def cache_key(fasta: Path, entries: list[FaiEntry]) -> str:
    """Fingerprint of the FASTA as it is now: size, mtime and every contig's name and length."""
    st = fasta.stat()
    parts = [FORMAT, st.st_size, st.st_mtime_ns, [(e.name, e.length) for e in entries]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def cache_folder(fasta: Path, entries: list[FaiEntry]) -> Path | None:
    """The folder holding this FASTA's cache (not created), or None when caching is off."""
    setting = os.environ.get(ENV, "")
    if setting.lower() == "off":
        return None
    key = cache_key(fasta, entries)
    if setting:
        root = Path(setting) / _path_tag(fasta)
    elif can_write(fasta.parent):
        root = fasta.parent / f"{fasta.name}.nanog1"
    else:
        root = user_cache_root() / _path_tag(fasta)
    return root / key


def _path_tag(fasta: Path) -> str:
    """A per-FASTA folder name for shared cache roots: the file name and a hash of its full path."""
    digest = hashlib.sha256(str(fasta.resolve()).encode()).hexdigest()[:12]
    return f"{fasta.name}-{digest}"


def _shared_mode() -> int:
    """A cache file's mode: a new file's, and group-readable even under a strict umask (a shared cache)."""
    return (0o664 & ~current_umask()) | 0o040


def _atomic_save(path: Path, array: np.ndarray) -> None:
    """np.save atomically (nanog1.io), group-readable."""
    with atomic_open(path, "wb", _shared_mode()) as f:
        np.save(f, array, allow_pickle=False)


class ContigCache:
    """Per-contig .npy files of one FASTA version in `folder`; contigs are built by `fetch` on demand."""

    def __init__(self, folder: Path, fasta: Path, entries: list[FaiEntry]) -> None:
        self.folder = folder
        self.index = {e.name: i for i, e in enumerate(entries)}
        self.lengths = {e.name: e.length for e in entries}
        self._manifest = {
            "format": FORMAT,
            "fasta": str(fasta.resolve()),
            "size": fasta.stat().st_size,
            "mtime_ns": fasta.stat().st_mtime_ns,
            "contigs": [[e.name, e.length] for e in entries],
        }
        self._offsets: dict[str, int] = {}

    def _file(self, contig: str) -> Path:
        return self.folder / f"{self.index[contig]}.npy"

    def load(self, contig: str, fetch) -> np.ndarray:
        """The contig's letters, memory-mapped; built from `fetch(contig) -> bytes` if not cached yet."""
        path = self._file(contig)
        seq = self._map(path, contig)
        if seq is not None:
            return seq
        letters = np.frombuffer(fetch(contig), dtype=np.uint8)
        if len(letters) != self.lengths[contig]:
            want = self.lengths[contig]
            raise ValueError(f"contig {contig}: read {len(letters)} bases, the index says {want}")
        self._write(path, letters)
        seq = self._map(path, contig)
        if seq is None:
            raise OSError(f"{path}: written but cannot be read back")
        return seq

    def located(self, contig: str, fetch) -> tuple[Path, int]:
        """The contig's .npy and the byte offset of its letters in it (the file is built if missing)."""
        path = self._file(contig)
        if self._offsets.get(contig) is None or not path.exists():
            self.load(contig, fetch)
        return path, self._offsets.get(contig, 0)

    def _map(self, path: Path, contig: str) -> np.ndarray | None:
        """The contig's letters mapped read-only from its .npy, or None if it is missing or not the
        expected array. The .npy header is parsed once per process (np.load's parsing would cost
        more than the rest of a small file's work)."""
        length = self.lengths[contig]
        if length == 0:
            return np.zeros(0, dtype=np.uint8)
        offset = self._offsets.get(contig)
        if offset is None:
            offset = _data_offset(path, length)
            if offset is None:
                return None
            self._offsets[contig] = offset
        try:
            with open(path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            mapped = None
        if mapped is None or len(mapped) != offset + length:
            self._offsets.pop(contig, None)
            return None
        return np.frombuffer(mapped, dtype=np.uint8, count=length, offset=offset)

    def _write(self, path: Path, letters: np.ndarray) -> None:
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            self._drop_other_versions()
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, self.folder.stat().st_mode | 0o050)
            atomic_write_text(manifest, json.dumps(self._manifest, indent=1), _shared_mode())
        _atomic_save(path, letters)

    def _drop_other_versions(self) -> None:
        """Delete caches of earlier versions of this FASTA (they can never match again)."""
        if not self.folder.parent.is_dir():
            return
        for other in self.folder.parent.iterdir():
            if other != self.folder and (other / "manifest.json").exists():
                shutil.rmtree(other, ignore_errors=True)


def _data_offset(path: Path, length: int) -> int | None:
    """Byte offset of the data in a .npy holding a 1-D uint8 array of `length`, else None."""
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (OSError, ValueError):
        return None
    return offset if shape == (length,) and dtype == np.uint8 else None
