"""Mutation channel definitions: the cohort's one fixed channel layout, in COSMIC/SigProfiler order.

These lists are the single source of truth for channel order across the project: catalogues,
reference signatures, the simulator, the models and the dashboard all index channels by them.
SBS96, DBS78 and ID83 follow the row order of the COSMIC v3.x reference tables (checked in the
tests). Two derived sets need no reference sequence: SBS6 (the six pyrimidine-folded substitution
classes) and ID12 (indel type x length, with the C/T base class of 1-bp indels). A cohort always
carries all five sets (`N_CHANNELS` columns); the derived sets are always filled (folded from SBS96
and ID83 when those were measured), so a model trained with a reference applies to a cohort ingested
without one by masking the sets that were not computable.
"""

from __future__ import annotations

from itertools import product

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")

#: The six pyrimidine-centred substitution classes, in COSMIC order.
SBS6 = ("C>A", "C>G", "C>T", "T>A", "T>C", "T>G")


def revcomp(seq: str) -> str:
    """Reverse complement of a DNA string (upper-case ACGTN)."""
    return seq.translate(_COMPLEMENT)[::-1]


def _sbs96() -> tuple[str, ...]:
    return tuple(f"{five}[{sub}]{three}" for five, sub, three in product(BASES, SBS6, BASES))


def _dbs78() -> tuple[str, ...]:
    """The 78 strand-collapsed doublet classes, sorted as COSMIC sorts them (by REF, then ALT)."""
    seen: set[str] = set()
    for ref in ("".join(p) for p in product(BASES, repeat=2)):
        for alt in ("".join(p) for p in product(BASES, repeat=2)):
            if alt[0] == ref[0] or alt[1] == ref[1]:
                continue
            seen.add(canonical_dbs(ref, alt))
    return tuple(sorted(seen))


# The ten canonical doublet REFs used by COSMIC's DBS78 (each dinucleotide or its reverse complement).
DBS_REFS = ("AC", "AT", "CC", "CG", "CT", "GC", "TA", "TC", "TG", "TT")


def canonical_dbs(ref: str, alt: str) -> str:
    """Label of a doublet substitution ref>alt after strand collapsing, e.g. ('GT','CA') -> 'AC>TG'."""
    if ref in DBS_REFS:
        rc_ref, rc_alt = revcomp(ref), revcomp(alt)
        # Palindromic refs have two spellings of one doublet; COSMIC keeps the smaller ALT for
        # AT and GC and the larger for CG and TA (e.g. AT>CA, not AT>TG; CG>TT, not CG>AA).
        if rc_ref == ref:
            pick = min if ref in ("AT", "GC") else max
            return f"{ref}>{pick(alt, rc_alt)}"
        return f"{ref}>{alt}"
    return f"{revcomp(ref)}>{revcomp(alt)}"


def _id83() -> tuple[str, ...]:
    out: list[str] = []
    for kind in ("Del", "Ins"):
        for base in ("C", "T"):
            out += [f"1:{kind}:{base}:{n}" for n in range(6)]
    for kind in ("Del", "Ins"):
        for size in range(2, 6):
            out += [f"{size}:{kind}:R:{n}" for n in range(6)]
    # Microhomology lengths run 1..size-1, except the 5+ bp class, which runs 1..5+.
    for size in range(2, 6):
        out += [f"{size}:Del:M:{n}" for n in range(1, 6 if size == 5 else size)]
    return tuple(out)


def _id12() -> tuple[str, ...]:
    """Indel classes that need no repeat context: 1-bp by base class, 2..5+ bp by type."""
    ones = [f"1:{kind}:{base}" for kind in ("Del", "Ins") for base in ("C", "T")]
    return tuple(ones + [f"{size}:{kind}" for kind in ("Del", "Ins") for size in range(2, 6)])


SBS96: tuple[str, ...] = _sbs96()
DBS78: tuple[str, ...] = _dbs78()
ID83: tuple[str, ...] = _id83()
ID12: tuple[str, ...] = _id12()

#: Channel sets by name, in the order they are concatenated in a cohort's X (the one fixed layout).
CHANNEL_SETS: dict[str, tuple[str, ...]] = {
    "SBS96": SBS96,
    "DBS78": DBS78,
    "ID83": ID83,
    "SBS6": SBS6,
    "ID12": ID12,
}
#: Sets with COSMIC reference signatures (the ones signature fitting and the simulator draw from).
SIGNATURE_SETS: tuple[str, ...] = ("SBS96", "DBS78", "ID83")
#: Derived sets and the set each one folds from when that set was measured.
DERIVED_FROM: dict[str, str] = {"SBS6": "SBS96", "ID12": "ID83"}
#: Sets computable from the alleles alone (no reference sequence).
NO_REFERENCE_SETS: tuple[str, ...] = ("DBS78", "SBS6", "ID12")
#: Per-set status values recorded in uns['nanog1']['channel_sets']: exact for every sample; not
#: computable (no reference, or never measured); partial: exact only for the samples listed in
#: uns['nanog1']['exact_for'] (others had calls on contigs the FASTA lacks, counted in the derived
#: set instead, came from a part merged in that was ingested without a reference, or were given by
#: files that do not cover the set, e.g. a Strelka2 SNV file without its indel file).
#: Only 'exact' sets are used by fitting as a whole; the models read a 'partial' set for the samples
#: that measured it (obsm['measured_sets'], nanog1.schema.measured_sets_per_sample) and mask it for the
#: others.
EXACT, NOT_COMPUTABLE, PARTIAL = "exact", "not_computable", "partial"
#: The share of a sample's calls of one kind that may lie on contigs the FASTA lacks (chrM, decoy, alt,
#: unplaced: a primary-assembly FASTA) with its context set still exact for that sample: at most this share
#: of the sample's SBS6 (ID12) calls counted without context, SBS96 (ID83) stays measured and those calls
#: are left out of it (still counted in SBS6/ID12 and uns['nanog1']['without_context']), as
#: SigProfilerMatrixGenerator leaves out every call on a chromosome its genome lacks; above it the set is
#: 'partial' for that sample as before (DBS78 needs no context and is never affected). Why 1 %: leaving out
#: a share f of the calls moves the normalised spectrum by at most 2f in L1 (0.02), under the sampling
#: noise of a 96-channel spectrum at any burden a tumour has (mean L1 between a multinomial draw and its
#: flat profile: 0.25 at 1,000 calls, 0.077 at 10,000, 0.025 at 100,000); real somatic calls there are few
#: (a handful of mitochondrial and decoy calls per tumour; not measured here: the example VCFs on this
#: machine carry none), so a genome of thousands of calls stays far below 1 % while an exome of tens of
#: calls with a mtDNA call or two (2-10 %) is not quietly made whole. The loss limit
#: (--max-skip-fraction) still refuses a file with a larger share.
WITHOUT_CONTEXT_TOLERANCE = 0.01

#: A VCF/MAF tumour with at least this many substitutions and no indel at all is noted
#: (unstated_sets.unstated_snv_only): its caller may not have called indels (a substitution-only
#: file whose header does not say so). Zero indels at >= 200 substitutions: PCAWG 0 of 2,705 genomes; TCGA
#: exomes MC3 12 of 763 (1.6 %; PASS calls 3 of 358, 0.8 %), Firehose 30 of 1,197 (2.5 %). Below it, zero
#: indels is common in exomes (MC3: 94 of 3,556 at >= 50, 378 of 5,238 at >= 20).
#: `python benchmarks/indel_free_rates.py`; BENCHMARKS.md.
SNV_ONLY_MIN_SBS = 200
#: The same for doublets (no adjacent substitution pair): zero DBS at >= 2,000 substitutions: PCAWG 0 of
#: 2,195 genomes (6 of 2,504 at >= 1,000); TCGA exomes MC3 1 of 30, Firehose 4 of 44 (hypermutators).
NO_DOUBLET_MIN_SBS = 2000
#: A VCF/MAF input of several tumours (a MAF, a multi-sample VCF) whose tumours together carry at least this
#: many substitutions and not one indel is noted as a whole (unstated_sets.unstated_indel_free_files): the
#: per-tumour rule above misses exomes, most of which carry fewer than 200 substitutions each. A real file of
#: one study holds indels: every TCGA cohort's whole file >= 52 (MC3 UVM), PCAWG project >= 137. Random files
#: of 2-100 tumours of one project (200,000 per size and source): indel-free ones hold at most 814
#: substitutions in MC3 (one uniform caller), 1,234 in Firehose (LUSC, whose indel-free tumours look
#: SNV-only), none >= 1,500 of 5.6 million. `python benchmarks/indel_free_rates.py`; BENCHMARKS.md.
FILE_SNV_ONLY_MIN_SBS = 1500
#: A run (one `nanog1 ingest` / `predict` call, or a merged pipeline cohort) of at least
#: RUN_SNV_ONLY_MIN_FILES VCF/MAF files whose tumours together carry at least RUN_SNV_ONLY_MIN_SBS
#: substitutions and not one indel is noted once (unstated_sets.unstated_indel_free_run): a lab's run of
#: single-tumour VCFs (40 exomes of about 60 substitutions each) is under every per-tumour and per-file
#: threshold. Random runs of k single tumours of one project: indel-free runs are 5 % of k = 2 in MC3 exomes
#: but at most 0.03 % of k >= 10 and none of k >= 20; at k >= 10 they hold at most 987 substitutions (MC3
#: THCA; Firehose 706, MC3 PASS 259, PCAWG none; 2 million draws per k for k = 8-15), none >= 1,000. Below
#: 10 files they come near 1,500 (Firehose LUSC, 1,451 at k = 6), so the run needs 10 files.
#: `python benchmarks/indel_free_rates.py`; BENCHMARKS.md.
RUN_SNV_ONLY_MIN_FILES = 10
RUN_SNV_ONLY_MIN_SBS = 1500
#: `--not-measured SETS` in words: the help of `nanog1 ingest` and `nanog1 predict` and of the dashboard's
#: Predict page (nanog1.schema.parse_not_measured reads the value, SET_GROUPS names the groups).
NOT_MEASURED_HELP = (
    "Channel sets the calls did not measure, for every tumour of this run: comma-separated set names (SBS96, "
    "DBS78, ID83, SBS6, ID12) or groups (indels = ID83+ID12, substitutions = SBS96+SBS6, doublets = DBS78);"
    " a set and its folded set go together. Recorded as unmeasured (masked by the models, as for a Strelka2 "
    "SNV file alone), never as zero mutations; calls of those sets that the files hold are not read (an "
    "event model such as tcga-exome leaves them out, as if the lines were absent). Use it for a "
    "substitution-only file that does not say so (headerless SigProfiler VCFs, an SNV-only export, a "
    "caller run in SNV mode) or a caller whose indels you do not trust: e.g. --not-measured indels"
)

SET_SIZES: dict[str, int] = {name: len(labels) for name, labels in CHANNEL_SETS.items()}
#: Total number of channels (columns of a cohort's X).
N_CHANNELS: int = sum(SET_SIZES.values())
#: First column of each set in a cohort's X.
SET_OFFSETS: dict[str, int] = {
    name: sum(list(SET_SIZES.values())[:i]) for i, name in enumerate(CHANNEL_SETS)
}


def set_slice(name: str) -> slice:
    """The columns of one channel set in a cohort's X."""
    return slice(SET_OFFSETS[name], SET_OFFSETS[name] + SET_SIZES[name])


def fold_labels(derived: str) -> list[int]:
    """For each channel of the source set of `derived`, the index of the derived channel it folds into.

    SBS96 'A[C>T]G' -> SBS6 'C>T'; ID83 '1:Del:C:3' -> ID12 '1:Del:C', 'n:Del:R:k'/'n:Del:M:k' -> 'n:Del'.
    """
    source = CHANNEL_SETS[DERIVED_FROM[derived]]
    index = {label: i for i, label in enumerate(CHANNEL_SETS[derived])}
    if derived == "SBS6":
        return [index[label[2:5]] for label in source]
    return [index[label.rsplit(":", 1 if label.startswith("1:") else 2)[0]] for label in source]

#: COSMIC colours for the six SBS classes, the ten DBS REF groups and the sixteen ID83 groups.
SBS6_COLORS = {
    "C>A": "#03BCEE",
    "C>G": "#010101",
    "C>T": "#E32926",
    "T>A": "#CAC9C9",
    "T>C": "#A1CE63",
    "T>G": "#EBC6C4",
}
DBS_COLORS = {
    "AC": "#03BCEE",
    "AT": "#0366CC",
    "CC": "#A1CE63",
    "CG": "#036601",
    "CT": "#FF9898",
    "GC": "#E32926",
    "TA": "#FEB065",
    "TC": "#FE8002",
    "TG": "#CB98FD",
    "TT": "#4C0199",
}
ID_COLORS = {
    "1:Del:C": "#FBBD6F",
    "1:Del:T": "#FE8002",
    "1:Ins:C": "#AEDD8A",
    "1:Ins:T": "#35A12E",
    "2:Del:R": "#FCC9B4",
    "3:Del:R": "#FB8969",
    "4:Del:R": "#F04432",
    "5:Del:R": "#BB1A1A",
    "2:Ins:R": "#CFDFF0",
    "3:Ins:R": "#93C3DE",
    "4:Ins:R": "#4A97C8",
    "5:Ins:R": "#1764AB",
    "2:Del:M": "#E1E1EE",
    "3:Del:M": "#B5B5D6",
    "4:Del:M": "#8482BC",
    "5:Del:M": "#62409A",
}


def channel_group(label: str) -> str:
    """The colour group of a channel label: 'C>A' for 'A[C>A]G' and 'C>A', 'AC' for 'AC>CA', '1:Del:C'
    for ID83 and ID12 labels ('2:Del' -> '2:Del:R')."""
    if "[" in label:
        return label[2:5]
    if label in SBS6:
        return label
    if ":" in label:
        parts = label.split(":")
        if len(parts) == 2:
            return f"{label}:R"
        return label if len(parts) == 3 and parts[0] == "1" else label.rsplit(":", 1)[0]
    return label.split(">")[0]


def channel_color(label: str) -> str:
    """COSMIC plotting colour of one channel."""
    group = channel_group(label)
    for table in (SBS6_COLORS, DBS_COLORS, ID_COLORS):
        if group in table:
            return table[group]
    raise KeyError(f"unknown channel label {label!r}")


def all_channels() -> list[tuple[str, str]]:
    """(channel_set, label) pairs of every set in `CHANNEL_SETS`, the column order of a cohort's X."""
    return [(name, label) for name, labels in CHANNEL_SETS.items() for label in labels]
