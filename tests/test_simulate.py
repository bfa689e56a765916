"""Cohort simulator: priors, determinism, exact ID83 loci, and files that ingest back to the catalogues."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nanog1.genomics.channels import CHANNEL_SETS, ID83, SIGNATURE_SETS, revcomp
from nanog1.genomics.indels import ID_INDEX, classify_indel
from nanog1.genomics.simulate import read_priors, simulate_cohort
from nanog1.genomics.simulate_files import write_simulated_files
from nanog1.genomics.simulate_loci import MAX_LOCUS, dbs_locus, id_locus, sbs_locus


def test_default_priors_cover_brief_signatures_and_cite_sources():
    priors = read_priors()
    assert priors["source"].str.len().gt(0).all()
    pairs = set(zip(priors["cancer_type"], priors["signature"], strict=True))
    for pair in [
        ("Lung-SCC", "SBS4"),
        ("Skin-Melanoma", "SBS7a"),
        ("Bladder-TCC", "SBS2"),
        ("ColoRect-AdenoCA", "SBS44"),
        ("Liver-HCC", "SBS22a"),
        ("Ovary-AdenoCA", "SBS3"),
        ("Lung-SCC", "DBS2"),
        ("Skin-Melanoma", "DBS1"),
        ("Lung-SCC", "ID3"),
    ]:
        assert pair in pairs


def test_bad_prior_table_names_file_and_line(tmp_path):
    bad = read_priors().head(3).copy()
    bad.loc[2, "prevalence"] = 1.5
    path = tmp_path / "p.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"p\.csv:4"):
        read_priors(path)


def test_simulation_is_deterministic_and_consistent():
    a = simulate_cohort(30, seed=5, burden_scale=0.05)
    b = simulate_cohort(30, seed=5, burden_scale=0.05)
    c = simulate_cohort(30, seed=6, burden_scale=0.05)
    pd.testing.assert_frame_equal(a.catalogues, b.catalogues)
    assert not a.catalogues.equals(c.catalogues)
    for cs in SIGNATURE_SETS:
        # Every drawn mutation is attributed: catalogue burden == sum of true exposures.
        np.testing.assert_array_equal(a.channel_set(cs).sum(1).to_numpy(), a.exposures[cs].sum(1).to_numpy())
    assert list(a.sample_sheet["sample"]) == list(a.catalogues.index)


def test_types_and_grouped_signatures_switch_together():
    sim = simulate_cohort(80, types=["ColoRect-AdenoCA"], seed=1, burden_scale=0.2)
    assert set(sim.sample_sheet["cancer_type"]) == {"ColoRect-AdenoCA"}
    sbs44 = sim.exposures["SBS96"]["SBS44"] > 0
    dbs10 = sim.exposures["DBS78"]["DBS10"] > 0
    # mmr group: SBS44 on implies DBS10 drawn from the same switch (burden may still be 0 rarely).
    assert sbs44.any() and (dbs10 <= sbs44).all()
    with pytest.raises(ValueError, match="not in the prior table"):
        simulate_cohort(5, types=["Nowhere-Carcinoma"])


@pytest.mark.parametrize("label", ID83)
def test_each_id83_locus_classifies_to_its_label(label):
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    for _ in range(20):
        bases, [(off, ref, alt)] = id_locus(rng, label)
        assert len(bases) <= MAX_LOCUS
        flank = "".join(rng.choice(list("ACGT"), size=30))
        seq = flank + bases + flank
        pos = len(flank) + off + 1
        assert seq[pos - 1 : pos - 1 + len(ref)] == ref
        assert classify_indel(seq, pos, ref, alt) == ID_INDEX[label]


def test_sbs_and_dbs_loci_carry_their_context():
    rng = np.random.default_rng(0)
    for label in CHANNEL_SETS["SBS96"]:
        seq, [(off, ref, alt)] = sbs_locus(rng, label)
        tri, mut = (seq, alt) if seq[1] in "CT" else (revcomp(seq), revcomp(alt))
        assert f"{tri[0]}[{tri[1]}>{mut}]{tri[2]}" == label and seq[off] == ref
    seq, muts = dbs_locus(rng, "AC>CA")
    assert [m[0] for m in muts] == [1, 2] and seq[1:3] == "".join(m[1] for m in muts)


def _sbs96_count(fasta: Path, vcfs: list[Path], samples: list[str]) -> pd.DataFrame:
    """Independent SBS96 counter for plain VCF SNVs not adjacent to another SNV of the sample."""
    import pysam

    ref = pysam.FastaFile(str(fasta))
    index = {lab: i for i, lab in enumerate(CHANNEL_SETS["SBS96"])}
    out = pd.DataFrame(0, index=samples, columns=list(CHANNEL_SETS["SBS96"]))
    for path in vcfs:
        recs = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
        snv = [(r[0], int(r[1]), r[3], r[4]) for r in recs if len(r[3]) == 1 and len(r[4]) == 1]
        pos = {(c, p) for c, p, _, _ in snv}
        for c, p, r, a in snv:
            if (c, p - 1) in pos or (c, p + 1) in pos:
                continue
            tri = ref.fetch(c, p - 2, p + 1)
            if r in "AG":
                tri, a = revcomp(tri), revcomp(a)
            out.iloc[samples.index(path.stem), index[f"{tri[0]}[{tri[1]}>{a}]{tri[2]}"]] += 1
    return out


def test_simulated_files_reproduce_catalogues(tmp_path):
    sim = simulate_cohort(24, seed=11, burden_scale=0.03)
    files = write_simulated_files(sim, tmp_path, min_length=400_000, maf_fraction=0.25)
    assert files.maf is not None and len(files.vcfs) == 18
    assert Path(str(files.fasta) + ".fai").exists()
    vcf_samples = [p.stem for p in files.vcfs]
    mine = _sbs96_count(files.fasta, files.vcfs, vcf_samples)
    pd.testing.assert_frame_equal(mine, sim.channel_set("SBS96").loc[vcf_samples], check_names=False)

    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.ingest import ingest

    out = tmp_path / "cohort.h5ad"
    report = ingest([*files.vcfs, files.maf], files.fasta, files.sample_sheet, out)
    assert sum(report.skips.values()) == 0
    adata = read_cohort(out)
    got = adata.to_df().loc[sim.catalogues.index, sim.catalogues.columns]
    np.testing.assert_array_equal(got.to_numpy(), sim.catalogues.to_numpy())
    types = adata.obs["cancer_type"].astype(str)
    assert (types == sim.sample_sheet.set_index("sample")["cancer_type"].loc[adata.obs_names]).all()


def test_cli_simulate_then_fit(tmp_path):
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.cohort import read_cohort

    runner = CliRunner()
    truth = tmp_path / "truth.h5ad"
    res = runner.invoke(
        app, ["simulate", str(tmp_path / "sim"), "-n", "8", "--no-files", "--catalogues", str(truth)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sim" / "samples.csv").exists()
    fitted = tmp_path / "fitted.h5ad"
    res = runner.invoke(app, ["signatures", "fit", str(truth), "--out", str(fitted), "--set", "SBS96"])
    assert res.exit_code == 0, res.output
    adata = read_cohort(fitted)
    assert adata.obsm["exposures_SBS96"].shape == (8, _reference_width())
    res = runner.invoke(app, ["simulate", str(tmp_path / "bad"), "-n", "3", "--type", "Nowhere"])
    assert res.exit_code == 2


def _reference_width() -> int:
    from nanog1.genomics.signatures import load_reference

    return load_reference().shape[1]
