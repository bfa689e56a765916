"""Reference genome access: contig-name normalisation and whole-contig sequences as byte arrays.

Each contig is fetched once (pysam.FastaFile, plain or bgzipped) and kept as a uint8 array of its
ASCII letters; callers turn only the bases they look at into codes (A=0, C=1, G=2, T=3, other=4) with
`CODE_TABLE`, so classification is array indexing, with no fetch per variant and no pass over the
whole contig beyond the fetch. Only the most recently used contig is cached (memory: one chromosome).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pysam

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


def contig_key(name: str) -> str:
    """Canonical spelling of a contig name: 'chr1'/'1' -> '1', 'chrM'/'MT'/'M' -> 'MT'."""
    key = name[3:] if name.lower().startswith("chr") else name
    return "MT" if key.upper() in ("M", "MT") else key


class Reference:
    """An indexed FASTA with normalised contig names and a one-contig sequence cache."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"reference FASTA not found: {self.path}")
        self._fasta = pysam.FastaFile(str(self.path))
        self._names = {contig_key(n): n for n in self._fasta.references}
        self.lengths = dict(zip(self._fasta.references, self._fasta.lengths, strict=True))
        self._cached: tuple[str, np.ndarray] | None = None

    @property
    def contigs(self) -> list[str]:
        """Contig names as the FASTA spells them, in FASTA order."""
        return list(self._fasta.references)

    def resolve(self, name: str) -> str | None:
        """The FASTA's spelling of a contig given any common spelling, or None if unknown."""
        if name in self.lengths:
            return name
        return self._names.get(contig_key(name))

    def raw(self, contig: str) -> np.ndarray:
        """Whole-contig ASCII letters (uint8, case as in the file) of a contig named as the FASTA names it."""
        if self._cached is None or self._cached[0] != contig:
            self._cached = (contig, as_bytes(self._fasta.fetch(contig)))
        return self._cached[1]

    def codes(self, contig: str) -> np.ndarray:
        """Whole-contig base codes (A0 C1 G2 T3 N4) of a contig."""
        return CODE_TABLE[self.raw(contig)]

    def fai_sha256(self) -> str:
        """SHA-256 of the FASTA index, a cheap fingerprint of the reference's contigs and lengths."""
        fai = Path(str(self.path) + ".fai")
        return hashlib.sha256(fai.read_bytes()).hexdigest() if fai.exists() else ""

    def close(self) -> None:
        """Release the FASTA handle."""
        self._fasta.close()
