"""Gene tokens for inputs without gene columns (VCFs): interval overlap against a user's annotation.

`--genes FILE` takes a BED (chrom, start, end, name; 0-based half-open), a GTF (`gene` features,
`gene_name`, else `gene_id`) or a GFF3 (`gene` features, `Name`, else `gene_name`, else `ID`). Lookup
is vectorised per contig: intervals sorted by start, `searchsorted` for the last gene starting at or
before each position, and a prefix maximum of the ends to find genes that start earlier and still
cover it (nested or overlapping genes; the latest-starting covering gene wins). The consequence stays
unknown: no transcript model is applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.reference import contig_key
from nanog1.genomics.variants import InputError

#: Attribute patterns naming a gene, in order of preference.
_GTF_NAMES = (r'gene_name "([^"]+)"', r'gene_id "([^"]+)"')
_GFF_NAMES = (r"(?:^|;)Name=([^;]+)", r"(?:^|;)gene_name=([^;]+)", r"(?:^|;)ID=([^;]+)")


def read_gene_intervals(path: Path) -> pd.DataFrame:
    """Gene intervals as (contig, start0, end0, name), contigs spelled canonically ('chr1' -> '1')."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    try:
        frame = pd.read_csv(path, sep="\t", header=None, comment="#", dtype=str, quoting=3)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(str(path), None, f"not a readable gene annotation ({err})") from err
    if name.endswith((".gtf", ".gff", ".gff3")):
        if frame.shape[1] < 9:
            raise InputError(str(path), None, "GTF/GFF3 needs 9 tab-separated columns")
        frame = frame[frame[2] == "gene"]
        names = pd.Series(np.nan, index=frame.index, dtype=object)
        for pattern in _GTF_NAMES if name.endswith(".gtf") else _GFF_NAMES:
            names = names.fillna(frame[8].str.extract(pattern, expand=False))
        out = pd.DataFrame(
            {
                "contig": frame[0],
                "start": frame[3].astype(np.int64) - 1,
                "end": frame[4].astype(np.int64),
                "name": names,
            }
        )
    else:
        if frame.shape[1] < 4:
            raise InputError(str(path), None, "BED needs chrom, start, end and name columns")
        out = pd.DataFrame(
            {
                "contig": frame[0],
                "start": frame[1].astype(np.int64),
                "end": frame[2].astype(np.int64),
                "name": frame[3],
            }
        )
    out = out.dropna(subset=["name"])
    out["contig"] = out["contig"].map(contig_key)
    return out.reset_index(drop=True)


class GeneIndex:
    """Sorted gene intervals per contig; `lookup` names the gene covering each (contig, 1-based pos)."""

    def __init__(self, intervals: pd.DataFrame) -> None:
        self._by_contig = {}
        for contig, part in intervals.sort_values(["contig", "start"]).groupby("contig", sort=False):
            ends = part["end"].to_numpy()
            self._by_contig[contig] = (
                part["start"].to_numpy(),
                ends,
                np.maximum.accumulate(ends),
                part["name"].to_numpy(dtype=object),
            )

    @classmethod
    def from_file(cls, path: Path) -> GeneIndex:
        """Read a BED/GTF/GFF3 annotation."""
        return cls(read_gene_intervals(path))

    def lookup(self, contigs: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Gene name per position ('' where none covers it); contigs in any common spelling."""
        out = np.full(len(pos), "", dtype=object)
        keys = pd.Series(contigs, dtype=object)
        keys = keys.map({c: contig_key(str(c)) for c in keys.unique()}).to_numpy(dtype=object)
        for contig in np.unique(keys):
            if contig not in self._by_contig:
                continue
            rows = np.flatnonzero(keys == contig)
            out[rows] = self._lookup_contig(contig, np.asarray(pos)[rows] - 1)
        return out

    def _lookup_contig(self, contig: str, pos0: np.ndarray) -> np.ndarray:
        starts, ends, reach, names = self._by_contig[contig]
        last = np.searchsorted(starts, pos0, side="right") - 1
        out = np.full(len(pos0), "", dtype=object)
        valid = last >= 0
        direct = valid & (ends[np.maximum(last, 0)] > pos0)
        out[direct] = names[last[direct]]
        # Covered by an earlier-starting gene only (nested/overlapping): walk back, few positions.
        for i in np.flatnonzero(valid & ~direct & (reach[np.maximum(last, 0)] > pos0)):
            j = last[i]
            while j >= 0 and ends[j] <= pos0[i]:
                j -= 1
            out[i] = names[j]
        return out
