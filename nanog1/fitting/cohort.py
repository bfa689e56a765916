"""Fit signatures to every channel set of a cohort AnnData and record the results in it.

Writes the contract keys: obsm['exposures_<set>'] (DataFrame of attributed mutations),
obs['fit_cosine_<set>'], and uns['signature_fit'] (COSMIC version, genome build, method, settings,
and per set uns['signature_fit'][<set>]: the signature names and table used, its SHA-256, and the
bootstrap and opportunity settings). With a bootstrap: obsm['exposures_<set>_lo'/'_hi'/'_presence'],
obs['fit_stability_<set>'] and obs['fit_low_burden_<set>']. With opportunity rescaling (SBS96):
obsm['exposures_SBS96_genome'] (genome-equivalent exposures). With event tokens:
uns['tokens']['sig_prob_<set>'] / ['sig_names_<set>'] (per-mutation probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.fitting.bootstrap import BootstrapConfig, bootstrap_exposures
from nanog1.fitting.fit import FitConfig, FitResult, fit_signatures
from nanog1.genomics.channels import CHANNEL_SETS, EXACT, PARTIAL, SIGNATURE_SETS
from nanog1.genomics.signatures import ReferenceSpec, read_signatures, reference_path
from nanog1.io import file_sha256
from nanog1.progress import step
from nanog1.schema import channel_sets_present


def present_sets(adata) -> list[str]:
    """Signature sets (SBS96/DBS78/ID83) the cohort measured exactly (nanog1.schema.channel_sets_present)."""
    present = channel_sets_present(adata)
    return [cs for cs in SIGNATURE_SETS if cs in present]


def check_fittable(adata, sets: list[str], name: str = "cohort") -> None:
    """Refuse, in one line naming the cohort, to fit a set it did not measure (e.g. SBS96 signatures on a
    cohort ingested without a reference, which holds SBS6 only) or a set with no reference signatures."""
    unknown = [cs for cs in sets if cs not in SIGNATURE_SETS]
    if unknown:
        raise UserError(
            f"{name}: no COSMIC signatures for {', '.join(unknown)}; fit one of {', '.join(SIGNATURE_SETS)}"
        )
    have = present_sets(adata)
    missing = [cs for cs in sets if cs not in have]
    if missing:
        meta = adata.uns.get("nanog1", {})
        status = dict(meta.get("channel_sets") or {})
        measured = [str(k) for k, v in status.items() if str(v) == EXACT] or have
        partial = [cs for cs in missing if str(status.get(cs)) == PARTIAL]
        why = "ingested without a reference?"
        if partial:
            exact_for = dict(meta.get("exact_for") or {})
            n = len(exact_for.get(partial[0], []))
            why = (
                f"{', '.join(partial)} partial: some samples were ingested without a reference, had"
                f" calls on contigs it lacks, or came from files that do not cover it (a Strelka2 SNV file"
                f" without its indel file); exact for the {n} samples in"
                " uns['nanog1']['exact_for'], fit those alone"
            )
        raise UserError(
            f"{name}: cannot fit {', '.join(missing)} signatures: the cohort does not hold exact "
            f"{', '.join(missing)} counts ({why}); it holds {', '.join(measured) or 'none'}"
        )


@dataclass(frozen=True)
class Opportunity:
    """What the catalogues cover: 'genome', 'exome' or 'panel'; a FASTA and BED make SBS96 rescaled fits.

    An exome without a BED uses COSMIC's exome-normalised tables; a panel needs FASTA and BED.
    """

    kind: str = "genome"
    fasta: str | None = None
    bed: str | None = None


@dataclass(frozen=True)
class CohortFitOptions:
    """Signature choice (subset, own tables per set), bootstrap, opportunity and per-mutation export."""

    subset: tuple[str, ...] = ()
    tables: dict[str, str] = field(default_factory=dict)
    bootstrap: BootstrapConfig | None = None
    opportunity: Opportunity = field(default_factory=Opportunity)
    per_mutation: bool = False


def own_tables(paths: list[str | Path]) -> dict[str, str]:
    """Map each user table to its channel set (inferred from its row count); one table per set."""
    out: dict[str, str] = {}
    by_len = {len(v): k for k, v in CHANNEL_SETS.items()}
    for path in paths:
        n = len(read_signatures(path).index)
        cs = by_len[n]
        if cs in out:
            raise UserError(f"{path}: a second {cs} table (first: {out[cs]})")
        out[cs] = str(path)
    return out


def _table(cs: str, spec: ReferenceSpec, options: CohortFitOptions) -> tuple[pd.DataFrame, str]:
    """Signatures for one set (own table or COSMIC), limited to the subset, and the file they came from."""
    path = Path(options.tables[cs]) if cs in options.tables else reference_path(spec)
    table = read_signatures(path, cs)
    if options.subset:
        table = table[[c for c in table.columns if c in options.subset]]
    return table, str(path)


def _check_subset(subset: tuple[str, ...], tables: dict[str, pd.DataFrame]) -> None:
    known = {c for t in tables.values() for c in t.columns}
    unknown = sorted(set(subset) - known)
    if unknown:
        raise UserError(f"--signatures names not in the signature tables used: {unknown}")


def _opportunity_fit(adata, cs, table, config, opportunity: Opportunity, record: dict):
    """Fit SBS96 against opportunity-rescaled signatures; genome-equivalent exposures in obsm."""
    from nanog1.fitting.opportunity import fit_with_opportunity
    from nanog1.genomics.opportunity import count_contexts

    target, genome = count_contexts(opportunity.fasta, opportunity.bed), count_contexts(opportunity.fasta)
    fitted = fit_with_opportunity(adata.to_df()[list(CHANNEL_SETS[cs])], table, target, genome, config)
    adata.obsm[f"exposures_{cs}_genome"] = fitted.genome_equivalent.set_axis(adata.obs_names)
    record["opportunity"] = {
        "kind": opportunity.kind,
        "fasta": str(opportunity.fasta),
        "bed": str(opportunity.bed),
        "bed_sha256": file_sha256(opportunity.bed),
        "contexts": list(target.index),
        "target_counts": target.to_numpy(np.float64),
        "genome_counts": genome.to_numpy(np.float64),
        "capture": fitted.capture.to_numpy(np.float64),
        "scale": "obsm['exposures_SBS96'] = mutations in the target; _genome = whole-genome equivalent",
    }
    return fitted.fit, fitted.signatures


def _bootstrap(adata, cs, catalogue, table, res: FitResult, config, boot: BootstrapConfig, record: dict):
    """Bootstrap intervals, presence, stability and the low-burden flag into obsm/obs."""
    with step(f"signatures fit: {cs} bootstrap, {len(catalogue)} samples x {boot.draws} draws"):
        out = bootstrap_exposures(catalogue, table, res.exposures, config, boot)
    for name, frame in (("lo", out.lo), ("hi", out.hi), ("presence", out.presence)):
        adata.obsm[f"exposures_{cs}_{name}"] = frame.set_axis(adata.obs_names)
    adata.obs[f"fit_stability_{cs}"] = out.stability.to_numpy()
    adata.obs[f"fit_low_burden_{cs}"] = out.low_burden.to_numpy()
    settings = boot.settings()
    settings["candidates"] = settings["candidates"] if settings["candidates"] is not None else -1
    record["bootstrap"] = settings


def _check_counts(adata, sets: list[str], name: str) -> None:
    """Refuse NaN, inf or negative values in the sets to fit, naming the first (they were fitted as zero
    exposures with cosine 0, or as if the negative count were a mutation)."""
    channels = [c for cs in sets for c in CHANNEL_SETS[cs]]
    values = adata[:, channels].X
    values = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UserError(f"{name}: X holds {int(bad.sum())} negative or non-finite value(s) in "
                        f"{'+'.join(sets)} (first: sample {adata.obs_names[row]!r}, channel "
                        f"{channels[col]!r} = {values[row, col]}): X must be mutation counts, finite, >= 0")


def _fit_set(adata, cs, config, options, table, path) -> FitResult:
    """Fit one channel set and write its keys; returns the point fit (one progress line when done)."""
    with step(f"signatures fit: {cs}, {adata.n_obs} samples, {table.shape[1]} signatures") as shown:
        res = _fit_set_keys(adata, cs, config, options, table, path)
        shown["median_cosine"] = float(np.median(res.cosine.to_numpy()))
    return res


def _fit_set_keys(adata, cs, config, options, table, path) -> FitResult:
    record = {"signatures": [str(c) for c in table.columns], "table": path, "table_sha256": file_sha256(path)}
    catalogue = adata.to_df()[list(CHANNEL_SETS[cs])]
    opp = options.opportunity
    if cs == "SBS96" and opp.kind in ("exome", "panel") and opp.bed:
        res, table = _opportunity_fit(adata, cs, table, config, opp, record)
    else:
        res = fit_signatures(catalogue, table, config)
    adata.obsm[f"exposures_{cs}"] = pd.DataFrame(
        res.exposures.to_numpy(), index=adata.obs_names, columns=[str(c) for c in table.columns]
    )
    adata.obs[f"fit_cosine_{cs}"] = res.cosine.to_numpy()
    if options.bootstrap is not None:
        _bootstrap(adata, cs, catalogue, table, res, config, options.bootstrap, record)
    if options.per_mutation and "tokens" in adata.uns:
        from nanog1.fitting.per_mutation import annotate_tokens

        annotate_tokens(adata, table, cs)
        record["per_mutation"] = f"uns['tokens']['sig_prob_{cs}']"
    adata.uns.setdefault("signature_fit", {})[cs] = record
    return res


def fit_cohort(
    adata,
    config: FitConfig | None = None,
    channel_sets: list[str] | None = None,
    cosmic_version: str = "3.4",
    genome_build: str = "GRCh37",
    exome: bool = False,
    options: CohortFitOptions | None = None,
    name: str = "cohort",
) -> dict[str, FitResult]:
    """Fit each channel set of `adata` in place and return the per-set results (see module docstring).

    Only sets the cohort measured exactly are fitted; asking for another is an error naming `name`.
    """
    from nanog1.schema import require_anndata

    require_anndata(adata, "fit_cohort")
    config = config or FitConfig()
    options = options or CohortFitOptions()
    opp = options.opportunity
    if opp.kind not in ("genome", "exome", "panel"):
        raise UserError(f"unknown opportunity {opp.kind!r}; expected genome, exome or panel")
    if opp.kind == "panel" and not (opp.bed and opp.fasta):
        raise UserError("a panel fit needs --bed (captured regions) and --reference (FASTA)")
    if opp.bed and not opp.fasta:
        raise UserError("--bed needs --reference (the FASTA the regions refer to)")
    exome = exome or (opp.kind == "exome" and not opp.bed)
    sets = list(channel_sets or present_sets(adata))
    check_fittable(adata, sets, name)
    if not sets:
        raise UserError(f"{name}: holds none of {', '.join(SIGNATURE_SETS)} exactly; nothing to fit")
    _check_counts(adata, sets, name)
    tables = {cs: _table(cs, ReferenceSpec(cs, cosmic_version, genome_build, exome), options) for cs in sets}
    _check_subset(options.subset, {cs: t for cs, (t, _) in tables.items()})
    adata.uns["signature_fit"] = {
        "cosmic_version": cosmic_version,
        "genome_build": genome_build,
        "exome": exome,
        "opportunity": opp.kind,
        "method": config.method,
        "settings": {k: (v if v is not None else -1) for k, v in config.settings().items()},
        "subset": list(options.subset),
        "source": "COSMIC reference signatures shipped by SigProfilerAssignment (or the user's tables)",
    }
    results = {}
    for cs, (table, path) in tables.items():
        if table.shape[1] == 0:
            continue
        results[cs] = _fit_set(adata, cs, config, options, table, path)
    adata.uns["signature_fit"]["channel_sets"] = list(results)
    return results
