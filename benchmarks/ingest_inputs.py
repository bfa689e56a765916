"""Inputs for the human-size ingestion benchmark: a GRCh38-sized random genome and single-sample VCFs.

The genome has GRCh38's 24 primary chromosome names and lengths (3.09 Gb), random bases with planted
homopolymers and short tandem repeats every 400 bp (so indels land in repeats and microhomologies),
and 10 kb of N at each end (SigProfilerMatrixGenerator expects contigs to start and end with N). It is
written once (plain FASTA, 60 bases a line, + .fai) and reused. VCFs are drawn vectorised: bases are
read through a memory map of the FASTA itself, so generating millions of records needs no genome in
memory. Record mix per file: ≈72 % SNVs, 6 % 2-bp doublet records, 4 % adjacent SNV pairs, 17 %
indels (half of them at planted repeats), 1 % non-PASS SNVs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pysam

GRCH38 = {
    "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259, "6": 170805979,
    "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422, "11": 135086622,
    "12": 133275309, "13": 114364328, "14": 107043718, "15": 101991189, "16": 90338345,
    "17": 83257441, "18": 80373285, "19": 58617616, "20": 64444167, "21": 46709983,
    "22": 50818468, "X": 156040895, "Y": 57227415,
}  # fmt: skip
LINE = 60
EDGE = 10_000
REPEAT_EVERY = 400
LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


def _contig_codes(rng: np.random.Generator, length: int) -> np.ndarray:
    """Random base codes (0-3, N=4) with a planted repeat block at every REPEAT_EVERY bases."""
    codes = rng.integers(0, 4, length, dtype=np.uint8)
    starts = np.arange(EDGE, length - EDGE, REPEAT_EVERY)
    unit = rng.integers(1, 6, len(starts))
    copies = rng.integers(2, 9, len(starts))
    for u in range(1, 6):
        for k in range(2, 9):
            at = starts[(unit == u) & (copies == k)]
            block = min(u * k, 30)
            units = rng.integers(0, 4, (len(at), u), dtype=np.uint8)
            codes[at[:, None] + np.arange(block)] = np.tile(units, (1, k))[:, :block]
    codes[:EDGE] = 4
    codes[-EDGE:] = 4
    return codes


def make_big_genome(path: Path, scale: float = 1.0, seed: int = 0) -> Path:
    """Write the GRCh38-sized FASTA (+ .fai) at `path` unless a complete one is already there."""
    path = Path(path)
    done = path.with_suffix(".done")
    if done.exists() and path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        for name, full in GRCH38.items():
            length = int(full * scale)
            letters = LETTERS[_contig_codes(rng, length)]
            n_full = length // LINE
            body = np.empty((n_full, LINE + 1), dtype=np.uint8)
            body[:, :LINE] = letters[: n_full * LINE].reshape(n_full, LINE)
            body[:, LINE] = ord("\n")
            out.write(f">{name}\n".encode())
            out.write(body.tobytes())
            tail = letters[n_full * LINE :].tobytes()
            out.write(tail + b"\n" if tail else b"")
            print(f"genome: contig {name} ({length:,} bp) written", flush=True)
    os.replace(tmp, path)
    pysam.faidx(str(path))
    done.write_text("ok\n")
    return path


class FastaMap:
    """Bases of a plain, fixed-line-width FASTA read through a memory map and its .fai."""

    def __init__(self, path: Path) -> None:
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        self.index = {}
        for line in Path(str(path) + ".fai").read_text().splitlines():
            name, length, offset, bases, width = line.split("\t")[:5]
            self.index[name] = (int(length), int(offset), int(bases), int(width))

    def bases(self, contig: str, pos: np.ndarray) -> np.ndarray:
        """Upper-case ASCII letters at 1-based positions of a contig."""
        _, offset, bases, width = self.index[contig]
        p = np.asarray(pos, dtype=np.int64) - 1
        return self.data[offset + p // bases * width + p % bases] & 0xDF


def _others(rng: np.random.Generator, ref: np.ndarray) -> np.ndarray:
    """A random base different from each ASCII base in `ref`."""
    acgt = np.frombuffer(b"ACGT", dtype=np.uint8)
    code = np.searchsorted(acgt, ref)
    return acgt[(code + rng.integers(1, 4, len(ref))) % 4]


def _text(fa: FastaMap, contig: str, p: int, size: int) -> str:
    return fa.bases(contig, np.arange(p, p + size)).tobytes().decode()


def _contig_records(rng: np.random.Generator, fa: FastaMap, contig: str, n: int) -> list[tuple]:
    """(pos, ref, alt, filter) records of one sample on one contig."""
    length = fa.index[contig][0]
    kind = rng.random(n)
    pos = rng.integers(EDGE + 50, length - EDGE - 50, n)
    at_repeat = (kind >= 0.82) & (kind < 0.905)
    pos[at_repeat] = (pos[at_repeat] - EDGE) // REPEAT_EVERY * REPEAT_EVERY + EDGE - 1
    ref = fa.bases(contig, pos)
    nxt = fa.bases(contig, pos + 1)
    alt, alt2 = _others(rng, ref), _others(rng, nxt)
    out: list[tuple] = []
    for i in np.flatnonzero(kind < 0.72):
        out.append((pos[i], chr(ref[i]), chr(alt[i]), "PASS"))
    for i in np.flatnonzero((kind >= 0.72) & (kind < 0.78)):
        out.append((pos[i], chr(ref[i]) + chr(nxt[i]), chr(alt[i]) + chr(alt2[i]), "PASS"))
    for i in np.flatnonzero((kind >= 0.78) & (kind < 0.82)):
        out += [(pos[i], chr(ref[i]), chr(alt[i]), "PASS"), (pos[i] + 1, chr(nxt[i]), chr(alt2[i]), "PASS")]
    sizes = rng.choice([1, 1, 1, 2, 3, 4, 5, 7], n)
    for i in np.flatnonzero((kind >= 0.82) & (kind < 0.99)):
        p, s, anchor = int(pos[i]), int(sizes[i]), chr(ref[i])
        if rng.random() < 0.5:
            out.append((p, _text(fa, contig, p, s + 1), anchor, "PASS"))
        elif rng.random() < 0.5:
            out.append((p, anchor, anchor + _text(fa, contig, p + 1, s), "PASS"))
        else:
            out.append((p, anchor, anchor + "".join(rng.choice(list("ACGT"), s)), "PASS"))
    for i in np.flatnonzero(kind >= 0.99):
        out.append((pos[i], chr(ref[i]), chr(alt[i]), "LowQual"))
    return sorted(out)


def write_vcfs(fasta: Path, outdir: Path, sizes: list[int], seed: int = 1, prefix: str = "S") -> int:
    """One sites-only VCF per entry of `sizes` (variants drawn per file); returns records written."""
    fa = FastaMap(fasta)
    rng = np.random.default_rng(seed)
    names = list(fa.index)
    lengths = np.array([fa.index[c][0] for c in names], dtype=np.float64)
    outdir.mkdir(parents=True, exist_ok=True)
    head = ["##fileformat=VCFv4.2", '##FILTER=<ID=LowQual,Description="Low quality">']
    head += [f"##contig=<ID={c},length={fa.index[c][0]}>" for c in names]
    head.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    total = 0
    for k, n in enumerate(sizes):
        per_contig = rng.multinomial(n, lengths / lengths.sum())
        lines = list(head)
        for contig, m in zip(names, per_contig, strict=True):
            for p, r, a, f in _contig_records(rng, fa, contig, int(m)):
                lines.append(f"{contig}\t{p}\t.\t{r}\t{a}\t.\t{f}\t.")
        total += len(lines) - len(head)
        (outdir / f"{prefix}{k:05d}.vcf").write_text("\n".join(lines) + "\n")
    return total


if __name__ == "__main__":
    import sys

    make_big_genome(Path(sys.argv[1]), scale=float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
