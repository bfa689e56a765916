"""Trinucleotide opportunity counting (FASTA + BED) and panel fitting against rescaled signatures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pysam
import pytest

from nanog1.fitting import FitConfig, fit_signatures
from nanog1.fitting.opportunity import fit_with_opportunity, opportunity_ratio, rescale_signatures
from nanog1.genomics.channels import CHANNEL_SETS, revcomp
from nanog1.genomics.opportunity import CONTEXTS, channel_opportunity, count_contexts, read_bed
from nanog1.genomics.signatures import load_reference
from nanog1.genomics.simulate import simulate_cohort


def _write_fasta(path, seqs: dict[str, str]) -> None:
    with open(path, "w") as f:
        for name, seq in seqs.items():
            f.write(f">{name}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    pysam.faidx(str(path))


def _naive_counts(seqs: dict[str, str], regions: list[tuple[str, int, int]] | None) -> dict[str, int]:
    """Per-base loop: every centre in the target (counted once) with ACGT flanks, folded to C/T centre."""
    centres = set()
    for chrom, seq in seqs.items():
        spans = [(s, e) for c, s, e in regions if c == chrom] if regions else [(0, len(seq))]
        for s, e in spans:
            centres |= {(chrom, i) for i in range(s, min(e, len(seq)))}
    out = dict.fromkeys(CONTEXTS, 0)
    for chrom, i in centres:
        seq = seqs[chrom]
        if i == 0 or i == len(seq) - 1:
            continue
        tri = seq[i - 1 : i + 2].upper()
        if any(b not in "ACGT" for b in tri):
            continue
        out[tri if tri[1] in "CT" else revcomp(tri)] += 1
    return out


def _random_genome(rng, lengths=(3000, 2500)) -> dict[str, str]:
    seqs = {}
    for i, n in enumerate(lengths):
        s = np.array(list("ACGTacgtN"))[rng.choice(9, n, p=[0.22] * 4 + [0.02] * 4 + [0.04])]
        seqs[f"chr{i + 1}"] = "".join(s)
    return seqs


def test_count_contexts_matches_naive_loop_whole_genome_and_bed(tmp_path):
    rng = np.random.default_rng(5)
    seqs = _random_genome(rng)
    fasta = tmp_path / "g.fa"
    _write_fasta(fasta, seqs)
    assert count_contexts(fasta).to_dict() == _naive_counts(seqs, None)
    regions = [
        ("chr1", 0, 40),
        ("chr1", 30, 900),
        ("chr1", 2990, 3000),
        ("chr2", 100, 101),
        ("chr2", 700, 2100),
    ]
    bed = tmp_path / "panel.bed"
    bed.write_text("track name=x\n" + "".join(f"{c.removeprefix('chr')}\t{s}\t{e}\n" for c, s, e in regions))
    got = count_contexts(fasta, bed)
    assert got.to_dict() == _naive_counts(seqs, regions)
    assert list(got.index) == list(CONTEXTS) and len(set(CONTEXTS)) == 32


def test_read_bed_merges_and_names_bad_lines(tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("1\t10\t20\n1\t15\t30\n1\t40\t50\n2\t0\t5\n")
    merged = read_bed(bed)
    assert merged.values.tolist() == [["1", 10, 30], ["1", 40, 50], ["2", 0, 5]]
    bed.write_text("1\t10\t20\n1\tx\t30\n")
    with pytest.raises(ValueError, match=r"r.bed:2"):
        read_bed(bed)


def test_channel_opportunity_spreads_contexts():
    contexts = pd.Series(np.arange(32, dtype=float), index=list(CONTEXTS))
    chan = channel_opportunity(contexts)
    assert list(chan.index) == list(CHANNEL_SETS["SBS96"])
    assert chan["A[C>T]G"] == contexts["ACG"] and chan["T[T>G]C"] == contexts["TTC"]
    assert chan.sum() == pytest.approx(3 * contexts.sum())


def _panel_genome(tmp_path, rng):
    """Two uniform contigs with GC/CpG-rich 'exons'; the BED lists the exons."""
    seqs, regions = {}, []
    for name in ("1", "2"):
        seq = rng.choice(list("ACGT"), 200_000)
        for start in range(5_000, 195_000, 12_000):
            rich = rng.choice(list("ACGT"), 2_000, p=[0.1, 0.4, 0.4, 0.1])
            rich[::7] = "C"
            rich[1::7] = "G"
            seq[start : start + 2_000] = rich
            regions.append((name, start, start + 2_000))
        seqs[name] = "".join(seq)
    fasta = tmp_path / "genome.fa"
    _write_fasta(fasta, seqs)
    bed = tmp_path / "panel.bed"
    bed.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in regions))
    return fasta, bed


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """Genome + BED, and a panel cohort: per-process target counts drawn from rescaled profiles."""
    tmp = tmp_path_factory.mktemp("panel")
    rng = np.random.default_rng(11)
    fasta, bed = _panel_genome(tmp, rng)
    genome, target = count_contexts(fasta), count_contexts(fasta, bed)
    ref = load_reference()
    scaled, capture = rescale_signatures(ref, opportunity_ratio(target, genome))
    types = ["Skin-Melanoma", "Lung-SCC", "ColoRect-AdenoCA"]
    E = simulate_cohort(40, types=types, seed=2, burden_scale=1.0).exposures["SBS96"]
    truth = rng.poisson(E.to_numpy() * capture.to_numpy())  # mutations each process left in the target
    counts = np.zeros((len(E), 96), dtype=np.int64)
    for j, sig in enumerate(E.columns):
        for i in np.flatnonzero(truth[:, j]):
            counts[i] += rng.multinomial(truth[i, j], scaled[sig].to_numpy())
    cat = pd.DataFrame(counts, index=E.index, columns=list(CHANNEL_SETS["SBS96"]))
    return {
        "fasta": fasta,
        "bed": bed,
        "genome": genome,
        "target": target,
        "E": E,
        "truth": truth,
        "cat": cat,
    }


def _rel_err(est: np.ndarray, true: np.ndarray) -> float:
    return float(np.abs(est - true).sum() / true.sum())


def test_panel_fit_recovers_exposures_better_than_unscaled(panel):
    ratio = opportunity_ratio(panel["target"], panel["genome"])
    assert ratio.max() / ratio.min() > 3  # the target's composition really differs from the genome's
    ref, cat, truth, E = load_reference(), panel["cat"], panel["truth"], panel["E"]
    config = FitConfig(add_penalty=0.02)  # a panel-sized burden: admit the smaller processes too
    fitted = fit_with_opportunity(cat, ref, panel["target"], panel["genome"], config)
    plain = fit_signatures(cat, ref, config)
    e_scaled, e_plain = (
        _rel_err(fitted.fit.exposures.to_numpy(), truth),
        _rel_err(plain.exposures.to_numpy(), truth),
    )
    assert e_scaled < 0.15 and e_scaled < 0.5 * e_plain
    np.testing.assert_allclose(fitted.fit.exposures.sum(1), fitted.fit.reconstruction.sum(1), rtol=1e-9)
    genome_eq = fitted.genome_equivalent.to_numpy()
    assert _rel_err(genome_eq, E.to_numpy()) < 0.2
    np.testing.assert_allclose(
        genome_eq * fitted.capture.to_numpy(), fitted.fit.exposures.to_numpy(), rtol=1e-9
    )


def test_cli_panel_fit_writes_both_scales(panel, tmp_path):
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.cohort import assemble_cohort, read_cohort, write_cohort

    cat = panel["cat"]
    full = np.zeros((len(cat), 257))
    full[:, :96] = cat.to_numpy()
    adata = assemble_cohort(full, list(cat.index), {"channel_sets_present": ["SBS96"]})
    path = tmp_path / "panel.h5ad"
    write_cohort(adata, path)
    base = ["signatures", "fit", str(path), "--add-penalty", "0.02", "--opportunity", "panel"]
    missing = CliRunner().invoke(app, base)
    assert missing.exit_code == 2 and "--bed" in missing.output
    res = CliRunner().invoke(app, [*base, "--bed", str(panel["bed"]), "--reference", str(panel["fasta"])])
    assert res.exit_code == 0, res.output
    out = read_cohort(path)
    assert _rel_err(out.obsm["exposures_SBS96"].to_numpy(), panel["truth"]) < 0.15
    assert _rel_err(out.obsm["exposures_SBS96_genome"].to_numpy(), panel["E"].to_numpy()) < 0.2
    rec = out.uns["signature_fit"]["SBS96"]["opportunity"]
    assert rec["kind"] == "panel" and len(rec["bed_sha256"]) == 64
    np.testing.assert_array_equal(rec["target_counts"], panel["target"].to_numpy())
