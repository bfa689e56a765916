"""A lab's cohort for `nanog1 predict` in batch mode (issue 31, QA at cohort scale), written from NanoG1's own
simulator: nothing is downloaded.

`nanog1 simulate` draws N tumours and writes their genome (genome.fa), one VCF per tumour and one MAF; this
script then turns them into what a lab hands over: a third of the VCFs as Mutect2 tumour/normal pairs
(##tumor_sample header, a normal column), half bgzipped (a fifth of those with a .tbi index), a tenth plain
gzip, the rest plain text; the MAF as GDC writes it ('#version gdc-1.0.0' lines, more columns); a sample
sheet (sample, file, tumor_sample, cancer_type; the MAF's tumours on rows with a blank file cell); a folder
of broken files (a .vcf.gz cut short, a binary file named .vcf, an empty file, a VCF with malformed lines, a
VCF whose last line is cut, a VCF with a quarter of its REF alleles wrong); and folders set100/ and
set1000/ of the first 100 and 1,000 VCFs (hard links), to time predict at both sizes.

Run (outside the repository: the data are ~350 MB for 1,400 tumours):
  .venv/bin/python benchmarks/batch_predict_cohort.py /scratch/qa --tumours 1400 --maf-share 0.2143
  /usr/bin/time -v .venv/bin/nanog1 predict /scratch/qa/set1000/* -r /scratch/qa/sim/genome.fa -o typed/
The measurements are in BENCHMARKS.md, "Batch predict at cohort scale (issue 31, QA)".
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
from pathlib import Path

import pysam

from nanog1.genomics.simulate import SimulationConfig, simulate_cohort
from nanog1.genomics.simulate_files import FileOptions, write_simulated_files

MUTECT2_META = [
    '##FILTER=<ID=PASS,Description="All filters passed">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">',
    '##INFO=<ID=TLOD,Number=A,Type=Float,Description="Log 10 likelihood ratio">',
    "##source=Mutect2",
]
PAIR_FIELDS = ["TLOD=12.3", "GT:AD:AF:DP", "0/0:30,0:0.0:30", "0/1:20,9:0.3:29"]
GDC_EXTRA = {"Entrez_Gene_Id": "0", "Center": "BI", "Strand": "+", "Variant_Classification": "Intron",
             "t_depth": "40", "t_ref_count": "28", "t_alt_count": "12"}


def as_mutect2_pair(lines: list[str], sample: str) -> list[str]:
    """A single-sample simulated VCF as Mutect2 writes a tumour/normal pair: its tumour `sample`-T, its
    normal `sample`-N (0/0), named by ##tumor_sample/##normal_sample."""
    meta = [line for line in lines if line.startswith("##")]
    columns = lines[len(meta)].split("\t")[:8] + ["FORMAT", f"{sample}-N", f"{sample}-T"]
    body = ["\t".join(r.split("\t")[:7] + PAIR_FIELDS) for r in lines[len(meta) + 1 :]]
    named = [f"##normal_sample={sample}-N", f"##tumor_sample={sample}-T"]
    return meta + MUTECT2_META + named + ["\t".join(columns)] + body


def write_vcf(folder: Path, sample: str, text: str, i: int) -> Path:
    """Write tumour i's VCF as the i-th of ten: 0-4 bgzipped (0 with a tabix index), 5 plain gzip,
    6-9 plain text."""
    kind = i % 10
    plain = folder / f"{sample}.vcf"
    if kind == 5:
        path = folder / f"{sample}.vcf.gz"
        path.write_bytes(gzip.compress(text.encode()))
        return path
    plain.write_text(text)
    if kind >= 6:
        return plain
    pysam.tabix_compress(str(plain), f"{plain}.gz")
    plain.unlink()
    if kind == 0:
        pysam.tabix_index(f"{plain}.gz", preset="vcf")
    return Path(f"{plain}.gz")


def gdc_maf(source: Path, target: Path) -> list[str]:
    """The simulated MAF as GDC writes one (its header lines, more columns); returns its tumours."""
    lines = source.read_text().splitlines()
    columns = lines[0].split("\t")
    extra = [*GDC_EXTRA, "Matched_Norm_Sample_Barcode"]
    rows, tumours = [], set()
    for line in lines[1:]:
        fields = dict(zip(columns, line.split("\t"), strict=True))
        tumours.add(fields["Tumor_Sample_Barcode"])
        fields |= GDC_EXTRA | {"Matched_Norm_Sample_Barcode": fields["Tumor_Sample_Barcode"] + "-N"}
        rows.append("\t".join(fields[c] for c in columns + extra))
    head = ["#version gdc-1.0.0", "#filedate 20261207", "\t".join(columns + extra)]
    target.write_text("\n".join(head + rows) + "\n")
    return sorted(tumours)


def broken_files(folder: Path, bgzipped: Path, plain: list[Path]) -> None:
    """A lab's usual accidents, one file each (`plain`: three plain-text VCFs to damage)."""
    folder.mkdir()
    packed = bgzipped.read_bytes()
    (folder / "CUT0001.vcf.gz").write_bytes(packed[: len(packed) * 2 // 3])  # an interrupted copy
    (folder / "SCAN0001.vcf").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01garbage" * 50)  # binary, named .vcf
    (folder / "EMPTY0001.vcf").write_bytes(b"")
    lines = plain[0].read_text().replace(plain[0].stem, "BADLINE0001").splitlines()
    lines[len(lines) // 2] = lines[len(lines) // 2].replace("\t", " ", 3)  # spaces for tabs
    lines[len(lines) // 2 + 3] = "1\tabc\t.\tA\tC\t.\tPASS\t.\tGT\t0/1"  # POS not a number
    (folder / "BADLINE0001.vcf").write_text("\n".join(lines) + "\n")
    text = plain[1].read_text().replace(plain[1].stem, "TRUNC0001")
    (folder / "TRUNC0001.vcf").write_text(text[: int(len(text) * 0.9)])  # last line cut, no newline
    lines = plain[2].read_text().replace(plain[2].stem, "REFMIS0001").splitlines()
    body = [i for i, line in enumerate(lines) if not line.startswith("#")]
    for i in body[: len(body) // 4]:  # a quarter of the REF alleles wrong: over the loss limit
        fields = lines[i].split("\t")
        fields[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}.get(fields[3], fields[3])
        lines[i] = "\t".join(fields)
    (folder / "REFMIS0001.vcf").write_text("\n".join(lines) + "\n")


def subsets(vcfs: list[Path], out: Path, sizes: tuple[int, ...] = (100, 1000)) -> None:
    """Folders of the first n VCFs (and their indexes), hard-linked, for each n in `sizes`."""
    for n in sizes:
        folder = out / f"set{n}"
        folder.mkdir()
        for path in vcfs[:n]:
            for part in (path, Path(f"{path}.tbi")):
                if part.exists():
                    os.link(part, folder / part.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (replaced)")
    parser.add_argument("--tumours", type=int, default=1400)
    parser.add_argument("--maf-share", type=float, default=0.2143, help="share of tumours in the MAF")
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    sim = simulate_cohort(config=SimulationConfig(args.tumours, seed=args.seed))
    options = FileOptions(maf_fraction=args.maf_share, seed=args.seed)
    made = write_simulated_files(sim, args.out / "sim", options)
    types = sim.sample_sheet.set_index("sample")["cancer_type"]
    cohort = args.out / "cohort"
    (cohort / "vcf").mkdir(parents=True)
    sheet, vcfs = ["sample,file,tumor_sample,cancer_type"], []
    for i, source in enumerate(sorted(made.vcfs)):
        sample, lines = source.stem, source.read_text().splitlines()
        pair = i % 3 == 0
        lines = as_mutect2_pair(lines, sample) if pair else lines
        vcfs.append(write_vcf(cohort / "vcf", sample, "\n".join(lines) + "\n", i))
        sheet.append(f"{sample},{vcfs[-1].name},{sample}-T,{types[sample]}" if pair
                     else f"{sample},{vcfs[-1].name},{sample},{types[sample]}")
    tumours = gdc_maf(made.maf, cohort / "cohort.maf") if made.maf else []
    sheet += [f"{t},,,{types[t]}" for t in tumours]
    (cohort / "samples.csv").write_text("\n".join(sheet) + "\n")
    broken_files(cohort / "broken", vcfs[1], [v for v in vcfs if v.suffix == ".vcf"][:3])
    subsets(vcfs, args.out)
    print(f"{args.out}: {len(vcfs)} VCFs, a MAF of {len(tumours)} tumours, {made.n_records:,} calls; "
          f"reference {made.fasta}")


if __name__ == "__main__":
    main()
