"""Channel lists equal the row order of the COSMIC reference tables shipped on PyPI."""

from __future__ import annotations

from importlib.resources import files

import pandas as pd
import pytest

from nanog1.genomics.channels import (
    CHANNEL_SETS,
    DBS78,
    ID83,
    SBS96,
    all_channels,
    canonical_dbs,
    channel_color,
    revcomp,
)


def _cosmic(name: str) -> pd.DataFrame:
    root = files("SigProfilerAssignment") / "data" / "Reference_Signatures" / "GRCh37"
    return pd.read_csv(str(root / f"COSMIC_v3.4_{name}_GRCh37.txt"), sep="\t", index_col=0)


@pytest.mark.parametrize("name,labels", [("SBS", SBS96), ("DBS", DBS78), ("ID", ID83)])
def test_order_matches_cosmic(name, labels):
    assert list(_cosmic(name).index) == list(labels)


def test_sizes_and_uniqueness():
    assert [len(v) for v in CHANNEL_SETS.values()] == [96, 78, 83]
    assert len(set(all_channels())) == 96 + 78 + 83


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
