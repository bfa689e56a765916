"""Protein changes of a MAF (`HGVSp_Short`, `Protein_Change`) as allele-agnostic codon keys.

Why: recurrent coding hotspots are codons, not alleles: KRAS G12D / G12V / G12C, IDH1 R132H / R132C and
PIK3CA E545K / E545A are one codon each, and the cancer-type predictors of the literature key them by
gene and amino-acid position. Genomic sites (the hotspot bag's `contig:position`) split one codon into up
to three positions and one amino-acid change into its alleles; the codon key groups them.

Rule (stated; `codon_key`): the key is the *first* reference residue named by the change and its
position, `p.<residue><position>`; the gene is added by the caller (`KRAS:p.G12`). Spellings read:

* HGVS short form with or without `p.` (MC3's VEP, Firehose's Oncotator): `p.G12D`, `G12D`, `p.R132H`,
  `p.V11V` and `p.V11=` (synonymous), `p.K120fs`, `p.K120Rfs*5`, `p.E746_A750del`, `p.A2_M3insTTMA`,
  `p.*123Qext*29` (stop lost: `p.*123`), `p.M1?`, splice `p.X125_splice` (`p.X125`: MC3 names no residue
  at a splice junction), Oncotator's runs `p.YST657del` (`p.Y657`) and `p.VK113fs` (`p.V113`);
* Oncotator's position-first form `p.746_750ELREA>A` (`p.E746`);
* three-letter residues (`p.Gly12Asp`, as full HGVSp writes them) -> one letter (`p.G12`).

Missing (empty key), counted by reason in `tally`: `none` for no protein change (empty, `.`, `""`,
`NA`, `p.=`, `p.?`: non-coding variants); `unrecognised` for a change that names no reference residue
(Oncotator's `p.-146fs`, `p.105_106insHH`: an insertion between residues) or any other spelling.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

#: Reasons a protein change gives no codon key (see the module docstring).
MISSING_REASONS = ("none", "unrecognised")
_NONE = {"", ".", '""', "NA", "NAN", "P.", "P.=", "P.%3D", "P.?", "P.0", "P.0?"}
_THREE = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E", "Gly": "G",
    "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F", "Pro": "P", "Ser": "S",
    "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*", "Sec": "U", "Xaa": "X",
}  # fmt: skip
_THREE_RE = re.compile("|".join(_THREE))
_RESIDUE_FIRST = re.compile(r"([A-Z*]+?)([A-Z*]*)(\d+)")
_POSITION_FIRST = re.compile(r"(\d+)(?:_\d+)?([A-Z*]+)>")


def codon_key(change: str | None) -> str:
    """The codon key `p.<residue><position>` of one protein change, '' when it has none (see above)."""
    text, _ = _parse(change)
    return text


def _parse(change: str | None) -> tuple[str, str]:
    """(codon key or '', '' or the reason it is missing)."""
    text = (change or "").strip().strip('"').replace("%3D", "=")
    if text.upper() in _NONE:
        return "", "none"
    text = _THREE_RE.sub(lambda m: _THREE[m.group(0)], text[2:] if text[:2].lower() == "p." else text)
    found = _RESIDUE_FIRST.match(text)
    if found:
        return f"p.{found.group(1)[0]}{int(found.group(3))}", ""
    found = _POSITION_FIRST.match(text)
    if found:
        return f"p.{found.group(2)[0]}{int(found.group(1))}", ""
    return "", "unrecognised"


def codon_categorical(values) -> pd.Categorical:
    """Codon keys of a column of protein changes (a Categorical or strings), parsed once per distinct
    value ('' where there is none)."""
    cat = _as_categorical(values)
    keys = [codon_key(str(c)) for c in cat.categories] + [""]
    parsed = pd.Categorical(keys)
    codes = np.asarray(cat.codes, dtype=np.int64)
    return pd.Categorical.from_codes(parsed.codes[np.where(codes >= 0, codes, len(keys) - 1)],
                                     parsed.categories)  # fmt: skip


def _as_categorical(values) -> pd.Categorical:
    return values if isinstance(values, pd.Categorical) else pd.Categorical(np.asarray(values, dtype=object))


def tally(columns: list) -> Counter:
    """Events with a codon key (`codon`) and without one, by reason (`none`, `unrecognised`), over
    columns of protein changes (Categoricals or strings; None = an input without the column: `none`)."""
    out: Counter = Counter()
    for values in columns:
        if values is None:
            continue
        cat = _as_categorical(values)
        counts = np.bincount(np.asarray(cat.codes, dtype=np.int64) + 1, minlength=len(cat.categories) + 1)
        out["none"] += int(counts[0])
        for name, n in zip(cat.categories, counts[1:], strict=True):
            if n:
                out[_parse(str(name))[1] or "codon"] += int(n)
    return out
