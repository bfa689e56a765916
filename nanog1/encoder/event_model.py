"""Event encoder over cohort vocabularies: one token per mutation, a catalogue-summary CLS token.

A token is the sum of one embedding per field (mutation class, gene, consequence, chromosome,
position bin, VAF bin; tables sized by the cohort's `EventVocab`, see nanog1.genomics.event_vocab).
Ids outside a table raise (no modulo: two values never share a row). The CLS token starts from a
linear map of the tumour's summary over all of its mutations (each measured channel set's shares and
log burden, consequence shares; `event_vocab.summary_features`), so a tumour whose mutations were
capped still carries its whole catalogue. With `gene_bag` = K > 0 the CLS token also gets a linear map
of the tumour's gene bag: 0/1 over the K genes mutated in most training tumours, over all of its
mutations (nanog1.genomics.gene_bag states the rule): the whole tumour's gene content, which a window
of tokens misses. The bag rides in the last K columns of the `summary` tensor the methods take, followed
by the `hotspot_bag` columns (0/1 over recurrent mutated sites, nanog1.genomics.gene_bag), which get a
linear map of their own. `embed_bags` (fields, e.g. ("gene",)) add, per field, a linear map of the mean
embedding (the token table's own rows) over *every* distinct value the tumour carries (all its genes,
not only the bag's K and not only the window), given as `bags` = field -> (flat ids, count per tumour);
during training each value is dropped with probability `bag_dropout` before the mean.

Heads: cancer type from the CLS state; masked-mutation pretraining predicts a masked token's class,
consequence and gene (the `gene_top_k` commonest genes of a commonest-first vocabulary, or "other")
from its neighbours and the tumour's summary (every field of a masked token is replaced by the MASK id;
losses.masked_event_loss).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from nanog1.core import Stack, StackConfig
from nanog1.core.ragged import Ragged, right_padded_lengths

MASK_ID = 2  # nanog1.genomics.event_vocab.MASK (kept numeric here: core/encoder stay torch-side only)


@dataclass
class EventModelConfig:
    """Shape of the event encoder; saved with every checkpoint beside the vocabulary."""

    vocab_sizes: dict[str, int] = field(default_factory=dict)
    n_summary: int = 0
    hidden: int = 128
    layers: int = 3
    rank: int = 32
    heads: int = 4
    mixer: str = "savo"
    dropout: float = 0.1
    n_types: int = 0
    gene_top_k: int = 256
    gene_bag: int = 0  # K genes of the CLS gene bag (0: none); summary tensors carry n_summary + K columns
    hotspot_bag: int = 0  # recurrent sites of the CLS hotspot bag: H more summary columns after the K
    embed_bags: tuple[str, ...] = ()  # token fields read as a mean-embedding bag over all the tumour's values
    bag_dropout: float = 0.0  # training: drop each value of an embedding bag with this probability
    packed: bool = True  # on CUDA, run the stack on the packed real tokens (ragged kernel), not the padding

    def stack_config(self) -> StackConfig:
        """Bidirectional pre-norm stack."""
        return StackConfig(
            hidden_size=self.hidden,
            layers=self.layers,
            rank=self.rank,
            heads=self.heads,
            mixer=self.mixer,
            causal=False,
            dropout=self.dropout,
        )

    def to_dict(self) -> dict:
        """Plain dict for checkpoints and MLflow params."""
        return asdict(self)


class FieldEmbedding(nn.Module):
    """Sum of one embedding per token field; ids are checked against each table's size."""

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


class EventModel(nn.Module):
    """Field embeddings -> [CLS from summary] + tokens -> Stack -> type / masked-class / masked-gene heads."""

    def __init__(self, cfg: EventModelConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.embed = FieldEmbedding(cfg.vocab_sizes, h)
        self.cls = nn.Parameter(torch.randn(h) * 0.02)
        self.summary = nn.Linear(cfg.n_summary, h) if cfg.n_summary else None
        self.gene_bag = nn.Linear(cfg.gene_bag, h) if cfg.gene_bag else None
        self.hotspot_bag = nn.Linear(cfg.hotspot_bag, h) if cfg.hotspot_bag else None
        self.embed_bags = nn.ModuleDict({f: nn.Linear(h, h) for f in cfg.embed_bags})
        self.in_norm = nn.LayerNorm(h)
        self.stack = Stack(cfg.stack_config())
        self.type_head = nn.Linear(h, cfg.n_types) if cfg.n_types else None
        sizes = {"channel": cfg.vocab_sizes["channel"], "consequence": cfg.vocab_sizes["consequence"],
                 "gene": min(cfg.gene_top_k, cfg.vocab_sizes["gene"] - MASK_ID - 1) + 1}  # fmt: skip
        self.mlm_heads = nn.ModuleDict({k: nn.Linear(h, n) for k, n in sizes.items()})

    def encode(
        self,
        ids: dict[str, torch.Tensor],
        summary: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        bags: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """States [B, 1 + L, H] (CLS first). mask [B, L] True = hide the token (all fields -> MASK).
        bags: field -> (flat ids [N], count per tumour [B]) for each of cfg.embed_bags."""
        if mask is not None:
            ids = {k: torch.where(mask, torch.full_like(v, MASK_ID), v) for k, v in ids.items()}
        x = self.embed(ids)
        b = x.shape[0]
        cls = self.cls.expand(b, -1)
        if summary is not None:
            cls = cls + self._summary(summary)
        for name, proj in self.embed_bags.items():
            if bags is None or name not in bags:
                raise ValueError(f"this model reads an embedding bag of {name!r}; none given")
            cls = cls + proj(self._mean_bag(name, *bags[name]))
        x = torch.cat([cls.unsqueeze(1).to(x.dtype), x], dim=1)
        padding = ids["channel"] == 0
        padding = torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)
        if self.cfg.packed and x.is_cuda:
            return self.stack_packed(self.in_norm(x), padding)
        return self.stack(self.in_norm(x), padding_mask=padding)

    def _summary(self, summary: torch.Tensor) -> torch.Tensor:
        """CLS content [B, H] from the summary [B, n_summary (+ gene_bag)] columns."""
        n, k, hot = self.cfg.n_summary, self.cfg.gene_bag, self.cfg.hotspot_bag
        if summary.shape[-1] != n + k + hot:
            raise ValueError(f"summary has {summary.shape[-1]} columns; this model reads {n} + a gene bag of "
                             f"{k} + a hotspot bag of {hot}")  # fmt: skip
        out = self.summary(summary[:, :n]) if self.summary is not None else 0.0
        if self.gene_bag is not None:
            out = out + self.gene_bag(summary[:, n : n + k])
        if self.hotspot_bag is not None:
            out = out + self.hotspot_bag(summary[:, n + k :])
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

    def stack_packed(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """The stack over the real tokens only, packed into one ragged row (nanog1.core.ragged), then
        scattered back to [B, L, H] with zeros at padding. Exomes carry 1–20,000 mutations, so a
        padded batch is mostly padding; rows not right-padded take the padded path."""
        lengths = right_padded_lengths(padding)
        if lengths is None:
            return self.stack(x, padding_mask=padding)
        keep = ~padding
        out = self.stack(x[keep][None], ragged=Ragged.from_lengths(lengths, x.device))[0]
        full = out.new_zeros(*padding.shape, out.shape[-1])
        full[keep] = out
        return full

    def type_logits(self, ids, summary, bags=None) -> torch.Tensor:
        """Cancer-type logits [B, n_types]."""
        return self.type_head(self.encode(ids, summary, bags=bags)[:, 0])

    def embedding(self, ids, summary, bags=None) -> torch.Tensor:
        """Pooled (CLS) embedding [B, H]."""
        return self.encode(ids, summary, bags=bags)[:, 0]

    def masked_logits(self, ids, summary, mask) -> dict[str, torch.Tensor]:
        """Class, consequence and capped-gene logits of the masked tokens [n_masked, classes]."""
        h = self.encode(ids, summary, mask)[:, 1:][mask]
        return {k: head(h) for k, head in self.mlm_heads.items()}
