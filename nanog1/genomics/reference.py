"""Reference genome access: contig-name normalisation and whole-contig sequences as byte arrays.

A contig is a uint8 array of its ASCII letters (case as in the file); callers turn only the bases
they look at into codes (A=0, C=1, G=2, T=3, other=4) with `CODE_TABLE`, so classification is array
indexing, with no fetch per variant. Classification reads only the few bases around each variant,
with `Reference.spans` (one small `pread` per variant from the cached contig: on a human-size genome
a file's variants are sparse, and touching each through a memory map costs a page fault apiece).
The index is checked against the FASTA before anything is read
(`fasta_index.checked_index`: a stale .fai is rebuilt or refused). Contigs come from the memory-mapped
cache of `reference_cache` (built on first use), so opening one costs the same on any genome size
and only the pages around the variants are read; only the most recently used contig stays mapped
(memory: the touched pages of one chromosome). `open_reference` shares one Reference per FASTA in
a process, so many input files cost one index check.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pysam

from nanog1.genomics.fasta_index import checked_index, read_fai
from nanog1.genomics.reference_cache import ContigCache, cache_folder

#: Base code of N (or any non-ACGT letter) in the code arrays.
N_CODE = 4

CODE_TABLE = np.full(256, N_CODE, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    CODE_TABLE[ord(_b)] = _i
    CODE_TABLE[ord(_b.lower())] = _i


def encode(seq: str | bytes) -> np.ndarray:
    """Base codes (uint8, A0 C1 G2 T3 N4) of a DNA string, case-insensitive."""
    raw = seq.encode("ascii") if isinstance(seq, str) else seq
    return CODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]


def as_bytes(seq: str) -> np.ndarray:
    """A DNA string as the uint8 ASCII array `Reference.raw` returns."""
    return np.frombuffer(seq.encode("ascii"), dtype=np.uint8)


def text_spans(text: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`Reference.spans` on a contig's letters in memory: text[start : start + length] for each span, end
    to end, 0 where a span runs off the contig."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    at = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    inside = (at >= 0) & (at < len(text))
    if not len(text):
        return np.zeros(len(at), dtype=np.uint8)
    return np.where(inside, text[np.clip(at, 0, len(text) - 1)], 0).astype(np.uint8)


def contig_key(name: str) -> str:
    """Canonical spelling of a contig name: 'chr1'/'1' -> '1', 'chrM'/'MT'/'M' -> 'MT'."""
    key = name[3:] if name.lower().startswith("chr") else name
    return "MT" if key.upper() in ("M", "MT") else key


def contig_keys(names: list[str]) -> dict[str, str]:
    """Each contig's canonical key (`contig_key`) -> its spelling in `names` (a FASTA's): what
    `resolve_contig` matches other spellings against."""
    return {contig_key(n): n for n in names}


def resolve_contig(name: str, names: dict[str, str] | set[str], keys: dict[str, str]) -> str | None:
    """The FASTA's spelling of contig `name` given any common spelling ('chr1' for '1', 'M' for 'MT'),
    or None if it has no such contig: how ingest matches a call's contig to the reference (`names`: the
    FASTA's contig names, `keys`: `contig_keys` of them), also used by `--check-only`."""
    if name in names:
        return name
    return keys.get(contig_key(name))


class Reference:
    """A FASTA with a checked index, normalised contig names and memory-mapped cached contigs."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"reference FASTA not found: {self.path}")
        self.fai = checked_index(self.path)
        entries = read_fai(self.fai)
        self._order = [e.name for e in entries]
        self._names = contig_keys(self._order)
        self.lengths = {e.name: e.length for e in entries}
        folder = cache_folder(self.path, entries)
        self._cache = ContigCache(folder, self.path, entries) if folder is not None else None
        self._fasta: pysam.FastaFile | None = None
        self._cached: tuple[str, np.ndarray] | None = None
        self._fds: dict[str, tuple[int, int]] = {}

    @property
    def contigs(self) -> list[str]:
        """Contig names as the FASTA spells them, in FASTA order."""
        return list(self._order)

    def resolve(self, name: str) -> str | None:
        """The FASTA's spelling of a contig given any common spelling, or None if unknown."""
        return resolve_contig(name, self.lengths, self._names)

    def _fetch(self, contig: str) -> bytes:
        """A whole contig read from the FASTA itself (htslib, plain or bgzipped)."""
        if self._fasta is None:
            self._fasta = pysam.FastaFile(str(self.path))
        return self._fasta.fetch(contig).encode("ascii")

    def raw(self, contig: str) -> np.ndarray:
        """Whole-contig ASCII letters (uint8, case as in the file) of a contig named as the FASTA names it."""
        if self._cached is None or self._cached[0] != contig:
            self._cached = None  # unmap the previous contig before mapping the next
            if self._cache is None:
                seq = as_bytes(self._fetch(contig).decode("ascii"))
            else:
                seq = self._cache.load(contig, self._fetch)
            self._cached = (contig, seq)
        return self._cached[1]

    def spans(self, contig: str, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """contig[start : start + length] for each span, end to end (uint8 ASCII, case as in the file;
        0 where a span runs off the contig).

        Read from the cached .npy with one `os.pread` per span rather than through a memory map: the
        variants of one file are sparse on a human genome, so each would be its own page fault, and a
        fault costs several times a small read on a virtual machine (≈ 5 µs against ≈ 1.5 µs).
        """
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        size = self.lengths[contig]
        lo, hi = np.clip(starts, 0, size), np.clip(starts + lengths, 0, size)
        hi = np.maximum(hi, lo)
        if self._cache is None or size == 0:
            return text_spans(self.raw(contig), starts, lengths)
        fd, offset = self._descriptor(contig)
        data = [os.pread(fd, b - a, offset + a) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        got = np.frombuffer(b"".join(data), dtype=np.uint8)
        if len(got) == int(lengths.sum()):
            return got
        out = np.zeros(int(lengths.sum()), dtype=np.uint8)
        inside = hi - lo
        first = np.cumsum(lengths) - lengths + (lo - starts)
        out[np.repeat(first - (np.cumsum(inside) - inside), inside) + np.arange(len(got))] = got
        return out

    def _descriptor(self, contig: str) -> tuple[int, int]:
        """An open file descriptor on the contig's cached .npy, and where its letters start."""
        held = self._fds.get(contig)
        if held is None:
            path, offset = self._cache.located(contig, self._fetch)
            held = self._fds[contig] = (os.open(path, os.O_RDONLY), offset)
        return held

    def codes(self, contig: str) -> np.ndarray:
        """Whole-contig base codes (A0 C1 G2 T3 N4) of a contig."""
        return CODE_TABLE[self.raw(contig)]

    def fai_sha256(self) -> str:
        """SHA-256 of the FASTA index, a cheap fingerprint of the reference's contigs and lengths."""
        return hashlib.sha256(self.fai.read_bytes()).hexdigest()

    def close(self) -> None:
        """Release the FASTA handle and the mapped contig."""
        self._cached = None
        for fd, _ in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._fasta is not None:
            self._fasta.close()
            self._fasta = None


_OPEN: dict[str, tuple[tuple, Reference]] = {}


def _version(path: Path) -> tuple:
    """Size and mtime of a FASTA and of its index (None where absent)."""
    stats = [p.stat() if p.exists() else None for p in (path, Path(str(path) + ".fai"))]
    return tuple((s.st_size, s.st_mtime_ns) if s else None for s in stats)


def open_reference(path: Path | str) -> Reference:
    """The process's shared Reference for a FASTA, opened (and its index checked) once per version.

    Keyed by the FASTA's and its index's size and mtime, so a file changed on disk is opened afresh.
    Callers must not close it.
    """
    path = Path(path)
    name = os.path.abspath(path)
    held = _OPEN.get(name)
    if held is not None and held[0] == _version(path):
        return held[1]
    ref = Reference(path)
    _OPEN[name] = (_version(path), ref)
    return ref
