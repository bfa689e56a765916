"""Genome-build checks of the calls against the reference FASTA, and each sample's recorded build.

Before any record is read, a VCF whose `##contig` lengths are another build's than the FASTA's
(`check_reference_lengths`) and a MAF whose NCBI_Build names another build, or two
(`check_maf_builds`), and a SigProfiler headerless VCF or text file whose genome column names another
genome (`check_stated_genomes`), are refused: their trinucleotide contexts would be read at the wrong places.
`ingest` and `--check-only` (`reference_check.check_reference`) both call them, so both refuse with the
same words. Once the files are read, each sample's build and the evidence for it are recorded
(`genome_builds`: `uns['nanog1']['genome_build']`). How a build is told is `build.py`'s one rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.variants import InputError

if TYPE_CHECKING:
    from nanog1.genomics.ingest import FilePlan, FileResult


#: Why a file of another genome build than the FASTA is refused (VCF contig lengths, a MAF's NCBI_Build).
OTHER_BUILD = ("the calls were made on another genome build than this FASTA, so their trinucleotide contexts "
               "would be read at the wrong places; give the FASTA they were called on")


def check_reference_lengths(vcfs: list[Path], reference: Path, lengths: dict[str, int] | None = None) -> None:
    """Refuse a VCF whose header gives a contig another length than the FASTA does (build.length_conflict):
    its calls were made on another genome build, and classifying them against this FASTA would read the
    wrong bases as their context. Header lines only are read, before any record. `lengths`: the FASTA's
    contig lengths where the caller has them (--check-only reads its .fai), else from the opened reference."""
    from nanog1.genomics.build import build_from_lengths, length_conflict, vcf_header_facts

    if not vcfs:
        return
    if lengths is None:
        from nanog1.genomics.reference import open_reference

        lengths = open_reference(reference).lengths
    for path in vcfs:
        contigs = vcf_header_facts(path)[0]
        conflict = length_conflict(contigs, lengths)
        if conflict is None:
            continue
        name, theirs, ours = conflict
        builds = [build_from_lengths(sizes)[0] for sizes in (contigs, lengths)]
        vcf_says, fasta_says = (f" ({b})" if b else "" for b in builds)
        raise InputError(
            str(path), None,
            f"contig {name} is {theirs:,} bp in the VCF header{vcf_says} but {ours:,} bp in the reference "
            f"{reference}{fasta_says}: {OTHER_BUILD}",
        )


def check_maf_builds(mafs: list[Path], reference: Path, lengths: dict[str, int] | None = None) -> None:
    """Refuse a MAF whose NCBI_Build names another build than the FASTA's contig lengths do
    (build.build_from_lengths), as `check_reference_lengths` refuses a VCF; and a MAF whose records state two
    builds (one FASTA is one build), naming the line of the first record that differs. A MAF stating no
    build, or a FASTA whose lengths tell none (a toy genome), passes: nothing to compare. Only the
    NCBI_Build column is read, before any record is classified. `lengths`: as `check_reference_lengths`."""
    from nanog1.genomics.build import KNOWN_BUILDS, build_from_lengths
    from nanog1.genomics.maf import maf_build_change

    if not mafs:
        return
    if lengths is None:
        from nanog1.genomics.reference import open_reference

        lengths = open_reference(reference).lengths
    fasta, evidence = build_from_lengths(lengths)
    fasta_says = f"{fasta}, {evidence}" if fasta else evidence
    for path in mafs:
        stated, change = maf_build_change(path)
        if change is not None:
            line, build, value, first_line = change
            raise InputError(
                str(path), line,
                f"NCBI_Build {value} ({build}) where the records above state {stated} (from line "
                f"{first_line}): one MAF of two genome builds, against one reference {reference} "
                f"({fasta_says}); split the MAF by NCBI_Build and give each part the FASTA it was called on",
            )
        if fasta is not None and stated in KNOWN_BUILDS and stated != fasta:
            raise InputError(
                str(path), None,
                f"NCBI_Build is {stated} but the reference {reference} is {fasta} ({evidence}): "
                f"{OTHER_BUILD}",
            )


def check_stated_genomes(files: list[Path], reference: Path, lengths: dict[str, int] | None = None) -> None:
    """Refuse a SigProfiler headerless VCF or text file (`files`: (path, kind) pairs) whose genome column
    names another genome than the FASTA's contig lengths do (`textformat.stated_genome`: mm10 calls against a
    GRCh37 FASTA, GRCh38 against GRCh37), as `check_maf_builds` refuses a MAF; a file stating two genomes is
    refused at the first line that differs. A file stating none, or a FASTA whose lengths tell no human
    build (a toy or a mouse genome), passes: nothing to compare. `lengths`: as `check_reference_lengths`."""
    from nanog1.genomics.build import build_from_lengths
    from nanog1.genomics.textformat import stated_genome

    if not files:
        return
    if lengths is None:
        from nanog1.genomics.reference import open_reference

        lengths = open_reference(reference).lengths
    fasta, evidence = build_from_lengths(lengths)
    for path, kind in files:
        stated, why = stated_genome(path, kind)
        if fasta is not None and stated is not None and stated != fasta:
            raise InputError(
                str(path), None,
                f"the genome column states {why.removeprefix('genome column: ')} but the reference "
                f"{reference} is {fasta} ({evidence}): {OTHER_BUILD}",
            )


def genome_builds(plans: list[FilePlan], results: list[FileResult], samples: list[str],
                  reference: Path | None) -> pd.DataFrame:
    """uns['nanog1']['genome_build']: per sample (cohort order) the genome build its calls are on
    ('' = not known) and the evidence ('<file>: <source>: <detail>'): the file's own statement (a VCF
    header's contig lengths or names, nanog1.genomics.build; a MAF's NCBI_Build; a SigProfiler headerless
    VCF's or text file's genome column, other species' genomes included), else the reference
    FASTA's contig lengths (the calls were classified against it). Catalogue matrices state none. A
    sample whose files state different builds is an error naming them."""
    from nanog1.genomics.build import build_from_lengths, vcf_build
    from nanog1.genomics.maf import maf_builds
    from nanog1.genomics.textformat import GENOME_FIELD, stated_genome

    fasta: tuple[str | None, str] = (None, "")
    if reference is not None:
        from nanog1.genomics.reference import open_reference

        fasta = build_from_lengths(open_reference(reference).lengths)
    found: dict[str, list[tuple[str, str, str]]] = {}  # sample -> (build, evidence, file)
    for plan, result in zip(plans, results, strict=True):
        if result.kind == "matrix" or not result.samples:
            continue
        name = plan.path.name
        per_sample: dict[str, tuple[str | None, str]] = {}
        if result.kind == "vcf":
            build, why = vcf_build(plan.path)
            per_sample = dict.fromkeys(result.samples, (build, f"{name}: {why}"))
        elif result.kind == "maf":
            stated = maf_builds(plan.path)
            per_sample = {s: (stated[s], f"{name}: NCBI_Build: {stated[s]}") if s in stated
                          else (None, f"{name}: no NCBI_Build") for s in result.samples}
        elif result.kind in GENOME_FIELD:  # SigProfiler's headerless VCF or text file: its genome column
            build, why = stated_genome(plan.path, result.kind)
            per_sample = dict.fromkeys(result.samples, (build, f"{name}: {why}"))
        else:
            per_sample = dict.fromkeys(result.samples, (None, f"{name}: states no build"))
        for sample, (build, why) in per_sample.items():
            if build is None and fasta[0] is not None:
                build, why = fasta[0], f"{name}: reference FASTA {fasta[1]}"
            found.setdefault(sample, []).append((build or "", why, str(plan.path)))
    rows = []
    for sample in samples:
        stated = found.get(sample, [])
        builds = {b for b, _, _ in stated if b}
        if len(builds) > 1:
            files = ", ".join(f"{f} {b}" for b, _, f in stated if b)
            raise UserError(f"sample {sample!r} has calls on different genome builds ({files}): give "
                            "files of one build per sample")
        build = builds.pop() if builds else ""
        why = next((w for b, w, _ in stated if b == build), "") if stated else ""
        rows.append((sample, build, why))
    table = pd.DataFrame(rows, columns=["sample", "genome_build", "evidence"], dtype=object)
    table.index = table.index.astype(str)
    return table
