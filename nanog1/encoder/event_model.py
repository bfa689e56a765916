"""Event encoder over cohort vocabularies: one token per mutation, a catalogue-summary CLS token.

A token is the sum of one embedding per field (mutation class, gene, consequence, chromosome,
position bin, VAF bin; tables sized by the cohort's `EventVocab`, see nanog1.genomics.event_vocab).
Ids outside a table raise (no modulo: two values never share a row). The CLS token starts from a
linear map of the tumour's summary over all of its mutations (each measured channel set's shares and
log burden, consequence shares; `event_vocab.summary_features`), so a tumour whose mutations were
capped still carries its whole catalogue. With `gene_bag` = K > 0 the CLS token also gets a linear map
of the tumour's gene bag: 0/1 over the K genes mutated in most training tumours, over all of its
mutations (nanog1.genomics.gene_bag states the rule): the whole tumour's gene content, which a window
of tokens misses. The bag rides in the last K columns of the `summary` tensor the methods take.

Heads: cancer type from the CLS state; masked-mutation pretraining predicts a masked token's class,
consequence and gene (the `gene_top_k` commonest genes of a commonest-first vocabulary, or "other")
from its neighbours and the tumour's summary (every field of a masked token is replaced by the MASK id;
losses.masked_event_loss).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

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
        self.in_norm = nn.LayerNorm(h)
        self.stack = Stack(cfg.stack_config())
        self.type_head = nn.Linear(h, cfg.n_types) if cfg.n_types else None
        sizes = {"channel": cfg.vocab_sizes["channel"], "consequence": cfg.vocab_sizes["consequence"],
                 "gene": min(cfg.gene_top_k, cfg.vocab_sizes["gene"] - MASK_ID - 1) + 1}  # fmt: skip
        self.mlm_heads = nn.ModuleDict({k: nn.Linear(h, n) for k, n in sizes.items()})

    def encode(
        self, ids: dict[str, torch.Tensor], summary: torch.Tensor | None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """States [B, 1 + L, H] (CLS first). mask [B, L] True = hide the token (all fields -> MASK)."""
        if mask is not None:
            ids = {k: torch.where(mask, torch.full_like(v, MASK_ID), v) for k, v in ids.items()}
        x = self.embed(ids)
        b = x.shape[0]
        cls = self.cls.expand(b, -1)
        if summary is not None:
            cls = cls + self._summary(summary)
        x = torch.cat([cls.unsqueeze(1).to(x.dtype), x], dim=1)
        padding = ids["channel"] == 0
        padding = torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)
        if self.cfg.packed and x.is_cuda:
            return self.stack_packed(self.in_norm(x), padding)
        return self.stack(self.in_norm(x), padding_mask=padding)

    def _summary(self, summary: torch.Tensor) -> torch.Tensor:
        """CLS content [B, H] from the summary [B, n_summary (+ gene_bag)] columns."""
        n, k = self.cfg.n_summary, self.cfg.gene_bag
        if summary.shape[-1] != n + k:
            raise ValueError(
                f"summary has {summary.shape[-1]} columns; this model reads {n} + a gene bag of {k}"
            )
        out = self.summary(summary[:, :n]) if self.summary is not None else 0.0
        if self.gene_bag is not None:
            out = out + self.gene_bag(summary[:, n:])
        return out

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

    def type_logits(self, ids, summary) -> torch.Tensor:
        """Cancer-type logits [B, n_types]."""
        return self.type_head(self.encode(ids, summary)[:, 0])

    def embedding(self, ids, summary) -> torch.Tensor:
        """Pooled (CLS) embedding [B, H]."""
        return self.encode(ids, summary)[:, 0]

    def masked_logits(self, ids, summary, mask) -> dict[str, torch.Tensor]:
        """Class, consequence and capped-gene logits of the masked tokens [n_masked, classes]."""
        h = self.encode(ids, summary, mask)[:, 1:][mask]
        return {k: head(h) for k, head in self.mlm_heads.items()}
