"""Tensors from an AnnData cohort: catalogue counts, type labels, exposure targets and event tokens.

The cohort format is the shared contract (X = samples x N_CHANNELS of nanog1.genomics.channels;
obs['cancer_type']; obsm['exposures_<set>']; uns['tokens']). Batches are built by a collate callable so
that the same Dataset of sample indices serves a RandomSampler, a DistributedSampler or plain evaluation
order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from nanog1.encoder.contrastive import augment_view
from nanog1.errors import UserError
from nanog1.genomics import event_vocab as ev
from nanog1.genomics.gene_bag import (
    canonical_site,
    gene_bag,
    gene_pairs,
    hotspot_pairs,
    key_of,
    named_hotspot_hits,
    top_genes,
)
from nanog1.schema import (
    CANCER_TYPE,
    N_CHANNELS,
    SET_GROUPS,
    SET_NAMES,
    SET_SIZES,
    TOKENS,
    SchemaError,
    channel_padding_per_sample,
    is_per_token,
    row_tokens,
)

EVENT_FIELDS = ev.FIELDS


@dataclass
class CohortArrays:
    """Numpy views of one cohort, aligned on obs order."""

    sample_ids: list[str]
    counts: np.ndarray
    channel_padding: np.ndarray
    labels: np.ndarray
    classes: list[str]
    exposures: dict[str, np.ndarray] = field(default_factory=dict)
    signature_names: dict[str, list[str]] = field(default_factory=dict)
    signature_matrices: dict[str, np.ndarray] = field(default_factory=dict)
    tokens: dict | None = None  # the cohort's uns['tokens'] (its own ids and string tables)
    event_ids: dict[str, np.ndarray] | None = None  # model ids per field + 'offsets' (`with_event_vocab`)
    event_vocab: ev.EventVocab | None = None  # the vocabulary those ids index
    gene_bag: np.ndarray | None = None  # [n, K + H] 0/1 over a model's bag genes, then its hotspot sites
    gene_bag_genes: list[str] = field(default_factory=list)  # those K genes, in column order
    gene_bag_sites: list[str] = field(default_factory=list)  # those H sites ("contig:position"), in order
    # The bag ends with the consequence shares (`consequence_shares`) divided by these sds; None: no shares.
    consequence_scale: list[float] | None = None
    #: [n, N_CHANNELS] True on the sets each sample did not measure, where samples differ (a Strelka2 SNV
    #: file's tumour beside a complete one); None when every sample measured the same sets. Every batch
    #: key-pads them per row (`Collate`), beside `channel_padding` (the sets no sample measured).
    row_padding: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.sample_ids)

    @property
    def shared_padding(self) -> np.ndarray:
        """[N_CHANNELS] True on the sets some sample did not measure: what readers of the cohort as a whole
        (the baselines' features, the profile test of held-out metrics) leave out."""
        if self.row_padding is None:
            return self.channel_padding
        return self.channel_padding | self.row_padding.any(axis=0)

    @property
    def bag_entries(self) -> slice:
        """The `gene_bag` columns that are 0/1 entries (its genes, then its hotspot sites); the columns after
        them are the consequence shares (continuous, one per `consequence_scale` value). The one statement
        of the bag's layout that a contrastive view reads: it drops entries and jitters shares."""
        width = 0 if self.gene_bag is None else self.gene_bag.shape[1]
        return slice(0, width - len(self.consequence_scale or []))


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)


def encode_labels(
    types: pd.Series, classes: list[str] | None, min_class_size: int
) -> tuple[np.ndarray, list]:
    """Integer labels (-1 = unknown or too rare) and the class list (given, or sorted frequent types)."""
    values = types.astype("object").where(types.notna(), None)
    if classes is None:
        counts = values.value_counts()
        classes = sorted(str(k) for k, c in counts.items() if c >= min_class_size)
    lookup = {c: i for i, c in enumerate(classes)}
    labels = np.array([lookup.get(str(v), -1) if v is not None else -1 for v in values], dtype=np.int64)
    return labels, list(classes)


def exposure_targets(adata) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Exposure proportions per channel set from obsm['exposures_<set>'] (rows with no mutations are 0)."""
    props, names = {}, {}
    for name in SET_NAMES:
        key = f"exposures_{name}"
        if key not in adata.obsm:
            continue
        table = adata.obsm[key]
        values = np.asarray(table, dtype=np.float64)
        cols = (
            [str(c) for c in table.columns]
            if isinstance(table, pd.DataFrame)
            else [f"{name}_{i}" for i in range(values.shape[1])]
        )
        totals = values.sum(1, keepdims=True)
        props[name] = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0).astype(
            np.float32
        )
        names[name] = cols
    return props, names


def signature_matrices(adata, names: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Reference signatures [channels, K] for each set's exposure columns, when they can be found."""
    settings = dict(adata.uns.get("signature_fit") or {})
    out = {}
    try:
        from nanog1.genomics.signatures import ReferenceSpec, load_reference
    except ImportError:
        return out
    for name, cols in names.items():
        spec_kw = {k: str(settings[k]) for k in ("cosmic_version", "genome_build") if k in settings}
        try:
            ref = load_reference(ReferenceSpec(channel_set=name, **spec_kw))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
        if set(cols) <= set(ref.columns):
            out[name] = ref[cols].to_numpy(dtype=np.float32)
    return out


def require_types(arrays: CohortArrays, needed_by: str, alternative: str = "", source: object = None) -> None:
    """UserError (naming the `source` file, when given) unless `arrays` holds at least two cancer types,
    each of >= min_class_size samples."""
    if len(arrays.classes) >= 2:
        return
    found = "no labelled samples" if not len(arrays.classes) else f"only the type {arrays.classes[0]!r}"
    where = f"{source}: " if source is not None else ""
    alternative = f", {alternative}" if alternative else ""
    raise UserError(f"{where}{needed_by} needs obs[{CANCER_TYPE!r}] with at least two types of"
                    f" >= min_class_size samples, and the cohort has {found} (label it with a sample sheet"
                    f" at `nanog1 ingest` or `nanog1 cohort merge`{alternative})")


def cohort_arrays(adata, classes: list[str] | None = None, min_class_size: int = 2) -> CohortArrays:
    """Everything training needs from one AnnData cohort."""
    if adata.n_vars != N_CHANNELS:
        raise UserError(
            f"cohort has {adata.n_vars} channels; the format needs {N_CHANNELS} ({'+'.join(SET_NAMES)}); "
            "re-ingest it or pass it through nanog1.genomics.cohort.conform_cohort"
        )
    counts = _dense(adata.X)
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():  # NaN/negative counts gave NaN probabilities, typed all the same, or a numpy error
        row, col = np.argwhere(bad)[0]
        raise UserError(f"cohort X holds {int(bad.sum())} negative or non-finite value(s) (first: sample "
                        f"{adata.obs_names[row]!r}, channel {adata.var_names[col]!r} = {counts[row, col]}): "
                        "X must be mutation counts, finite and >= 0 (not normalised or log values)")
    types = adata.obs[CANCER_TYPE] if CANCER_TYPE in adata.obs else pd.Series([None] * adata.n_obs)
    labels, classes = encode_labels(types, classes, min_class_size)
    props, names = exposure_targets(adata)
    tokens = row_tokens(adata) if TOKENS in adata.uns else None
    padding, rows = measured_padding(adata)
    return CohortArrays(
        sample_ids=[str(s) for s in adata.obs_names],
        counts=counts,
        channel_padding=padding,
        row_padding=rows,
        labels=labels,
        classes=classes,
        exposures=props,
        signature_names=names,
        signature_matrices=signature_matrices(adata, names),
        tokens=tokens or None,
    )


def measured_padding(adata) -> tuple[np.ndarray, np.ndarray | None]:
    """(channels no sample measured [N_CHANNELS], per-sample padding [n, N_CHANNELS] or None when every
    sample measured the same sets), from `schema.measured_sets_per_sample`. Refuses a cohort that
    measured no set at all."""
    rows = channel_padding_per_sample(adata)
    padding = rows.all(axis=0) if len(rows) else np.zeros(N_CHANNELS, dtype=bool)
    if len(rows) and padding.all():
        raise SchemaError(f"the cohort measured none of the channel sets {', '.join(SET_NAMES)} "
                          "(uns['nanog1']['channel_sets'] marks none exact): re-ingest it")
    if not len(rows):
        from nanog1.schema import channel_padding

        padding = channel_padding(adata)
    return padding, (rows if (rows != padding).any() else None)


def with_event_vocab(arrays: CohortArrays, vocab: ev.EventVocab) -> CohortArrays:
    """The cohort's tokens as a model's ids (values the vocabulary lacks -> UNK; ids checked in range)."""
    if arrays.tokens is None:
        raise UserError("the event view needs uns['tokens'] in the cohort (ingest it from VCF/MAF files)")
    ids = ev.encode(arrays.tokens, vocab)
    ev.check_ids(ids, vocab.sizes())
    offsets = np.asarray(arrays.tokens["offsets"], dtype=np.int64)
    return replace(arrays, event_ids=ids | {"offsets": offsets}, event_vocab=vocab)


def bag_genes(arrays: CohortArrays, train_idx: np.ndarray, k: int) -> list[str]:
    """The k genes mutated in most tumours of `train_idx` (nanog1.genomics.gene_bag: chosen from those
    samples only, so a held-out sample never picks a bag gene)."""
    rows, genes = gene_pairs(arrays.event_ids["offsets"], arrays.event_ids["gene"])
    values = arrays.event_vocab.values["gene"]
    return [values[g - ev.N_SPECIAL] for g in top_genes(rows, genes, np.asarray(train_idx), k)]


def bag_sites(
    arrays: CohortArrays, train_idx: np.ndarray, min_count: int, k: int = 2000, key: str = "site"
) -> list[str]:
    """The hotspots mutated in >= `min_count` tumours of `train_idx`, at most k, commonest first
    (nanog1.genomics.gene_bag: chosen from those samples only), keyed by `key`: sites
    ("contig:position"), codons ("KRAS:p.G12", from the ingested protein changes) or both. None without
    token positions (arrays built without a cohort's tokens)."""
    if arrays.tokens is None or "pos" not in arrays.tokens:
        return []
    if key != "site" and "codon" not in arrays.tokens:
        raise UserError(f"hotspot_key {key!r} needs protein changes: this cohort was ingested without a "
                        "protein-change column (MAF HGVSp_Short / Protein_Change); use hotspot_key 'site'")
    rows, sites, table = hotspot_pairs(arrays.tokens, key)
    chosen = top_genes(rows, sites, np.asarray(train_idx), k, min_count=min_count)
    return [str(s) for s in table[chosen - ev.N_SPECIAL]]


def consequence_shares(arrays: CohortArrays) -> np.ndarray:
    """[n, C] each sample's share of its events per consequence of the vocabulary (C values, UNK not a
    column), over all of its events: the whole tumour's consequence mix (silent, missense, nonsense...),
    which a window of max_events tokens only samples."""
    off, ids = arrays.event_ids["offsets"], arrays.event_ids["consequence"]
    n_values = len(arrays.event_vocab.values["consequence"])
    lengths = np.diff(off)
    rows = np.repeat(np.arange(arrays.n), lengths)
    known = ids >= ev.N_SPECIAL
    flat = rows[known] * n_values + ids[known] - ev.N_SPECIAL
    counts = np.bincount(flat, minlength=arrays.n * n_values).reshape(arrays.n, n_values)
    return (counts / np.maximum(lengths, 1)[:, None]).astype(np.float32)


def consequence_scale(
    arrays: CohortArrays, train_idx: np.ndarray, shares: np.ndarray | None = None
) -> list[float]:
    """Per consequence, the sd of its share over the `train_idx` samples (1 where it never varies): the
    divisor that puts a rare consequence's share (nonsense, frameshift: sd ~0.01) on the scale of the 0/1
    bag columns, as the TCGA event benchmark's standardised summary does (BENCHMARKS.md, issue 28/31).
    `shares`: `consequence_shares(arrays)` when the caller has it already."""
    shares = consequence_shares(arrays) if shares is None else shares
    sd = shares[np.asarray(train_idx)].std(0)
    return np.where(sd > 1e-6, sd, 1.0).astype(float).tolist()


def with_gene_bag(
    arrays: CohortArrays,
    genes: list[str],
    sites: list[str] = (),
    consequence_scale: list[float] | None = None,
    shares: np.ndarray | None = None,
) -> CohortArrays:
    """Each sample's 0/1 bag over `genes` (a model's bag, by name), then over its hotspot `sites`, every
    one of its events counted (a site no event of this cohort hits is a column of zeros), then, given a
    `consequence_scale` (a model's, `consequence_scale`), its consequence shares divided by it (`shares`:
    `consequence_shares(arrays)` when the caller has it already). `CohortArrays.bag_entries` states this
    layout."""
    ids = pd.Index(arrays.event_vocab.values["gene"]).get_indexer(genes)
    if (ids < 0).any():
        missing = np.asarray(genes)[ids < 0][:5]
        raise UserError(f"gene-bag genes missing from the model's vocabulary: {', '.join(missing)}")
    rows, found = gene_pairs(arrays.event_ids["offsets"], arrays.event_ids["gene"])
    bag = gene_bag(rows, found, ids + ev.N_SPECIAL, arrays.n)
    if len(sites):
        names = [canonical_site(s) for s in sites]
        rows, hit, table = named_hotspot_hits(arrays.tokens, names, key_of(sites))
        chosen = pd.Index(table).get_indexer(names) + ev.N_SPECIAL  # a site no token hits: a zero column
        bag = np.hstack([bag, gene_bag(rows, hit, chosen, arrays.n)])
    if consequence_scale is not None:
        scale = np.asarray(consequence_scale, dtype=np.float32)
        n_values = len(arrays.event_vocab.values["consequence"])
        if len(scale) != n_values:
            raise UserError(f"{len(scale)} consequence scales for the vocabulary's {n_values} consequences")
        shares = consequence_shares(arrays) if shares is None else shares
        bag = np.hstack([bag, shares / scale])
    return replace(arrays, gene_bag=bag, gene_bag_genes=list(genes), gene_bag_sites=list(sites),
                   consequence_scale=None if consequence_scale is None else list(consequence_scale))


def for_model(arrays: CohortArrays, encoder_config: dict) -> CohortArrays:
    """Arrays as a saved model reads them: event ids in the model's own vocabulary (event view), without
    the events of the kinds of call each tumour did not measure (`without_unmeasured`: declared with
    `--not-measured`, or unmeasured by nature), and its gene and hotspot bag, counted over the events left,
    when it has one. The one path of every saved model's scoring (predict, score, evaluate, embed,
    finetune); a catalogue model's arrays are returned as they are."""
    if encoder_config.get("view") != "events":
        return arrays
    arrays = with_event_vocab(arrays, ev.EventVocab(values=encoder_config["event_vocab"]))
    arrays = without_unmeasured(arrays)  # before the bag: genes, sites and shares of the events read only
    genes, sites = encoder_config.get("gene_bag") or [], encoder_config.get("hotspots") or []
    scale = encoder_config.get("consequence_scale") if encoder_config.get("consequence_shares") else None
    return with_gene_bag(arrays, genes, sites, scale) if genes or sites or scale is not None else arrays


#: The channel sets an SNV-only input lacks (a Strelka2 SNV file alone, a VarScan2 .snp.vcf): its ingest
#: records them unmeasured (obsm['measured_sets']).
INDEL_SETS = ("ID83", "ID12")


def indel_channels() -> np.ndarray:
    """[N_CHANNELS] True on the channels of `INDEL_SETS`."""
    owner = np.repeat(np.arange(len(SET_NAMES)), SET_SIZES)
    return np.isin(owner, [SET_NAMES.index(s) for s in INDEL_SETS])


def indel_events(arrays: CohortArrays) -> np.ndarray:
    """[events] True on each event (in `event_ids` order) whose channel is an indel (ID83 or ID12 class), read
    from the model vocabulary's channel strings ("ID12:1:Del:C:0"); an UNK channel counts as no indel."""
    values = arrays.event_vocab.values["channel"]
    is_indel = np.array([False] * ev.N_SPECIAL + [str(v).split(":", 1)[0] in INDEL_SETS for v in values])
    return is_indel[np.asarray(arrays.event_ids["channel"], dtype=np.int64)]


def without_indels(arrays: CohortArrays, rows: np.ndarray | None = None) -> CohortArrays:
    """The cohort as an SNV-only input of the tumours `rows` (default all) would give it: their indel events
    gone (event ids and tokens alike), their ID83/ID12 counts 0 and marked unmeasured (`row_padding`), and,
    when the arrays carry a bag, each tumour's bag and consequence shares recomputed from what is left (the
    same genes, sites and scale). Event view arrays (`with_event_vocab`) only."""
    n = arrays.n
    chosen = np.zeros(n, dtype=bool)
    chosen[np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)] = True
    owner = np.repeat(np.arange(n), np.diff(np.asarray(arrays.event_ids["offsets"], dtype=np.int64)))
    return _without_events(arrays, indel_events(arrays) & chosen[owner], chosen[:, None] & indel_channels())


#: The channel sets of one kind of call, per set (schema.SET_GROUPS: SBS96 / SBS6, DBS78, ID83 / ID12).
_KIND_SETS = [[SET_NAMES.index(s) for s in next(g for g in SET_GROUPS.values() if name in g)]
              for name in SET_NAMES]


def tumour_padding(arrays: CohortArrays) -> np.ndarray:
    """[n, N_CHANNELS] True on the channels of the sets each tumour did not measure (`row_padding` where
    tumours differ, else the cohort's `channel_padding` for every row)."""
    if arrays.row_padding is not None:
        return arrays.row_padding
    return np.repeat(np.asarray(arrays.channel_padding, dtype=bool)[None], arrays.n, 0)


def unmeasured_kinds(padding: np.ndarray) -> np.ndarray:
    """[n, len(SET_NAMES)] True on set j of a tumour that measured no set of j's kind of call (`padding`:
    [n, N_CHANNELS], `tumour_padding`): indels for a Strelka2 SNV file alone or a declared `--not-measured
    indels`, but not SBS96 for an input without a reference (its substitutions are measured, as SBS6)."""
    padding = np.asarray(padding, dtype=bool)
    ends = np.cumsum(SET_SIZES)
    sets = np.stack([padding[:, end - size : end].all(axis=1)
                     for end, size in zip(ends, SET_SIZES, strict=True)], axis=1)
    return np.stack([sets[:, kind].all(axis=1) for kind in _KIND_SETS], axis=1)


def event_sets(channel: np.ndarray, vocab: ev.EventVocab | None = None) -> np.ndarray:
    """[events] each event's channel set (index into SET_NAMES; -1 unknown): from a cohort's token channel
    ids (columns of X, `vocab` None) or from model ids over `vocab`, whose channel strings name their set
    ("ID12:1:Del:C:0"; UNK: -1)."""
    channel = np.asarray(channel, dtype=np.int64)
    if vocab is None:
        return np.repeat(np.arange(len(SET_NAMES)), SET_SIZES)[channel]
    lookup = {name: j for j, name in enumerate(SET_NAMES)}
    table = [-1] * ev.N_SPECIAL + [lookup.get(str(v).split(":", 1)[0], -1) for v in vocab.values["channel"]]
    return np.asarray(table, dtype=np.int64)[channel]


def events_not_measured(offsets: np.ndarray, sets: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """[events] True on each event (`sets`: `event_sets`, ragged by `offsets`) of a kind of call its tumour
    did not measure (`unmeasured_kinds` of `padding`, [n, N_CHANNELS]): what an event model leaves out."""
    offsets = np.asarray(offsets, dtype=np.int64)
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    sets = np.asarray(sets, dtype=np.int64)
    return (sets >= 0) & unmeasured_kinds(padding)[owner, np.maximum(sets, 0)]


def event_offsets(arrays: CohortArrays) -> np.ndarray:
    """[n + 1] each tumour's event offsets: the model ids' (`with_event_vocab`), else the cohort tokens'
    (training drops unmeasured events before its vocabulary exists: nanog1.encoder.loop.prepare_events)."""
    source = arrays.event_ids if arrays.event_ids is not None else arrays.tokens
    return np.asarray(source["offsets"], dtype=np.int64)


def unmeasured_events(arrays: CohortArrays) -> np.ndarray:
    """`events_not_measured` of event view arrays, or of a cohort's tokens before any vocabulary: each
    event's set from the cohort's tokens (the channel the input gave), else from the model vocabulary's
    channel strings."""
    if arrays.tokens is not None and "channel" in arrays.tokens:
        sets = event_sets(arrays.tokens["channel"])
    else:
        sets = event_sets(arrays.event_ids["channel"], arrays.event_vocab)
    return events_not_measured(event_offsets(arrays), sets, tumour_padding(arrays))


def unmeasured_event_counts(adata) -> np.ndarray:
    """[n_obs] how many of each tumour's events (uns['tokens']) an event model leaves out as of a kind of
    call that tumour did not measure (`without_unmeasured`; zeros without tokens)."""
    if TOKENS not in adata.uns:
        return np.zeros(adata.n_obs, dtype=np.int64)
    tokens = row_tokens(adata)
    padding, rows = measured_padding(adata)
    rows = np.repeat(padding[None], adata.n_obs, 0) if rows is None else rows
    drop = events_not_measured(tokens["offsets"], event_sets(tokens["channel"]), rows)
    owner = np.repeat(np.arange(adata.n_obs), np.diff(np.asarray(tokens["offsets"], dtype=np.int64)))
    return np.bincount(owner[drop], minlength=adata.n_obs).astype(np.int64)


#: Each channel set's kind of call (schema.SET_GROUPS: 'substitutions', 'doublets', 'indels'), per SET_NAMES.
_SET_KIND = np.array([next(k for k, g in SET_GROUPS.items() if name in g) for name in SET_NAMES])


def events_not_read_record(arrays: CohortArrays, view: str) -> dict[str, int]:
    """A training run's data accounting (`nanog1 train`, `finetune`), of the cohort's arrays before the
    run drops anything: 'events_not_read', the calls an event-view run leaves out as of a kind of call
    their tumour did not measure, 'tumours_events_not_read', of how many tumours, and
    'events_not_read_<kind>' per kind of call left out (e.g. 'events_not_read_indels'). The mask is
    `unmeasured_events`, the one `without_unmeasured` drops (loop.prepare_events, for_model), so the
    count stated is the count left out (the count predict writes to obs['events_not_read'] too:
    `unmeasured_event_counts`). {} for a catalogue `view`, which reads no calls, or arrays without tokens.
    Logged with the run's params, in its metrics.json and in its model.pt (loop.TRAINING_NOT_READ), so a
    call left out is never silent, even to someone holding only the model file."""
    if view != "events" or arrays.tokens is None:
        return {}
    drop = unmeasured_events(arrays)
    owner = np.repeat(np.arange(arrays.n), np.diff(event_offsets(arrays)))
    kinds = _SET_KIND[event_sets(arrays.tokens["channel"])[drop]]
    record = {"events_not_read": int(drop.sum()), "tumours_events_not_read": int(np.unique(owner[drop]).size)}
    return record | {f"events_not_read_{kind}": int((kinds == kind).sum()) for kind in SET_GROUPS
                     if (kinds == kind).any()}


def without_unmeasured(arrays: CohortArrays) -> CohortArrays:
    """Event view arrays as an input without the calls each tumour did not measure would give them: the
    events of a kind of call (substitutions, doublets, indels) none of whose sets that tumour measured
    (`tumour_padding`: declared `--not-measured`, or a Strelka2 SNV file alone) dropped, event ids and tokens
    alike, and those sets' counts 0 (already marked unmeasured); each tumour's bag and consequence shares
    recomputed from what is left when the arrays carry a bag (`for_model` drops before building it). Arrays
    of tokens only (no model ids yet) lose the same events from their tokens: training drops them before
    building its vocabulary (nanog1.encoder.loop.prepare_events), so it reads what scoring reads. The
    arrays themselves when no event is dropped (nanog1.encoder.data.without_indels: the same, per row chosen,
    for training's indel dropout)."""
    drop = unmeasured_events(arrays)
    if not drop.any():
        return arrays
    kinds = unmeasured_kinds(tumour_padding(arrays))
    return _without_events(arrays, drop, np.repeat(kinds, SET_SIZES, axis=1))


def _without_events(arrays: CohortArrays, drop: np.ndarray, pad: np.ndarray) -> CohortArrays:
    """`arrays` without the events `drop` (event ids and tokens alike), the channels `pad` ([n, N_CHANNELS])
    counted 0 and marked unmeasured per row, and, when they carry a bag, the bag and consequence shares
    recomputed from the events left (the same genes, sites and scale). Arrays without model ids (tokens
    only) keep none."""
    n = arrays.n
    owner = np.repeat(np.arange(n), np.diff(event_offsets(arrays)))
    keep = ~np.asarray(drop, dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner[keep], minlength=n))]).astype(np.int64)
    ids = arrays.event_ids
    if ids is not None:
        ids = {k: v[keep] for k, v in ids.items() if k != "offsets"} | {"offsets": offsets}
    tokens = arrays.tokens
    if tokens is not None:
        tokens = {k: (np.asarray(v)[keep] if is_per_token(k) else v) for k, v in tokens.items()}
        tokens["offsets"] = offsets
    pad = np.asarray(pad, dtype=bool)
    counts = arrays.counts.copy()
    counts[pad] = 0
    padding = tumour_padding(arrays)
    padding = padding | pad if (pad & ~padding).any() else arrays.row_padding
    out = replace(arrays, counts=counts, event_ids=ids, tokens=tokens, row_padding=padding)
    if arrays.gene_bag is None:
        return out
    return with_gene_bag(out, arrays.gene_bag_genes, arrays.gene_bag_sites, arrays.consequence_scale)


def keep_shares(n: int, thin: float) -> torch.Tensor | None:
    """[n, 1] shares from U(1 - thin, 1): how much of each sample a thinned copy keeps (None if thin = 0)."""
    return None if thin <= 0 else 1.0 - thin * torch.rand(n, 1)


def thin_counts(counts: torch.Tensor, thin: float, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Each row binomially thinned to a U(1 - thin, 1) share of its counts (thin = 0: unchanged).

    ``keep`` [B, 1] gives the shares instead of drawing them (the event view thins events by the same ones).
    """
    keep = keep_shares(counts.shape[0], thin) if keep is None else keep
    if keep is None:
        return counts
    return torch.binomial(counts.float(), keep.expand(counts.shape)).to(counts.dtype)


#: Channel-set dropout groups: (sets masked together, probability as a multiple of `set_dropout`).
DROPOUT_GROUPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("DBS78",), 1.0),
    (("ID83", "ID12"), 1.0),
    (("ID83",), 0.5),
    (("SBS96",), 1 / 3),
)


def set_dropout_mask(n: int, p: float) -> torch.Tensor:
    """[n, N_CHANNELS] True where a training draw masks a set as unmeasured (see `DROPOUT_GROUPS`)."""
    owner = np.repeat(np.arange(len(SET_NAMES)), SET_SIZES)
    mask = torch.zeros(n, N_CHANNELS, dtype=torch.bool)
    for sets, scale in DROPOUT_GROUPS:
        cols = torch.from_numpy(np.isin(owner, [SET_NAMES.index(s) for s in sets]))
        hit = torch.rand(n, 1) < p * scale
        mask |= hit & cols
    return mask


class IndexDataset(Dataset):
    """A list of sample indices; the collate function turns a batch of them into tensors."""

    def __init__(self, indices: np.ndarray):
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> int:
        return int(self.indices[i])


class Collate:
    """Turns sample indices into a batch dict; event sequences are subsampled to max_events and padded.

    With ``thin`` (training only) each sample becomes a lower-coverage copy of itself: a share drawn from
    U(1 - thin, 1) of its catalogue counts (binomial thinning) and, in the event view, of its events
    (each kept with that probability, at least one), so the model input is thinned in both views.

    With ``views`` = 2 (contrastive pretraining, training and validation alike) the batch also carries
    ``view2``: a second, independent draw of the same tumours. Each of the two views is thinned with
    ``view_drop`` as above, drops each present 0/1 bag entry (gene, hotspot) with probability ``view_drop``
    and adds Gaussian noise of sd ``view_noise`` to the bag's consequence shares (sd-scaled units), which
    are never dropped (nanog1.encoder.contrastive.augment_view over `CohortArrays.bag_entries`); labels
    are never part of a view.
    """

    def __init__(
        self,
        arrays: CohortArrays,
        view: str = "catalogue",
        max_events: int = 2048,
        train: bool = True,
        thin: float = 0.0,
        set_dropout: float = 0.0,
        indel_dropout: float = 0.0,
        views: int = 1,
        view_drop: float = 0.0,
        view_noise: float = 0.0,
    ):
        if view == "events" and arrays.event_ids is None:
            raise UserError("the event view needs uns['tokens'] in the cohort (ingest from VCF/MAF files)")
        self.a, self.view, self.max_events, self.train = arrays, view, max_events, train
        self.thin = thin if train else 0.0
        self.set_dropout = set_dropout if train else 0.0
        self.indel_dropout = indel_dropout if train and view == "events" else 0.0
        if self.indel_dropout > 0:  # what an SNV-only input of each tumour would give (see `_drop_indels`)
            self._indel = indel_events(arrays)
            self._snv_bag = without_indels(arrays).gene_bag if arrays.gene_bag is not None else None
        self.views, self.view_drop, self.view_noise = views, view_drop, view_noise
        if views == 2:
            self.thin = view_drop

    def __call__(self, idx: list[int]) -> dict:
        batch = self._draw(idx)
        if self.views == 2:
            batch["view2"] = self._draw(idx)
        return batch

    def _draw(self, idx: list[int]) -> dict:
        ix = np.asarray(idx, dtype=np.int64)
        keep = keep_shares(len(ix), self.thin)
        batch = {
            "index": torch.from_numpy(ix),
            "counts": thin_counts(torch.from_numpy(self.a.counts[ix]), self.thin, keep),
            "labels": torch.from_numpy(self.a.labels[ix]),
            "exposures": {k: torch.from_numpy(v[ix]) for k, v in self.a.exposures.items()},
        }
        if self.set_dropout > 0:
            batch["set_padding"] = set_dropout_mask(len(ix), self.set_dropout)
        if self.a.row_padding is not None:  # each tumour's own unmeasured sets (issue 31)
            own = torch.from_numpy(self.a.row_padding[ix])
            batch["set_padding"] = own | batch["set_padding"] if "set_padding" in batch else own
        dropped = torch.rand(len(ix)) < self.indel_dropout if self.indel_dropout > 0 else None
        if self.view == "events":
            batch.update(self._events(ix, keep, dropped))
            if self.a.gene_bag is not None:  # the whole tumour's genes (not thinned: not an event)
                batch["gene_bag"] = torch.from_numpy(self.a.gene_bag[ix])
        if dropped is not None and bool(dropped.any()):
            self._drop_indels(batch, ix, dropped)
        if self.view == "events" and self.a.gene_bag is not None and self.views == 2:
            batch["gene_bag"] = augment_view(batch["gene_bag"], self.a.bag_entries, self.view_drop,
                                             self.view_noise)  # fmt: skip
        return batch

    def _drop_indels(self, batch: dict, ix: np.ndarray, dropped: torch.Tensor) -> None:
        """Rows `dropped` of a training draw read as SNV-only inputs (`indel_dropout`): ID83/ID12 counts 0
        and masked as unmeasured, the bag (genes, sites, consequence shares) of the tumour without its
        indels; its events were picked among the non-indel ones (`_events`)."""
        cols = torch.from_numpy(indel_channels())
        hit = dropped[:, None] & cols[None, :]
        batch["counts"] = batch["counts"].masked_fill(hit, 0)
        batch["set_padding"] = batch["set_padding"] | hit if "set_padding" in batch else hit
        if "gene_bag" in batch and self._snv_bag is not None:
            rows = dropped.numpy()
            bag = batch["gene_bag"].clone()
            bag[dropped] = torch.from_numpy(self._snv_bag[ix[rows]])
            batch["gene_bag"] = bag

    def _pick(self, n: int, keep: float | None = None) -> np.ndarray:
        """Positions of the events used: a Bernoulli(keep) subset when thinning, then ≤ max_events of them."""
        pool = np.arange(n)
        if keep is not None and n > 0:
            kept = np.flatnonzero((torch.rand(n) < keep).numpy())
            pool = kept if len(kept) else pool[torch.randint(n, (1,)).numpy()]
        if len(pool) <= self.max_events:
            return pool
        if self.train:
            return pool[torch.randperm(len(pool))[: self.max_events].sort().values.numpy()]
        return pool[np.linspace(0, len(pool) - 1, self.max_events).round().astype(np.int64)]

    def _events(self, ix: np.ndarray, keep: torch.Tensor | None = None, dropped: torch.Tensor | None = None
                ) -> dict:  # fmt: skip
        """Each tumour's picked events (`_pick`); a `dropped` tumour's among its non-indel events only."""
        tok, off = self.a.event_ids, self.a.event_ids["offsets"]
        shares = [None] * len(ix) if keep is None else keep[:, 0].tolist()
        drop = [False] * len(ix) if dropped is None else dropped.tolist()
        picks = []
        for i, k, d in zip(ix, shares, drop, strict=True):
            pool = np.arange(off[i], off[i + 1])
            if d:
                pool = pool[~self._indel[pool]]
            picks.append(pool[self._pick(len(pool), k)])
        length = max(1, max(len(p) for p in picks))
        out = {f: torch.zeros(len(ix), length, dtype=torch.long) for f in EVENT_FIELDS}
        padding = torch.ones(len(ix), length, dtype=torch.bool)
        for row, p in enumerate(picks):
            for f in EVENT_FIELDS:
                out[f][row, : len(p)] = torch.from_numpy(tok[f][p].astype(np.int64))
            padding[row, : len(p)] = False
        return {"events": out, "event_padding": padding}
