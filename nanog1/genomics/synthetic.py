"""Generated genomes and somatic VCFs for tests and benchmarks (no human reference is needed).

The genome is random sequence with planted homopolymers and short tandem repeats, so indels land in
repeats and microhomologies; the VCFs mix SNVs, doublets (as 2-bp records and as adjacent SNV
records), runs of three, indels in and out of repeats, and a few records every reader must skip
(non-PASS, multi-allelic, symbolic, REF mismatch, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

from nanog1.io import atomic_open

BASES = np.array(list("ACGT"))


@dataclass(frozen=True)
class GenomeSpec:
    """Contig count and length, and how densely repeats are planted."""

    n_contigs: int = 2
    length: int = 200_000
    repeat_every: int = 40
    seed: int = 0


def make_genome(path: Path, spec: GenomeSpec = GenomeSpec()) -> dict[str, str]:
    """Write an indexed FASTA (contigs '1', '2', ...) and return the sequences."""
    rng = np.random.default_rng(spec.seed)
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    seqs = {}
    for c in range(1, spec.n_contigs + 1):
        codes = rng.integers(0, 4, spec.length).astype(np.uint8)
        for start in range(100, spec.length - 100, spec.repeat_every):
            unit = rng.integers(0, 4, int(rng.integers(1, 6)))
            block = np.tile(unit, int(rng.integers(2, 9)))[:30]
            codes[start : start + len(block)] = block
        codes[spec.length // 2 : spec.length // 2 + 50] = 4
        # Real contigs start and end with N; SigProfilerMatrixGenerator relies on it (it strips
        # whitespace-valued bytes off the ends of its encoded indel reference).
        codes[:100] = 4
        codes[-100:] = 4
        seqs[str(c)] = letters[codes].tobytes().decode("ascii")
    with atomic_open(path) as f:
        for name, seq in seqs.items():
            f.write(f">{name}\n")
            f.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    pysam.faidx(str(path))
    return seqs


def _other(rng: np.random.Generator, base: str) -> str:
    return str(rng.choice([b for b in "ACGT" if b != base]))


def _indel(rng: np.random.Generator, seq: str, p: int) -> tuple[str, str]:
    """An anchored deletion or insertion at 1-based p: repeat units, random, or microhomology-prone."""
    size = int(rng.choice([1, 1, 1, 2, 3, 4, 5, 7]))
    if rng.random() < 0.5:
        return seq[p - 1 : p + size], seq[p - 1]
    if rng.random() < 0.5:
        ins = seq[p : p + size]
    else:
        ins = "".join(rng.choice(BASES, size))
    return seq[p - 1], seq[p - 1] + ins


def sample_records(rng: np.random.Generator, seqs: dict[str, str], n: int) -> list[tuple]:
    """(chrom, pos, ref, alt, filter) records of one sample, sorted by position."""
    out = []
    names = list(seqs)
    for _ in range(n):
        chrom = names[int(rng.integers(len(names)))]
        seq = seqs[chrom]
        p = int(rng.integers(150, len(seq) - 150))
        kind = rng.random()
        if kind < 0.7:
            out.append((chrom, p, seq[p - 1], _other(rng, seq[p - 1]), "PASS"))
        elif kind < 0.76:
            ref = seq[p - 1 : p + 1]
            out.append((chrom, p, ref, _other(rng, ref[0]) + _other(rng, ref[1]), "PASS"))
        elif kind < 0.8:
            for k in range(2 if rng.random() < 0.7 else 3):
                out.append((chrom, p + k, seq[p + k - 1], _other(rng, seq[p + k - 1]), "PASS"))
        elif kind < 0.95:
            ref, alt = _indel(rng, seq, p)
            out.append((chrom, p, ref, alt, "PASS"))
        else:
            out.append(_odd_record(rng, seq, chrom, p))
    return sorted(out, key=lambda r: (names.index(r[0]), r[1]))


def _odd_record(rng: np.random.Generator, seq: str, chrom: str, p: int) -> tuple:
    """A record a careful reader skips or treats specially."""
    base = seq[p - 1]
    choice = int(rng.integers(5))
    if choice == 0:
        return (chrom, p, base, _other(rng, base), "LowQual")
    if choice == 1:
        alts = [b for b in "ACGT" if b != base][:2]
        return (chrom, p, base, ",".join(alts), "PASS")
    if choice == 2:
        return (chrom, p, base, "<DEL>", "PASS")
    if choice == 3:
        wrong = _other(rng, base) if base != "N" else "A"
        return (chrom, p, wrong, _other(rng, wrong), "PASS")
    return (chrom, p, base, "T" if base != "T" else "G", "PASS")


def write_vcf(
    path: Path, records: list[tuple], seqs: dict[str, str], chr_prefix: bool = False, duplicate_every: int = 0
) -> None:
    """Write a sites-only VCF 4.2 (one file = one sample, as SigProfiler expects)."""
    prefix = "chr" if chr_prefix else ""
    head = [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FILTER=<ID=LowQual,Description="Low quality">',
    ]
    head += [f"##contig=<ID={prefix}{c},length={len(s)}>" for c, s in seqs.items()]
    head.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    with atomic_open(path) as f:
        f.write("\n".join(head) + "\n")
        for i, (chrom, pos, ref, alt, flt) in enumerate(records):
            line = f"{prefix}{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t{flt}\t.\n"
            f.write(line)
            if duplicate_every and i % duplicate_every == duplicate_every - 1:
                f.write(line)


def make_cohort(
    vcf_dir: Path, seqs: dict[str, str], n_samples: int, per_sample: int, seed: int = 1
) -> list[Path]:
    """Write one VCF per sample (`S<k>.vcf`); returns the paths."""
    rng = np.random.default_rng(seed)
    vcf_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_samples):
        path = vcf_dir / f"S{k:03d}.vcf"
        write_vcf(
            path, sample_records(rng, seqs, per_sample), seqs, chr_prefix=k % 2 == 1, duplicate_every=97
        )
        paths.append(path)
    return paths
