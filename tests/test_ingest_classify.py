"""SBS96/DBS78/ID83 classification against plain string references on random inputs."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from nanog1.genomics.channels import DBS78, ID83, SBS96, revcomp
from nanog1.genomics.classify import classify_dbs, classify_sbs, find_doublets
from nanog1.genomics.indels import REASONS, IndelBatch, OffContig, classify_indel, indel_channel
from nanog1.genomics.reference import as_bytes, contig_key, encode, text_spans


def _sbs_reference(seq: str, pos: int, alt: str) -> str | None:
    """Pyrimidine-centred trinucleotide label by string slicing (None when off the contig or N)."""
    if pos < 2 or pos >= len(seq):
        return None
    ctx, ref = seq[pos - 2 : pos + 1], seq[pos - 1]
    if ref in "AG":
        ctx, ref, alt = revcomp(ctx), revcomp(ref), revcomp(alt)
    return None if "N" in ctx else f"{ctx[0]}[{ref}>{alt}]{ctx[2]}"


def test_sbs_matches_string_reference():
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGTN"), 5000, p=[0.24, 0.24, 0.24, 0.24, 0.04]))
    pos = rng.integers(1, len(seq) + 1, 3000)
    ref = np.array([seq[p - 1] for p in pos])
    alt = np.array([rng.choice([b for b in "ACGT" if b != r]) for r in ref])
    channel, motif = classify_sbs(as_bytes(seq), pos, encode("".join(ref)), encode("".join(alt)))
    for p, r, a, ch, mo in zip(pos, ref, alt, channel, motif, strict=True):
        want = _sbs_reference(seq, int(p), a) if r != "N" else None
        assert (SBS96[ch] if ch >= 0 else None) == want
        if mo >= 0:
            five = seq[p - 3 : p + 2]
            five = revcomp(five) if r in "AG" else five
            assert mo == int("".join(str("ACGT".index(b)) for b in five), 4)


def test_sbs_needs_five_mer_in_compatible_mode():
    seq = "ACGTACGTAC"
    channel, _ = classify_sbs(as_bytes(seq), np.array([2, 5]), encode("CA"), encode("AC"), flank=2)
    assert channel[0] == -1 and channel[1] >= 0


def test_dbs_labels_are_strand_collapsed():
    rng = np.random.default_rng(4)
    for _ in range(500):
        ref = "".join(rng.choice(list("ACGT"), 2))
        alt = "".join(rng.choice([b for b in "ACGT" if b != ref[k]]) for k in range(2))
        got = DBS78[classify_dbs(*(encode(x) for x in (ref[0], ref[1], alt[0], alt[1])))[0]]
        assert got in (f"{ref}>{alt}", f"{revcomp(ref)}>{revcomp(alt)}")


def test_doublets_default_and_compatible():
    sample = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    pos = np.array([10, 11, 20, 21, 22, 40, 41, 42])
    # 40 (sample 0) and 41 (sample 1) are adjacent but in different samples.
    starts, runs = find_doublets(sample, pos, compat=False)
    assert starts.tolist() == [0, 6]
    assert runs.tolist() == [False, False, True, True, True, False, False, False]
    # SigProfiler's rule drops a pair when the next/previous gap (1-5 bp) is in the same sample.
    starts, runs = find_doublets(sample, np.array([10, 11, 14, 30, 31, 50, 60, 61]), compat=True)
    assert starts.tolist() == [3, 6] and not runs.any()


@pytest.mark.parametrize(
    ("seq", "pos", "ref", "alt", "label"),
    [
        ("GGATCCCCAGG", 4, "TC", "T", "1:Del:C:3"),
        ("GGATCCCCAGG", 4, "T", "TC", "1:Ins:C:4"),
        ("GGAAGAAAGGC", 3, "AA", "A", "1:Del:T:1"),
        ("TTACACACGGT", 2, "TAC", "T", "2:Del:R:2"),
        ("TTACACACGGT", 2, "T", "TAC", "2:Ins:R:3"),
        ("GGTACGTTACTT", 2, "GTACG", "G", "4:Del:M:1"),
        ("CCGATGGGGGGG", 2, "CGAT", "C", "3:Del:M:1"),
        ("CCGATCGGGGGG", 2, "CGAT", "C", "3:Del:R:0"),
        ("CCGATCGGGGGG", 2, "C", "CGAT", "3:Ins:R:1"),
        ("GGGCACGTAACGTTGGGGGG", 4, "CACGTA", "C", "5:Del:M:4"),
        ("GGGCACGTAACGTTGGGGGG", 4, "C", "CACGTT", "5:Ins:R:0"),
    ],
)
def test_indel_examples(seq, pos, ref, alt, label):
    assert ID83[classify_indel(seq, pos, ref, alt)] == label


def test_complex_indel_is_not_classified():
    assert classify_indel("ACGTACGT", 2, "CG", "TA") == -1


def test_indel_window_off_contig_raises():
    with pytest.raises(OffContig):
        classify_indel("AAACGTACGGATTTT", 3, "ACGTACGG", "A")


def test_contig_names_normalised():
    assert contig_key("chr1") == contig_key("1") == "1"
    assert contig_key("chrM") == contig_key("MT") == contig_key("M") == "MT"


def _random_indels(rng: np.random.Generator, seq: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indels of every shape at random positions (some off the contig or at its ends): deletions that
    match the contig or not, insertions of repeat units, '-' alleles, complex and lower-case ones."""
    pos, ref, alt = [], [], []
    for _ in range(n):
        p = int(
            rng.choice([rng.integers(-2, len(seq) + 3), rng.integers(1, 12), len(seq) - rng.integers(0, 12)])
        )
        size = int(rng.choice([1, 1, 2, 3, 4, 5, 7, 12, 70]))
        p0 = min(max(p, 1), len(seq)) - 1
        here = seq[p0 : p0 + size + 1].upper() or "A"
        unit = "".join(rng.choice(list("ACGT"), size))
        shape = rng.integers(0, 7)
        if shape == 0:  # deletion of the contig's own bases
            r, a = here, here[0]
        elif shape == 1:  # insertion of the next bases (a repeat) or of random ones
            r, a = here[0], here[0] + (here[1:] if rng.random() < 0.5 and len(here) > 1 else unit)
        elif shape == 2:
            r, a = "-", here[1:] or unit
        elif shape == 3:
            r, a = here[1:] or unit, "-"
        elif shape == 4:  # REF that does not match
            r, a = "A" + unit, "A"
        elif shape == 5:  # complex
            r, a = unit + "A", "GT"
        else:  # lower-case allele letters
            r, a = here[0], (here[0] + unit).lower()
        pos.append(p)
        ref.append(r)
        alt.append(a)
    return np.array(pos), np.array(ref, dtype=object), np.array(alt, dtype=object)


def _repeat_contig(rng: np.random.Generator, length: int) -> str:
    """Random bases with homopolymers and tandem repeats (some longer than IndelBatch's windows),
    lower-case stretches and Ns."""
    parts, total = [], 0
    while total < length:
        pick = rng.integers(0, 5)
        if pick == 0:
            piece = "".join(rng.choice(list("ACGT"), rng.integers(1, 6))) * int(rng.integers(2, 40))
        elif pick == 1:
            piece = "".join(rng.choice(list("acgt"), rng.integers(1, 20)))
        elif pick == 2:
            piece = "N" * int(rng.integers(1, 4))
        else:
            piece = "".join(rng.choice(list("ACGT"), rng.integers(1, 30)))
        parts.append(piece)
        total += len(piece)
    return "".join(parts)[:length]


@pytest.mark.parametrize("compat", [False, True])
def test_indel_batch_equals_one_by_one(compat):
    """The vectorised classifier gives every indel the answer of `indel_channel` (index or skip reason),
    including repeats longer than its windows, contig ends, '-' alleles, lower case and complex indels."""
    rng = np.random.default_rng(11 + compat)
    contigs = [as_bytes(_repeat_contig(rng, n)) for n in (300, 2000, 40)]
    pos, ref, alt, which = [], [], [], []
    for c, seq in enumerate(contigs):
        p, r, a = _random_indels(rng, seq.tobytes().decode(), 1500)
        pos.append(p), ref.append(r), alt.append(a), which.append(np.full(len(p), c))
    pos, ref, alt, which = (np.concatenate(x) for x in (pos, ref, alt, which))
    batch = IndelBatch(pos, ref, alt, compat)
    for c, seq in enumerate(contigs):
        batch.gather(partial(text_spans, seq), len(seq), np.flatnonzero(which == c), c)
    index, reason = batch.classify(lambda c: contigs[c])
    want = [
        indel_channel(memoryview(contigs[c]), int(p), r, a, compat)
        for c, p, r, a in zip(which, pos, ref, alt, strict=True)
    ]
    got = [REASONS[k] if k else int(i) for i, k in zip(index, reason, strict=True)]
    assert got == want
    assert {w for w in want if isinstance(w, str)} == {"out_of_range", "ref_mismatch", "complex_indel"}
    assert len({w for w in want if not isinstance(w, str)}) > 40
