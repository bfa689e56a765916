"""Channel lists equal the row order of the COSMIC reference tables shipped on PyPI."""

from __future__ import annotations

from importlib.resources import files

import pandas as pd
import pytest

from nanog1.genomics.channels import (
    CHANNEL_SETS,
    DBS78,
    ID12,
    ID83,
    N_CHANNELS,
    SBS6,
    SBS96,
    all_channels,
    canonical_dbs,
    channel_color,
    fold_labels,
    revcomp,
)


def _cosmic(name: str) -> pd.DataFrame:
    root = files("SigProfilerAssignment") / "data" / "Reference_Signatures" / "GRCh37"
    return pd.read_csv(str(root / f"COSMIC_v3.4_{name}_GRCh37.txt"), sep="\t", index_col=0)


@pytest.mark.parametrize("name,labels", [("SBS", SBS96), ("DBS", DBS78), ("ID", ID83)])
def test_order_matches_cosmic(name, labels):
    assert list(_cosmic(name).index) == list(labels)


def test_sizes_and_uniqueness():
    assert [len(v) for v in CHANNEL_SETS.values()] == [96, 78, 83, 6, 12]
    assert len({label for _, label in all_channels()}) == N_CHANNELS == 96 + 78 + 83 + 6 + 12


def test_derived_sets_fold_their_sources():
    sbs6 = fold_labels("SBS6")
    assert [SBS6[sbs6[SBS96.index(lab)]] for lab in ("A[C>T]G", "T[T>G]C")] == ["C>T", "T>G"]
    id12 = [ID12[i] for i in fold_labels("ID12")]
    assert id12[ID83.index("1:Del:C:3")] == "1:Del:C"
    assert id12[ID83.index("1:Ins:T:5")] == "1:Ins:T"
    assert id12[ID83.index("3:Del:M:2")] == id12[ID83.index("3:Del:R:0")] == "3:Del"
    assert id12[ID83.index("5:Ins:R:4")] == "5:Ins"
    # every derived channel receives at least one source channel
    assert set(fold_labels("SBS6")) == set(range(6)) and set(fold_labels("ID12")) == set(range(12))


def test_dbs_strand_collapse():
    # GT>CA on the minus strand is AC>TG on the plus strand.
    assert canonical_dbs("GT", "CA") == "AC>TG"
    # Both spellings of a palindromic doublet land on the one COSMIC label.
    for ref in ("AT", "CG", "GC", "TA"):
        for label in [lab for lab in DBS78 if lab.startswith(ref)]:
            alt = label[3:]
            assert canonical_dbs(ref, revcomp(alt)) == label


def test_colors_cover_every_channel():
    assert all(channel_color(lab).startswith("#") for _, lab in all_channels())
    assert channel_color("A[C>T]G") == "#E32926"
