"""What `nanog1 ingest --check-only` checks of the reference FASTA (`--reference`), before any call is read.

The checks ingest itself makes against the reference, told at check time without reading a whole file:

- the FASTA exists, is one htslib can index (not plain gzip) and has an index (.fai) that matches it
  (`fasta_index.index_state`, read only: nothing is written). A missing or stale index is a note where
  ingest will build it (its folder is writable) and an error, saying how to make one (`samtools faidx`),
  where it cannot;
- where VCF headers (`##contig` lines, as Mutect2 and GATK write them) and the index both give a contig's
  length, they agree (`ingest.check_reference_lengths`: a GRCh37 VCF against a GRCh38 FASTA is named as
  such), and a MAF's NCBI_Build is the FASTA's (`ingest.check_maf_builds`);
- the contigs a VCF's header and first records (`vcf.first_contigs`) name are the reference's, matched
  as ingest matches them (`reference.resolve_contig`: `chr1` is `1`, `M` is `MT`). A VCF that shares no
  contig with the FASTA would have every call read without context and be refused by ingest's limit on
  calls on contigs the reference lacks: an error naming how each names its contigs. Contigs the FASTA
  lacks beside others it has, and names matched only without their `chr` prefix, are notes.

Errors are InputErrors naming the file; notes are returned as lines naming the files.
"""

from __future__ import annotations

from pathlib import Path

from nanog1.genomics.build import GRCH37
from nanog1.genomics.contigs import canonical_chrom_name
from nanog1.genomics.variants import InputError

#: Files named in one note, at most (a cohort's 1,000 VCFs share one header: one note, not 1,000).
FILES_NAMED = 3
#: Contigs named in one note or error, at most.
CONTIGS_NAMED = 5
#: Chromosome names whose spelling tells a naming style (canonical: 1-22, X, Y, MT).
_PRIMARY = frozenset(GRCH37) | {"MT"}


def check_reference(reference: Path, plans: list, max_skip_fraction: float,
                    skip_limit_name: str) -> list[str]:
    """Check `reference` against the planned inputs (`ingest.FilePlan`s) as ingest would, reading FASTA
    index and VCF headers and first records only; return notes. InputError for what ingest would refuse:
    a missing FASTA, an index it cannot build, contig lengths of another build, a VCF sharing no contig
    with the FASTA (unless `max_skip_fraction` is 1: ingest then reads its calls without context)."""
    from nanog1.genomics.ingest import check_maf_builds, check_reference_lengths

    lengths, notes = index_lengths(Path(reference))
    if lengths is None:
        return notes
    check_reference_lengths([p.path for p in plans if p.kind == "vcf"], reference, lengths)
    check_maf_builds([p.path for p in plans if p.kind == "maf"], reference, lengths)
    vcfs = [p for p in plans if p.kind in ("vcf", "headerless")]
    return notes + contig_notes(vcfs, reference, lengths, max_skip_fraction, skip_limit_name)


def index_lengths(fasta: Path) -> tuple[dict[str, int] | None, list[str]]:
    """(contig lengths from the FASTA's index, notes); lengths None when there is no usable index yet (a
    note says ingest will build it, and that the contigs are checked once it exists). Errors for a missing
    FASTA, one htslib cannot index, and an index missing or stale in a folder ingest cannot write to."""
    from nanog1.genomics.fasta_index import can_write, index_state, read_fai, unindexable, unwritable_index

    if not fasta.exists():
        raise InputError(str(fasta), None, "reference FASTA not found")
    if not fasta.is_file():
        raise InputError(str(fasta), None, "a directory, not a reference FASTA")
    why = unindexable(fasta)
    if why is not None:
        raise InputError(str(fasta), None, f"cannot index the reference FASTA: {why}")
    fai, problem = index_state(fasta)
    if problem is None:
        return {e.name: e.length for e in read_fai(fai)}, []
    if not can_write(fai.parent):
        raise unwritable_index(fasta, fai, problem)
    what = ("has no index" if problem == "it is missing"
            else f"has an index that does not match it ({problem})")
    return None, [f"{fasta}: {what}; ingest will build {fai.name} (or make it now with `samtools faidx "
                  f"{fasta}`); the inputs' contigs are checked against it once it exists"]


def naming(names: list[str]) -> str:
    """How a list of contig names spells chromosomes: 'with a chr prefix (chr1, chr2, ...)', 'without a
    chr prefix (1, 2, ...)', both, or, where no name is a chromosome 1-22/X/Y/MT, the names themselves
    (RefSeq accessions, another organism's)."""
    primary = [n for n in names if canonical_chrom_name(n) in _PRIMARY]
    prefixed = [n for n in primary if n.lower().startswith("chr")]
    bare = [n for n in primary if not n.lower().startswith("chr")]
    if prefixed and bare:
        return f"both with and without a chr prefix ({prefixed[0]}, {bare[0]})"
    if primary:
        return f"{'with' if prefixed else 'without'} a chr prefix ({_few(primary, 2)})"
    return f"as {_few(names, 2)} (no chromosome 1-22, X, Y or MT among them)"


def contig_notes(vcfs: list, reference: Path, lengths: dict[str, int], max_skip_fraction: float,
                 skip_limit_name: str) -> list[str]:
    """Notes on the contigs the VCFs name (header `##contig` lines and first records) against the
    FASTA's, matched as ingest matches them; an InputError for a VCF that shares none with it."""
    from nanog1.genomics.build import vcf_header_facts
    from nanog1.genomics.reference import contig_keys, resolve_contig
    from nanog1.genomics.vcf import first_contigs

    keys = contig_keys(list(lengths))
    fasta_names = list(lengths)
    said: dict[str, list[str]] = {}
    for plan in vcfs:
        path = Path(plan.path)
        header = list(vcf_header_facts(path)[0]) if plan.kind == "vcf" else []
        records = first_contigs(path)
        named = list(dict.fromkeys(header + records))
        if not named:
            continue
        resolved = {n: resolve_contig(n, lengths, keys) for n in named}
        missing = [n for n in named if resolved[n] is None]
        if len(missing) == len(named):
            refusal = (f"none of the contigs it names ({_few(named)}) is in the reference {reference}: the "
                       f"VCF names them {naming(named)}, the reference {naming(fasta_names)}; is it the "
                       "FASTA the calls were made on?")
            if max_skip_fraction < 1:
                raise InputError(str(path), None, refusal + " Ingest would read every call without context "
                                 f"and refuse the file (more than {skip_limit_name} {max_skip_fraction:g} "
                                 "of its calls on contigs the reference lacks)")
            said.setdefault(refusal + " Its calls will be read without context (SBS6, DBS78, ID12)",
                            []).append(path.name)
            continue
        if missing:
            where = "first records" if set(missing) & set(records) else "header"
            text = (f"its {where} name{'s' if where == 'header' else ''} {len(missing)} contig(s) the "
                    f"reference {reference.name} lacks ({_few(missing)}): calls there are read without "
                    "context (SBS6, DBS78, ID12)")
            said.setdefault(text, []).append(path.name)
        renamed = [n for n in named if resolved[n] is not None and resolved[n] != n]
        if renamed:
            text = (f"names contigs {naming(named)}, the reference {reference.name} {naming(fasta_names)}: "
                    f"ingest matches them by name, as it reads them ({renamed[0]} is {resolved[renamed[0]]})")
            said.setdefault(text, []).append(path.name)
    return [f"{_files(names)}: {text}" for text, names in said.items()]


def _few(names: list[str], n: int = CONTIGS_NAMED) -> str:
    """'a, b, c' or 'a, b, ... (12 in all)'."""
    shown = ", ".join(names[:n])
    return shown if len(names) <= n else f"{shown}, ... ({len(names)} in all)"


def _files(names: list[str]) -> str:
    """The files a note is about: 'a.vcf', or 'a.vcf, b.vcf, c.vcf and 997 more'."""
    shown = ", ".join(names[:FILES_NAMED])
    return shown if len(names) <= FILES_NAMED else f"{shown} and {len(names) - FILES_NAMED:,} more"
