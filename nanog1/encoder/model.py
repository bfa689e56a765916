"""Mutation encoder: a bidirectional `nanog1.core.Stack` over catalogue tokens or mutation events.

Two input views share one encoder body and one set of task heads:

* catalogue view: one token per channel of the cohort layout (`N_CHANNELS` tokens: SBS96, DBS78,
  ID83 and the reference-free SBS6/ID12, see nanog1.genomics.channels). A token is the channel's
  embedding + its channel-set embedding + a magnitude encoding of log1p(count), of the channel's
  share of its set (scaled by the set size so a flat spectrum gives 1) and of log1p(set burden).
  Channel sets a cohort did not measure are key-padding, so an SBS96-only cohort routes over its
  96 tokens alone.
* event view: one token per mutation, the sum of one embedding per field (class, gene, consequence,
  chromosome, position bin, VAF bin) over the model's own vocabularies (`event_vocab`, built from the
  training cohort and saved in this config; unseen values are UNK, an id outside a table is an error;
  nanog1.genomics.event_vocab), ragged sequences padded with a key-padding mask.

With `summary` (default), the CLS token starts from a linear embedding of the whole catalogue (in the
event view too: both views in one model, so a tumour whose events were capped keeps its whole
spectrum) and the pooled embedding is the CLS token's final state (`pooling="cls"`). An event-view
model with a `gene_bag` (gene names, chosen from its training tumours; nanog1.genomics.gene_bag) adds a
linear embedding of the tumour's 0/1 bag over those genes, counted over all of its mutations, so the
CLS token sees the whole tumour's gene content and not just the events in its window; its `hotspots`
(sites mutated in several training tumours) add columns after the genes in the same linear map.

Options of the event view that the research benchmark uses (benchmarks/tcga_events.py; all off or empty in
the product's configs, so models saved before they existed rebuild with the same parameters): `n_summary`
columns of per-tumour summary features (nanog1.genomics.event_vocab.summary_features, standardised) through
their own linear map into the CLS token; `embed_bags` (token fields, e.g. ["gene"]): per field, a linear map
of the mean embedding (the token table's own rows) over *every* distinct value the tumour carries, given as
`bags` = field -> (flat ids, count per tumour), each value dropped with probability `bag_dropout` in
training. The benchmark's separate gene and hotspot maps are this model's one bag map over both column
blocks: a sum of two linear maps is one linear map of the concatenated columns (one bias instead of two).

On CUDA the event view runs packed (`packed`, nanog1.core.ragged: exomes carry 1-20,000 mutations, so a
padded batch is mostly padding): only the real events are embedded, each tumour's CLS goes in front of its
events in one ragged row, and the pooling and heads read the packed rows; only the public `tokens` output is
scattered back to the padded layout. Equal to the padded path (tests/test_ragged.py, float64 with
gradients). A CUDA-graphed training step (nanog1.core.step_graph) keeps the padded path, which needs no
host sync.

Heads: cancer type (logits), signature exposures per channel set (log-probabilities on the
simplex), the contrastive projection of the pooled embedding (`projection`, pretraining only), masked-token
pretraining (log1p count of a masked channel; for a masked event: its class,
its consequence and its gene among the `gene_top_k` commonest or "other", see losses.masked_event_loss),
and the pooled embedding itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from nanog1.core import Stack, StackConfig
from nanog1.core.ragged import Ragged, right_padded_lengths
from nanog1.encoder.contrastive import ProjectionHead
from nanog1.schema import N_CHANNELS, SET_SIZES  # the cohort layout, in column order

MASK_ID = 2  # nanog1.genomics.event_vocab.MASK (kept numeric here: the model stays torch-side only)


@dataclass
class MutationEncoderConfig:
    """Shape of the encoder and its heads; saved with every checkpoint so a model rebuilds alone."""

    hidden: int = 64
    layers: int = 2
    rank: int = 16
    heads: int = 4
    mixer: str = "savo"
    query: str = "linear"
    dropout: float = 0.1
    pooling: str = "cls"
    summary: bool = True
    view: str = "catalogue"
    n_types: int = 0
    exposure_sizes: dict[str, int] = field(default_factory=dict)
    # Event view: value lists per field (model id = 3 + position; 0 pad, 1 UNK, 2 MASK), commonest first.
    event_vocab: dict[str, list[str]] = field(default_factory=dict)
    gene_top_k: int = 256  # masked-gene head: the K commonest genes of the vocabulary + "other"
    # Event view: the CLS gene bag's genes (mutated in most training tumours, commonest first); [] = none.
    gene_bag: list[str] = field(default_factory=list)
    # Event view: the bag's hotspot sites ("contig:position", recurrent in training tumours), after its genes.
    hotspots: list[str] = field(default_factory=list)
    # Event view: the bag ends with the tumour's share of events per consequence of event_vocab (all of its
    # events; nanog1.encoder.data.consequence_shares), each divided by its consequence_scale entry (the
    # training tumours' sd of that share). False in models saved before it existed.
    consequence_shares: bool = False
    consequence_scale: list[float] = field(default_factory=list)
    # Contrastive pretraining: width of the projection head on the pooled embedding (0 = none; dropped for
    # fine-tuning, nanog1.encoder.contrastive).
    projection: int = 0
    # Event view, the research benchmark's CLS inputs (module docstring; off in the product's configs): the
    # width of the summary-feature input (0 = none), the token fields read as mean-embedding bags over all
    # of a tumour's values, and the share of a bag's values dropped in training.
    n_summary: int = 0
    embed_bags: list[str] = field(default_factory=list)
    bag_dropout: float = 0.0
    # Event view: the CLS token also reads which channel sets each tumour's summary hides as unmeasured (one
    # 0/1 per set, a linear map initialised at zero), so an SNV-only input ('indels not measured') is not the
    # same input as a tumour with no indels. Trained by `TrainConfig.indel_dropout`; False in models saved
    # before it existed (they read exactly what they did).
    unmeasured_indicator: bool = False
    # Event view on CUDA: run the stack on the packed real tokens, not the padding (same outputs).
    packed: bool = True
    # Tables of the earlier event view (channel/motif/chrom/bin ids): read from old model.pt files, unused.
    n_motifs: int = 1025
    n_chroms: int = 64
    n_bins: int = 4096

    def event_sizes(self) -> dict[str, int]:
        """Embedding-table size of every event field (3 specials + the vocabulary's values)."""
        return {k: 3 + len(v) for k, v in self.event_vocab.items()}

    def n_consequence_columns(self) -> int:
        """Bag columns of the consequence shares (one per consequence value; 0 when off)."""
        return len(self.event_vocab.get("consequence", [])) if self.consequence_shares else 0

    def masked_sizes(self) -> dict[str, int]:
        """Classes of each masked-event head: class and consequence tables, capped genes + other."""
        sizes = self.event_sizes()
        return {"channel": sizes["channel"], "consequence": sizes["consequence"],
                "gene": min(self.gene_top_k, len(self.event_vocab["gene"])) + 1}  # fmt: skip

    def stack_config(self) -> StackConfig:
        """The core Stack configuration: bidirectional, pre-norm, GELU FFN."""
        return StackConfig(
            hidden_size=self.hidden,
            layers=self.layers,
            rank=self.rank,
            heads=self.heads,
            mixer=self.mixer,
            causal=False,
            dropout=self.dropout,
            query=self.query,
        )

    def to_dict(self) -> dict:
        """Plain dict for checkpoints and MLflow params."""
        return asdict(self)


def _set_index() -> torch.Tensor:
    """Channel-set id (0, 1, ...) of each channel of the layout."""
    return torch.repeat_interleave(torch.arange(len(SET_SIZES)), torch.tensor(SET_SIZES))


def _set_share() -> torch.Tensor:
    """[N_CHANNELS, sets]: 1 / set size where a channel belongs to the set, so a mask times it gives each
    set's masked share (1 when the whole set is masked as unmeasured)."""
    index = _set_index()
    sizes = torch.tensor(SET_SIZES, dtype=torch.float32)
    return torch.nn.functional.one_hot(index, len(SET_SIZES)).float() / sizes


#: Magnitude features per channel token (see catalogue_features).
N_FEATURES = 3


def catalogue_features(counts: torch.Tensor) -> torch.Tensor:
    """Per-token magnitude features [B, N_CHANNELS, 3]: log1p(count), the set-size-scaled share of its set and
    log1p(its set's total), so each token knows both its spectrum shape and its set's mutation burden."""
    parts = torch.split(counts, list(SET_SIZES), dim=-1)
    totals = [p.sum(-1, keepdim=True) for p in parts]
    shares = [p / t.clamp_min(1.0) * p.shape[-1] for p, t in zip(parts, totals, strict=True)]
    burden = [torch.log1p(t).expand_as(p) for p, t in zip(parts, totals, strict=True)]
    return torch.stack([torch.log1p(counts), torch.cat(shares, dim=-1), torch.cat(burden, dim=-1)], dim=-1)


class CatalogueEmbedding(nn.Module):
    """N_CHANNELS channel tokens: channel + channel-set embedding + magnitude encoding.

    The magnitude encoding is a shared MLP of the features plus a per-channel linear map of them,
    so a channel's count reaches the mixer already tied to its identity (a sum over tokens is then at
    least a linear model of the spectrum, which makes early training fast).
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.channel = nn.Embedding(N_CHANNELS, hidden)
        self.channel_set = nn.Embedding(len(SET_SIZES), hidden)
        self.magnitude = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.per_channel = nn.Parameter(torch.randn(N_CHANNELS, N_FEATURES, hidden) * 0.1)
        self.mask_token = nn.Parameter(torch.zeros(hidden))
        self.register_buffer("set_index", _set_index(), persistent=False)
        # Small identity embeddings at start, so that the magnitudes (the signal) dominate the tokens.
        nn.init.normal_(self.channel.weight, std=0.02)
        nn.init.normal_(self.channel_set.weight, std=0.02)

    def forward(self, counts: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """counts [B, C] -> tokens [B, C, H] (C = N_CHANNELS); token_mask [B, C] True hides magnitudes."""
        feats = catalogue_features(counts)
        mag = self.magnitude(feats) + torch.einsum("blf,lfh->blh", feats, self.per_channel.to(feats.dtype))
        if token_mask is not None:
            mag = torch.where(token_mask.unsqueeze(-1), self.mask_token.to(mag.dtype), mag)
        return self.channel.weight + self.channel_set(self.set_index) + mag


class FieldEmbedding(nn.Module):
    """Event tokens: the sum of one embedding per field; ids are checked against each table's size."""

    def __init__(self, sizes: dict[str, int], hidden: int):
        super().__init__()
        self.tables = nn.ModuleDict({k: nn.Embedding(n, hidden, padding_idx=0) for k, n in sizes.items()})
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=0.02)
            t.weight.data[0].zero_()

    def forward(self, ids: dict[str, torch.Tensor]) -> torch.Tensor:
        """ids: field -> [B, L] long -> [B, L, H]."""
        out = None
        for name, table in self.tables.items():
            x = ids[name]
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= table.num_embeddings):
                raise ValueError(f"event field {name!r}: id outside its vocabulary of {table.num_embeddings}")
            e = table(x)
            out = e if out is None else out + e
        return out


class CatalogueSummary(nn.Module):
    """The CLS token's content: a linear embedding of the whole catalogue (scaled shares and log1p counts).

    Channel tokens see one channel each and must learn the spectrum through the mixer; a CLS token that
    starts from the whole spectrum gives the pooled head a direct route (on PCAWG fold 0 this took
    validation top-1 from 0.08 to 0.61 after four epochs). Padded or masked channels read as zero here.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.proj = nn.Linear(2 * N_CHANNELS, hidden)

    def forward(self, counts: torch.Tensor, hidden_mask: torch.Tensor | None = None) -> torch.Tensor:
        """counts [B, N_CHANNELS], hidden_mask [B, N_CHANNELS] True = not visible -> [B, H]."""
        feats = catalogue_features(counts)
        x = torch.cat([feats[..., 1] / 10.0, feats[..., 0] / 5.0], dim=-1)
        if hidden_mask is not None:
            x = x.masked_fill(hidden_mask.repeat(1, 2), 0.0)
        return self.proj(x)


@dataclass
class EncoderOutput:
    """What one forward pass gives: the pooled embedding, token states and every head's output."""

    embedding: torch.Tensor
    tokens: torch.Tensor
    type_logits: torch.Tensor | None
    exposure_logp: dict[str, torch.Tensor]
    masked_pred: torch.Tensor
    masked_logits: dict[str, torch.Tensor] = field(default_factory=dict)  # event view: [n_masked, classes]


# DDP finds the output's tensors through torch's pytree: an unregistered dataclass is one opaque leaf,
# and then DDP's static-graph/unused-parameter bookkeeping never all-reduces the gradients (measured
# with gloo: ranks' gradients differed after every step). Registered, every field is a tree node.
torch.utils._pytree.register_dataclass(EncoderOutput)


class MutationEncoder(nn.Module):
    """Encoder body + heads. Call with `counts` (catalogue view) or `events` (event view)."""

    def __init__(self, cfg: MutationEncoderConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        if cfg.view == "catalogue":
            self.embed = CatalogueEmbedding(h)
            self.masked_head = nn.Linear(h, 1)
        elif cfg.view == "events":
            if not cfg.event_vocab:
                raise ValueError("the event view needs event_vocab (built from the training cohort)")
            self.embed = FieldEmbedding(cfg.event_sizes(), h)
            self.masked_heads = nn.ModuleDict({k: nn.Linear(h, n) for k, n in cfg.masked_sizes().items()})
        else:
            raise ValueError(f"unknown view {cfg.view!r}; expected 'catalogue' or 'events'")
        if cfg.pooling not in ("cls", "mean"):
            raise ValueError(f"unknown pooling {cfg.pooling!r}; expected 'cls' or 'mean'")
        self.cls = nn.Parameter(torch.randn(h) * 0.02)
        self.summary = CatalogueSummary(h) if cfg.summary else None
        n_bag = len(cfg.gene_bag) + len(cfg.hotspots) + cfg.n_consequence_columns()
        self.gene_bag = nn.Linear(n_bag, h) if cfg.view == "events" and n_bag else None
        events = cfg.view == "events"
        self.summary_features = nn.Linear(cfg.n_summary, h) if events and cfg.n_summary else None
        self.embed_bags = nn.ModuleDict({f: nn.Linear(h, h) for f in (cfg.embed_bags if events else ())})
        self.unmeasured = None
        if events and cfg.unmeasured_indicator:
            self.unmeasured = nn.Linear(len(SET_SIZES), h, bias=False)
            nn.init.zeros_(self.unmeasured.weight)
            self.register_buffer("set_share", _set_share(), persistent=False)
        self.in_norm = nn.LayerNorm(h)
        self.stack = Stack(cfg.stack_config())
        self.type_head = nn.Linear(h, cfg.n_types) if cfg.n_types > 0 else None
        self.exposure_heads = nn.ModuleDict({k: nn.Linear(h, n) for k, n in cfg.exposure_sizes.items()})
        self.projection = ProjectionHead(h, cfg.projection) if cfg.projection else None

    def forward(
        self,
        counts: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        events: dict[str, torch.Tensor] | None = None,
        gene_bag: torch.Tensor | None = None,
        summary_features: torch.Tensor | None = None,
        bags: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        summary_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Encode a batch. padding_mask [B, L] True = absent token; token_mask [B, L] True = masked token;
        gene_bag [B, len(cfg.gene_bag) + len(cfg.hotspots) (+ consequence shares)] 0/1, genes then sites
        (event view, required when the model has a bag); summary_features [B, cfg.n_summary] and bags
        (field -> (flat ids [N], count per tumour [B]), each of cfg.embed_bags) when the model reads them.
        summary_mask [B, N_CHANNELS] (or [N_CHANNELS]) True = channel not read (event view): the channel
        sets each tumour did not measure and those the model never read, hidden from its catalogue summary
        as the catalogue view key-pads them (issue 31); the catalogue view takes them in padding_mask."""
        cls = None
        if self.cfg.view == "catalogue":
            x = self.embed(counts, token_mask)
            if self.summary is not None:
                cls = self._summary(counts, padding_mask, token_mask).to(x.dtype)
            return self._encode(x, padding_mask, cls)
        ev = {k: events[k] for k in self.embed.tables}
        if token_mask is not None:  # every field of a masked event hidden
            ev = {k: torch.where(token_mask, MASK_ID, v) for k, v in ev.items()}
        b = next(iter(ev.values())).shape[0]
        lengths = self._packed_lengths(next(iter(ev.values())), padding_mask)
        if lengths is not None:  # only the real tokens are embedded: [N, H]
            keep = ~padding_mask.expand(b, -1)
            ev = {k: v[keep] for k, v in ev.items()}
        x = self.embed(ev)
        if self.summary is not None and counts is not None:  # thinned alike; unmeasured sets hidden
            hidden = None if summary_mask is None else summary_mask.expand(counts.shape[0], -1)
            cls = (self.cls + self.summary(counts.to(x.dtype), hidden)).to(x.dtype)
        if self.unmeasured is not None and summary_mask is not None:  # which sets were not measured
            sets = summary_mask.to(x.dtype).expand(b, -1) @ self.set_share.to(x.dtype)
            cls = (self.cls if cls is None else cls) + self.unmeasured(sets)
        if self.gene_bag is not None:
            if gene_bag is None:
                raise ValueError(f"this model reads a gene bag of {len(self.cfg.gene_bag)} genes, "
                                 f"{len(self.cfg.hotspots)} hotspot sites and "
                                 f"{self.cfg.n_consequence_columns()} consequence shares; none given")
            if gene_bag.shape[-1] != self.gene_bag.in_features:
                raise ValueError(f"gene_bag has {gene_bag.shape[-1]} columns; this model reads a gene bag "
                                 f"of {len(self.cfg.gene_bag)} genes, {len(self.cfg.hotspots)} hotspot sites "
                                 f"and {self.cfg.n_consequence_columns()} consequence shares")
            cls = (self.cls if cls is None else cls) + self.gene_bag(gene_bag.to(x.dtype))
        if self.summary_features is not None:
            if summary_features is None or summary_features.shape[-1] != self.cfg.n_summary:
                got = "none" if summary_features is None else f"{summary_features.shape[-1]} columns"
                raise ValueError(f"this model reads {self.cfg.n_summary} summary features; {got} given")
            cls = (self.cls if cls is None else cls) + self.summary_features(summary_features.to(x.dtype))
        for name, proj in self.embed_bags.items():
            if bags is None or name not in bags:
                raise ValueError(f"this model reads an embedding bag of {name!r}; none given")
            cls = (self.cls if cls is None else cls) + proj(self._mean_bag(name, *bags[name]).to(x.dtype))
        if lengths is not None:
            out, states = self._encode_packed(x, lengths, padding_mask.expand(b, -1), cls, token_mask)
        else:
            out = self._encode(x, padding_mask, cls)
            states = None if token_mask is None else out.tokens[token_mask]
        if token_mask is not None:
            out.masked_logits = {k: head(states) for k, head in self.masked_heads.items()}
        return out

    def _mean_bag(self, name: str, flat: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """[B, H] mean of field `name`'s embeddings over each tumour's values (zeros for none); in training
        each value is kept with probability 1 - bag_dropout (the mean is over the kept ones)."""
        table = self.embed.tables[name].weight
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= table.shape[0]):
            raise ValueError(f"{name} bag: id outside its vocabulary of {table.shape[0]}")
        which = torch.repeat_interleave(torch.arange(len(counts), device=flat.device), counts)
        keep = torch.ones(flat.shape, device=flat.device, dtype=table.dtype)
        if self.training and self.cfg.bag_dropout > 0:
            keep = (torch.rand(flat.shape, device=flat.device) >= self.cfg.bag_dropout).to(table.dtype)
        kept = torch.zeros(len(counts), device=flat.device, dtype=table.dtype).index_add_(0, which, keep)
        weights = keep / kept.clamp(min=1)[which]
        offsets = torch.cumsum(counts, 0) - counts
        return F.embedding_bag(flat, table, offsets, mode="sum", per_sample_weights=weights)

    def _summary(self, counts, padding_mask, token_mask) -> torch.Tensor:
        hidden = None
        for m in (padding_mask, token_mask):
            if m is not None:
                m = m.expand(counts.shape[0], -1)
                hidden = m if hidden is None else hidden | m
        return self.cls + self.summary(counts, hidden)

    def _encode(self, x: torch.Tensor, padding_mask: torch.Tensor | None,
                cls: torch.Tensor | None = None) -> EncoderOutput:
        b = x.shape[0]
        if padding_mask is not None and padding_mask.shape[0] != b:
            padding_mask = padding_mask.expand(b, -1)
        cls = self.cls.expand(b, -1) if cls is None else cls
        x = torch.cat([cls.to(x.dtype).unsqueeze(1), x], dim=1)
        mask = None
        if padding_mask is not None:
            mask = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask], dim=1)
        h = self.stack(self.in_norm(x), padding_mask=mask)
        tokens = h[:, 1:]
        pooled = h[:, 0] if self.cfg.pooling == "cls" else _masked_mean(tokens, padding_mask)
        return self._heads(pooled, tokens)

    def _heads(self, pooled: torch.Tensor, tokens: torch.Tensor) -> EncoderOutput:
        """Every head on the pooled embedding (and the catalogue view's masked head on the tokens)."""
        return EncoderOutput(
            embedding=pooled,
            tokens=tokens,
            type_logits=self.type_head(pooled) if self.type_head is not None else None,
            exposure_logp={
                k: F.log_softmax(head(pooled).float(), -1) for k, head in self.exposure_heads.items()
            },
            masked_pred=(  # event view: per-head logits of the masked events, in masked_logits
                self.masked_head(tokens).squeeze(-1) if self.cfg.view == "catalogue" else tokens.new_zeros(())
            ),
        )


    def _packs(self, x: torch.Tensor) -> bool:
        """Whether this batch runs packed: the event view with cfg.packed on CUDA, unless a CUDA graph is
        being captured or the caller watches for host syncs (a graphed training step's warm-up,
        nanog1.core.step_graph): packing reads the lengths on the host, and the padded path does not."""
        return (self.cfg.view == "events" and self.cfg.packed and x.is_cuda
                and not torch.cuda.is_current_stream_capturing() and torch.cuda.get_sync_debug_mode() == 0)

    def _packed_lengths(self, ids: torch.Tensor, padding_mask: torch.Tensor | None) -> list[int] | None:
        """Each tumour's event count when this batch runs packed (right-padded rows on the packed path),
        else None: the padded path."""
        if padding_mask is None or not self._packs(ids):
            return None
        return right_padded_lengths(padding_mask.expand(ids.shape[0], -1))

    def _encode_packed(self, x: torch.Tensor, lengths: list[int], padding: torch.Tensor,
                       cls: torch.Tensor | None, token_mask: torch.Tensor | None
                       ) -> tuple[EncoderOutput, torch.Tensor | None]:
        """The event view end to end on the packed real tokens: x [N, H] (the embedded events of every
        tumour, row after row), each tumour's CLS put in front of its events in one ragged row
        (nanog1.core.ragged), the stack, and the pooling, heads and masked states read from the packed
        rows. Only `tokens` (the public [B, L, H] states, zeros at padding) is scattered back, and no loss
        reads it, so the backward never touches the padded layout: a random batch of exomes holding one
        30,000-mutation tumour is ~100x longer padded than packed. Same outputs as `_encode`
        (tests/test_ragged.py). Returns the output and the masked events' states (token_mask) or None."""
        b, dev = len(lengths), x.device
        cls = self.cls.expand(b, -1) if cls is None else cls
        ragged = Ragged.from_lengths([n + 1 for n in lengths], dev)
        starts = ragged.cu_seqlens[:-1].long()
        seg = torch.repeat_interleave(torch.arange(b, device=dev), torch.diff(ragged.cu_seqlens).long(),
                                      output_size=ragged.total)  # the tumour of each packed row
        pos = torch.arange(ragged.total, device=dev) - starts[seg]  # 0: the CLS row
        src = torch.where(pos == 0, seg, b + starts[seg] - seg + pos - 1)  # row of cat([cls, x])
        h = self.stack(self.in_norm(torch.cat([cls.to(x.dtype), x])[src])[None], ragged=ragged)[0]
        is_token = pos > 0
        events = h[is_token]  # [N, H], in the order of the real tokens of [B, L]
        if self.cfg.pooling == "cls":
            pooled = h[starts]
        else:
            count = torch.tensor(lengths, device=dev, dtype=h.dtype).clamp_min(1.0)[:, None]
            pooled = h.new_zeros(b, h.shape[-1]).index_add_(0, seg[is_token], events) / count
        tokens = events.new_zeros(*padding.shape, events.shape[-1])
        tokens[~padding] = events
        states = None
        if token_mask is not None:
            hidden = token_mask.expand_as(padding)
            states = tokens[hidden] if bool((hidden & padding).any()) else events[hidden[~padding]]
        return self._heads(pooled, tokens), states


def _masked_mean(tokens: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the non-padded tokens."""
    if padding_mask is None:
        return tokens.mean(1)
    keep = (~padding_mask).unsqueeze(-1).to(tokens.dtype)
    return (tokens * keep).sum(1) / keep.sum(1).clamp_min(1.0)


class CataloguePredictor(nn.Module):
    """Serving wrapper for MLflow: counts [B, N_CHANNELS] -> type probabilities (or the embedding)."""

    def __init__(self, encoder: MutationEncoder, channel_padding: torch.Tensor, output: str = "proba"):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("channel_padding", channel_padding.bool())
        self.output = output

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        """Class probabilities when the model has a type head and output == 'proba', else embeddings."""
        out = self.encoder(counts=counts.float(), padding_mask=self.channel_padding.unsqueeze(0))
        if self.output == "proba" and out.type_logits is not None:
            return torch.softmax(out.type_logits.float(), -1)
        return out.embedding.float()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
