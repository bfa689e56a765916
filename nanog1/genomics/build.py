"""Which genome build a file's positions are on, told from what its producer wrote (issue 31).

One rule for every input, each answer a (build or None, evidence) pair, the evidence '<what>: <detail>'
(the part before ': ' names the source in an abstention reason):

- contig lengths, the primary evidence: chromosomes 1-22, X and Y differ in length between GRCh37 (hg19,
  b37, hs37d5: chr1 249,250,621 bp) and GRCh38 (chr1 248,956,422 bp), whatever they are named (`chr1` or
  `1`). A VCF's `##contig=<ID=..,length=..>` lines (Mutect2, Strelka2 and GATK write them from the
  reference's .dict/.fai) or a FASTA's index give them; the build is called when every chromosome whose
  length matches one build matches the same build and they are most of the chromosomes present;
- names, when lengths say nothing: `##assembly=`, the contigs' `assembly=` and `##reference=` (a path such
  as file:///refs/GRCh38.fa, Homo_sapiens_assembly38.fasta, ucsc.hg19.fasta, hs37d5.fa, or a bare hg19 /
  b37), and a MAF's NCBI_Build (GRCh37, 37, hg19, b37, GRCh38, ...), the same spellings;
- a SigProfiler text file's genome column (`GRCh37`, `GRCh38`, `mm10`, ...: `genome_name`), where other
  species' genomes are named too (`other_species`);
- nothing (VarScan2 often writes neither ##contig nor ##reference): None, and the evidence says what was
  missing. Nothing is guessed.

Also the check `nanog1 ingest` makes before classifying a VCF against a FASTA (`length_conflict`): a
contig both name whose lengths differ means the calls were made on another build than the FASTA, whose
trinucleotide contexts would then be read at the wrong places. Plain Python and pysam (no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from nanog1.genomics.contigs import canonical_chrom_name

GRCH37 = {
    "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260, "6": 171115067,
    "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747, "11": 135006516, "12": 133851895,
    "13": 115169878, "14": 107349540, "15": 102531392, "16": 90354753, "17": 81195210, "18": 78077248,
    "19": 59128983, "20": 63025520, "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
}  # fmt: skip
GRCH38 = {
    "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259, "6": 170805979,
    "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422, "11": 135086622, "12": 133275309,
    "13": 114364328, "14": 107043718, "15": 101991189, "16": 90338345, "17": 83257441, "18": 80373285,
    "19": 58617616, "20": 64444167, "21": 46709983, "22": 50818468, "X": 156040895, "Y": 57227415,
}  # fmt: skip
#: Chromosome lengths (1-22, X, Y; canonical names) by build.
CHROMOSOME_LENGTHS = {"GRCh37": GRCH37, "GRCh38": GRCH38}

#: Exact spellings (lower case) of a build, as NCBI_Build and ##assembly values write them (GDC: GRCh38;
#: MC3: GRCh37; Firehose: 37; others hg19 / b37 / GRCh37-lite).
SPELLINGS = {"grch37": "GRCh37", "37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "grch37-lite": "GRCh37",
             "ncbi37": "GRCh37", "hs37d5": "GRCh37", "grch38": "GRCh38", "38": "GRCh38", "hg38": "GRCh38",
             "b38": "GRCh38", "ncbi38": "GRCh38", "hg18": "NCBI36", "ncbi36": "NCBI36", "36": "NCBI36"}

#: A build named inside a longer text (a reference path, an assembly= value): the distinctive tokens
#: anywhere, the short ones (hg19, b37, ...) only where no letter or digit precedes them.
_NAMED = {
    "GRCh38": r"grch38|assembly38|ncbi38|gca_000001405\.15|(?<![a-z0-9])(?:hg38|b38|hs38(?:dh|d1)?)(?![0-9])",
    "GRCh37": r"grch37|assembly19|ncbi37|g1k_v37|(?<![a-z0-9])(?:hg19|b37|hs37(?:d5)?)(?![0-9])",
    "NCBI36": r"ncbi36|(?<![a-z0-9])(?:hg18|b36)(?![0-9])",
    "T2T-CHM13": r"chm13|(?<![a-z0-9])t2t(?![a-z0-9])",
}
_NAMED_RE = {build: re.compile(pattern) for build, pattern in _NAMED.items()}
#: Every build this module can name.
KNOWN_BUILDS = frozenset(SPELLINGS.values()) | frozenset(_NAMED)


#: Other species' genomes, lower case -> the name SigProfiler gives them (SigProfilerMatrixGenerator's
#: installable genomes, the genome column of its example files) from that name or the assembly's: none is
#: human, so a model trained on human tumours must not type them (nanog1.encoder.predictor.build_mismatch).
OTHER_SPECIES = {
    "mm9": "mm9", "ncbim37": "mm9", "mm10": "mm10", "grcm38": "mm10", "mm39": "mm39", "grcm39": "mm39",
    "rn6": "rn6", "rnor_6.0": "rn6", "rn7": "rn7", "mratbn7.2": "rn7", "dog": "dog", "canfam3": "dog",
    "canfam3.1": "dog", "c_elegans": "c_elegans", "ce11": "c_elegans", "wbcel235": "c_elegans",
    "yeast": "yeast", "saccer3": "yeast", "r64": "yeast", "ebv": "ebv",
}  # fmt: skip


def other_species(build: str | None) -> str | None:
    """SigProfiler's name of the non-human genome `build` names (`mm10`, `GRCm38`, `mm10_Legacy` -> mm10;
    OTHER_SPECIES), None for a human build, an unknown spelling or nothing."""
    lowered = re.sub(r"_(legacy|havana)$", "", str(build or "").strip().lower())
    return OTHER_SPECIES.get(lowered)


def genome_name(value: str) -> str | None:
    """The genome a SigProfiler file's genome column states, exactly as written there (`GRCh37`, `hg38`,
    `mm10`, `rn6_Legacy`): the human build (GRCh37 / GRCh38 / NCBI36) or SigProfiler's name of another
    species' genome; None for any other value (free text, a bare number: then the column states no genome)."""
    text = str(value).strip()
    if not text or text.isdigit():
        return None
    return SPELLINGS.get(text.lower()) or other_species(text)


def canonical_build(value: str) -> str:
    """A build as spelled in a NCBI_Build or ##assembly value: GRCh37 / GRCh38 / NCBI36 where known (exact
    spellings first, then a build named inside the text), else the value as written."""
    text = str(value).strip()
    exact = SPELLINGS.get(text.lower())
    return exact or build_from_name(text) or text


def build_from_name(text: str | None) -> str | None:
    """The one build a name or path names (`file:///refs/GRCh38.fa` -> GRCh38, `ucsc.hg19.fasta` ->
    GRCh37); None when it names none, or more than one."""
    lowered = (text or "").lower()
    found = {build for build, pattern in _NAMED_RE.items() if pattern.search(lowered)}
    return found.pop() if len(found) == 1 else None


def build_from_lengths(lengths: Mapping[str, int | None]) -> tuple[str | None, str]:
    """(build, evidence) from contig lengths (any naming: chr1 or 1); None when chromosomes 1-22/X/Y are
    absent, match neither build, or match both (a mixed header)."""
    known = {canonical_chrom_name(str(n)): int(v) for n, v in lengths.items() if v}
    present = [c for c in GRCH37 if c in known]
    if not present:
        return None, "contig lengths: none of chromosomes 1-22, X, Y"
    hits = {b: [c for c in present if known[c] == table[c]] for b, table in CHROMOSOME_LENGTHS.items()}
    matched = {b: cs for b, cs in hits.items() if cs}
    first = present[0]
    if not matched:
        return None, (f"contig lengths: match neither GRCh37 nor GRCh38 (chr{first} {known[first]:,} bp; "
                      f"GRCh37 {GRCH37[first]:,}, GRCh38 {GRCH38[first]:,})")
    if len(matched) > 1:
        parts = " and ".join(f"{b} (chr{cs[0]})" for b, cs in matched.items())
        return None, f"contig lengths: some match {parts}, not one build"
    build, chroms = next(iter(matched.items()))
    if 2 * len(chroms) <= len(present):
        return None, (f"contig lengths: only {len(chroms)} of {len(present)} chromosomes match {build}")
    c = chroms[0]
    return build, (f"contig lengths: {len(chroms)} of {len(present)} chromosomes match {build} "
                   f"(chr{c} {known[c]:,} bp)")


def header_build(contigs: Mapping[str, int | None], reference: str | None = None, assembly: str | None = None,
                 contig_assemblies: Iterable[str] = ()) -> tuple[str | None, str]:
    """(build, evidence) from what a VCF header states: `##contig` lengths first, else the build that
    `##assembly`, the contigs' `assembly=` and `##reference` name (None when they name none, or disagree)."""
    build, why = build_from_lengths(contigs)
    if build is not None:
        return build, f"##{why}"
    named = [("##assembly", assembly), *(("##contig assembly", a) for a in dict.fromkeys(contig_assemblies)),
             ("##reference", reference)]
    calls = [(key, value, canonical_build(value)) for key, value in named if value]
    builds = {b for _, _, b in calls if b in KNOWN_BUILDS}
    said = "; ".join(f"{key} {value}" for key, value, _ in calls)
    lengths = f"##{why}" if any(v for v in contigs.values()) else "no ##contig lengths"
    if len(builds) == 1:
        build = builds.pop()
        key, value, _ = next(c for c in calls if c[2] == build)
        return build, f"{key}: {value} ({lengths})"
    if builds:
        return None, f"header names disagree: {said}"
    if calls:
        return None, f"{lengths}; {said} names no build"
    return None, f"{lengths}, ##reference or ##assembly in the header"


def vcf_header_facts(path: Path) -> tuple[dict[str, int | None], str | None, str | None, list[str]]:
    """(contig lengths by name, ##reference, ##assembly, the contigs' assembly= values) of a VCF/BCF
    header (pysam; the header alone is read)."""
    from nanog1.genomics.vcf import _open

    with _open(Path(path), header_only=True) as vf:
        header = vf.header
        contigs = {name: (int(c.length) if c.length else None) for name, c in header.contigs.items()}
        values = {}
        assemblies = []
        for rec in header.records:
            if rec.type == "GENERIC" and rec.key in ("reference", "assembly") and rec.value:
                values.setdefault(rec.key, rec.value.strip().strip('"'))
            elif rec.type == "CONTIG" and rec.get("assembly"):
                assemblies.append(str(rec.get("assembly")).strip('"'))
    return contigs, values.get("reference"), values.get("assembly"), assemblies


def vcf_build(path: Path) -> tuple[str | None, str]:
    """(build, evidence) of a VCF/BCF from its header (`header_build`)."""
    contigs, reference, assembly, assemblies = vcf_header_facts(path)
    return header_build(contigs, reference, assembly, assemblies)


def length_conflict(header: Mapping[str, int | None],
                    fasta: Mapping[str, int]) -> tuple[str, int, int] | None:
    """The first contig a VCF header and a FASTA both name (any spelling) with different lengths, as
    (the header's name, its length there, the FASTA's); None when they agree. The mitochondrion is left
    out (hg19's chrM is 16,571 bp, GRCh37's MT the 16,569 bp rCRS: the same build otherwise)."""
    by_key = {canonical_chrom_name(str(n)): int(v) for n, v in fasta.items()}
    for name, length in header.items():
        key = canonical_chrom_name(str(name))
        if length and key != "MT" and key in by_key and by_key[key] != int(length):
            return str(name), int(length), by_key[key]
    return None
