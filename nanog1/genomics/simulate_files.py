"""Write a simulated cohort as files: a synthetic reference FASTA (+ .fai), per-sample VCFs, one MAF
and a sample sheet, whose mutations give back exactly the drawn catalogues when ingested.

Every mutation gets its own slot of the genome (slots of 64 bp, at most half of them used, so loci
lie ≥ 20 bp apart); its context is written into the random background by nanog1.genomics.simulate_loci.
Doublets are two adjacent SNV records in VCFs and one DNP row in the MAF. Files are written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from nanog1.genomics.channels import CHANNEL_SETS, SIGNATURE_SETS
from nanog1.genomics.simulate import SimulatedCohort
from nanog1.genomics.simulate_loci import SLOT, locus
from nanog1.io import atomic_write_text

MAF_HEADER = (
    "Hugo_Symbol",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Variant_Type",
    "Reference_Allele",
    "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode",
    "FILTER",
)


@dataclass(frozen=True)
class FileOptions:
    """Genome shape (chromosomes, minimum total length), share of samples in the MAF, and seed."""

    n_chroms: int = 3
    min_length: int = 3_000_000
    maf_fraction: float = 0.25
    seed: int = 0


@dataclass
class SimulatedFiles:
    """Paths of what write_simulated_files wrote."""

    fasta: Path
    vcfs: list[Path]
    maf: Path | None
    sample_sheet: Path
    n_records: int




def _events(cohort: SimulatedCohort) -> list[tuple[int, str, str]]:
    """(sample index, channel set, label) for every drawn mutation, in catalogue order."""
    out: list[tuple[int, str, str]] = []
    for cs in SIGNATURE_SETS:
        labels = CHANNEL_SETS[cs]
        counts = cohort.channel_set(cs).to_numpy()
        for s, c in zip(*np.nonzero(counts), strict=True):
            out += [(int(s), cs, labels[c])] * int(counts[s, c])
    return out


def _genome(rng: np.random.Generator, n_events: int, opts: FileOptions) -> tuple[list[str], list[bytearray]]:
    """Random chromosomes long enough that `n_events` slots fill at most half of them."""
    total = max(opts.min_length, 2 * n_events * SLOT)
    per_chrom = -(-total // (opts.n_chroms * SLOT)) * SLOT
    names = [str(i + 1) for i in range(opts.n_chroms)]
    seqs = [
        bytearray(np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, per_chrom)].tobytes())
        for _ in names
    ]
    return names, seqs


def _place(cohort: SimulatedCohort, rng: np.random.Generator, opts: FileOptions):
    """Write every event's locus into the genome; return the genome and a table of records."""
    events = _events(cohort)
    names, seqs = _genome(rng, len(events), opts)
    per_chrom = len(seqs[0]) // SLOT
    slots = rng.choice(per_chrom * len(seqs), size=len(events), replace=False)
    rows = []
    for (sample, cs, label), slot in zip(events, slots, strict=True):
        chrom, start = divmod(int(slot), per_chrom)
        start = start * SLOT + 8
        bases, muts = locus(rng, cs, label)
        seqs[chrom][start : start + len(bases)] = bases.encode()
        for offset, ref, alt in muts:
            rows.append((sample, chrom, start + offset + 1, ref, alt, cs))
    table = pd.DataFrame(rows, columns=["sample", "chrom", "pos", "ref", "alt", "channel_set"])
    return names, seqs, table.sort_values(["sample", "chrom", "pos"], kind="stable")


def _write_fasta(path: Path, names: list[str], seqs: list[bytearray]) -> None:
    lines = []
    for name, seq in zip(names, seqs, strict=True):
        text = seq.decode()
        lines.append(f">{name}\n" + "\n".join(text[i : i + 60] for i in range(0, len(text), 60)))
    atomic_write_text(path, "\n".join(lines) + "\n")
    pysam.faidx(str(path))


def _vcf_text(sample: str, names: list[str], seqs: list[bytearray], rows: pd.DataFrame) -> str:
    head = ["##fileformat=VCFv4.2", "##source=nanog1.simulate", "##reference=genome.fa"]
    head += [f"##contig=<ID={n},length={len(s)}>" for n, s in zip(names, seqs, strict=True)]
    head += [
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{sample}",
    ]
    body = [
        f"{names[c]}\t{p}\t.\t{r}\t{a}\t.\tPASS\t.\tGT\t0/1"
        for c, p, r, a in zip(rows["chrom"], rows["pos"], rows["ref"], rows["alt"], strict=True)
    ]
    return "\n".join(head + body) + "\n"


def _maf_rows(sample: str, names: list[str], rows: pd.DataFrame) -> list[str]:
    """MAF lines (GDC conventions): DNP rows for doublets, '-' alleles for indels."""
    out, recs = [], list(rows.itertuples(index=False))
    i = 0
    while i < len(recs):
        r = recs[i]
        chrom = names[r.chrom]
        if r.channel_set == "DBS78":
            nxt = recs[i + 1]
            ref, alt, start, end, kind = r.ref + nxt.ref, r.alt + nxt.alt, r.pos, r.pos + 1, "DNP"
            i += 2
        elif r.channel_set == "ID83" and len(r.ref) > 1:
            ref, alt, start, end, kind = r.ref[1:], "-", r.pos + 1, r.pos + len(r.ref) - 1, "DEL"
            i += 1
        elif r.channel_set == "ID83":
            ref, alt, start, end, kind = "-", r.alt[1:], r.pos, r.pos + 1, "INS"
            i += 1
        else:
            ref, alt, start, end, kind = r.ref, r.alt, r.pos, r.pos, "SNP"
            i += 1
        out.append("\t".join(map(str, (".", chrom, start, end, kind, ref, ref, alt, sample, "PASS"))))
    return out


def write_simulated_files(
    cohort: SimulatedCohort, outdir: str | Path, options: FileOptions | None = None, **kwargs: object
) -> SimulatedFiles:
    """Write genome.fa(+.fai), vcf/<sample>.vcf, cohort.maf (a share of samples) and samples.csv."""
    opts = options or FileOptions(**kwargs)  # type: ignore[arg-type]
    outdir = Path(outdir)
    (outdir / "vcf").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(opts.seed)
    names, seqs, table = _place(cohort, rng, opts)
    fasta = outdir / "genome.fa"
    _write_fasta(fasta, names, seqs)
    samples = list(cohort.catalogues.index)
    n_maf = int(round(opts.maf_fraction * len(samples)))
    in_maf = set(rng.choice(len(samples), size=n_maf, replace=False).tolist()) if n_maf else set()
    vcfs, maf_lines = [], []
    for s, rows in table.groupby("sample", sort=True):
        if s in in_maf:
            maf_lines += _maf_rows(samples[s], names, rows)
            continue
        path = outdir / "vcf" / f"{samples[s]}.vcf"
        atomic_write_text(path, _vcf_text(samples[s], names, seqs, rows))
        vcfs.append(path)
    maf = None
    if in_maf:
        maf = outdir / "cohort.maf"
        atomic_write_text(maf, "\n".join(["\t".join(MAF_HEADER), *maf_lines]) + "\n")
    sheet = outdir / "samples.csv"
    atomic_write_text(sheet, cohort.sample_sheet.to_csv(index=False))
    return SimulatedFiles(fasta, vcfs, maf, sheet, len(table))
