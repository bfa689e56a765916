"""TCGA event encoder: masked-mutation pretraining on every tumour, then cancer-type fine-tuning on the
fixed folds of benchmarks/tcga_typing.py, SAVO vs rank-matched MHA and Q-Delta, pretrained vs scratch at
10/25/100 %.

Two steps, because the GPU machine has torch and numpy but not pandas/scikit-learn:

    # here (pandas): tokens of both sources + vocabularies + summaries + the saved folds -> one npz
    python benchmarks/tcga_events.py export --typing-work results/tcga_typing --npz results/tcga_events.npz
    # anywhere with torch (GPU or a small CPU run): pretrain, then fine-tune jobs, oof files per source
    python benchmarks/tcga_events.py pretrain --npz results/tcga_events.npz --out results/tcga_events
    python benchmarks/tcga_events.py finetune --npz ... --out results/tcga_events [--shard 0/4]
    # here: tabulate beside the baselines (copy out/<source>/oof_* into the typing work folders)
    python benchmarks/tcga_typing.py --report-only --work results/tcga_typing

Defaults are the GPU recipe of BENCHMARKS.md. A CPU check of the whole path (not a result; about 4 min
on 2 busy cores): `pretrain --hidden 32 --layers 1 --rank 8 --max-len 64 --batch-tokens 8192 --pt-limit
1500 --pt-epochs 2`, then `finetune` with the same shape, `--ft-epochs 2 --shard 0/80 --budget-s 1` (one job).

Token rule (stated, see nanog1.genomics.event_vocab): one token per mutation in genomic order; a
tumour with more than --max-events mutations keeps a deterministic random sample of them (CRC32 of
the barcode), and its CLS token reads the summary over all of its mutations. Vocabularies are built
from every tumour of both sources (no labels used; genes seen in fewer than 3 tumours -> UNK).
Pretraining, like the vocabulary, sees every tumour, labels unused (the held-out folds' tumours too,
unlabelled); fine-tuning sees only the labelled training part of each fold, with 10 % of it held out
to pick the epoch.

Gene bag (`--gene-bag K`, fine-tuning only; nanog1.genomics.gene_bag): the CLS token also reads each
tumour's 0/1 presence of the K genes mutated in most of the job's labelled training tumours (chosen
inside the fold, as gradient boosting's 300 genes are), over *all* of its mutations (export stores the
uncapped (tumour, gene) pairs). `--window bag` also keeps a long tumour's tokens in those genes in its
max-len window first (then random others, genomic order) instead of a random contiguous window.
Pretraining gets no bag: it would show the masked tokens' genes. Best measured so far (BENCHMARKS.md,
CPU, 5 folds): `--gene-bag 300 --max-len 8 --batch-tokens 768` with hidden 64, 2 layers, rank 16 (with
the bag, a long window overfits the gene-token embedding).

More of the tumour in the CLS (fine-tuning only, chosen inside the fold; BENCHMARKS.md): `--hotspots N`
adds 0/1 over the sites (contig:position) mutated in >= N of the job's labelled training tumours (at most
--max-hotspots; export stores the (tumour, site) pairs of sites in >= 2 tumours of either source);
`--hotspot-key codon` keys the
hotspots by protein codon instead (gene + first reference residue + position of the MAF's HGVSp_Short /
Protein_Change, allele-agnostic: KRAS:p.G12 for G12D/V/C; export stores the (tumour, codon) pairs of
codons in >= 2 tumours), `both` puts sites and codons in one bag.
Contrastive pretraining (`pretrain --objective contrastive --pt-name N --pt-folds 0,1,2`, labels unused,
nanog1.encoder.contrastive): one pretraining per (source, fold), on both sources' tumours except the patients
(first 12 characters of the barcode) of that fold's test part; its bag (the --gene-bag genes and --hotspots
sites/codons of the pretraining tumours) is saved with it. Two views a tumour: independent random --max-len
windows, each present bag entry dropped with --pt-bag-drop, summary jittered by --pt-summary-noise; InfoNCE
at --temperature over --pt-batch tumours through a projection head that fine-tuning drops. `finetune
--pt-name N` fine-tunes the pretrained init on that bag (`--bag-from pretrained`: scratch too, a control).
`--embed-bags gene[,bin]` adds the mean learned embedding over *all* of the tumour's distinct genes (or
1 Mb bins), each dropped with probability --bag-dropout in training. `--skip-done` resumes a sweep.

The model is the product's event-view encoder (nanog1.encoder.model.MutationEncoder, `view="events"`) with
the benchmark's CLS inputs: `n_summary` summary features, the gene and hotspot bags in its one bag map, and
`embed_bags`. Runs before its merge used a separate class (EventModel, the same function: BENCHMARKS.md);
its pretrained checkpoints still load (`port_state`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from nanog1.core.qdelta import QDelta
from nanog1.encoder.losses import class_weights, logit_offsets
from nanog1.encoder.model import EncoderOutput, MutationEncoder, MutationEncoderConfig
from nanog1.genomics.gene_bag import (
    HOTSPOT_KEYS,
    codon_keys,
    gene_bag,
    gene_pairs,
    site_keys,
    site_pairs,
    top_genes,
)

FIELDS = ("channel", "gene", "consequence", "chrom", "bin", "vaf")
SOURCES = ("mc3", "firehose")
MIXERS = ("savo", "mha_rank", "qdelta")  # qdelta: bidirectional (forward + backward scans), SAVO's rank
SETTINGS = ("temperature", "pt_bag_drop", "pt_summary_noise", "pt_batch", "pt_epochs", "lr", "max_len")


# ----------------------------------------------------------------------------------------- export (pandas)
def export(args) -> None:
    """Ingest both MAFs with NanoG1 (no reference, every FILTER value kept, as the baselines read them),
    build the model vocabularies, tokens, summaries, labels and saved folds; write the npz."""
    import anndata as ad
    import pandas as pd

    from nanog1.genomics import event_vocab as ev
    from nanog1.genomics.ingest import IngestOptions, ingest

    cohorts = {}
    for source in SOURCES:
        path = args.npz.parent / f"tcga_{source}.h5ad"
        if not path.exists():
            rep = ingest(
                [args.tcga / source / "mutations.maf.gz"], None, None, path, IngestOptions(filter="all")
            )
            print(
                f"{source}: ingested {rep.n_samples} tumours, {rep.n_events} events, skips {dict(rep.skips)}"
            )
        cohorts[source] = ad.read_h5ad(path)
    vocab = ev.build_vocab([a.uns["tokens"] for a in cohorts.values()], {"gene": args.min_gene_tumours})
    keys = ("ids", "lengths", "tumours", "label", "fold", "summary", "pairs", "bins", "sites", "site_counts",
            "codons")
    parts: dict[str, list] = {k: [] for k in keys}
    first_row = 0
    for source, adata in cohorts.items():
        tok = adata.uns["tokens"]
        names = np.array([f"{source}|{t}" for t in adata.obs_names])
        keep = ev.cap_per_tumour(tok["offsets"], names, args.max_events)
        all_ids = ev.encode(tok, vocab)
        for key, field in (("pairs", "gene"), ("bins", "bin")):  # every mutation, before the cap
            rows, values = gene_pairs(tok["offsets"], all_ids[field])
            parts[key].append(np.stack([rows + first_row, values], axis=1))
        parts["sites"].append(site_keys(tok))
        parts["codons"].append(codon_keys(tok))  # '' where the MAF gave no usable protein change
        parts["site_counts"].append(np.diff(tok["offsets"]))
        first_row += adata.n_obs
        ids = {k: v[keep] for k, v in all_ids.items()}
        ev.check_ids(ids, vocab.sizes())
        rows = ev.tumour_index(tok)[keep]
        saved = pd.read_csv(
            args.typing_work / source / "folds.tsv", sep="\t", index_col="Tumor_Sample_Barcode"
        )
        parts["ids"].append(ids)
        parts["lengths"].append(np.bincount(rows, minlength=adata.n_obs))
        parts["tumours"].append(names)
        parts["label"].append(adata.obs["cancer_type"].astype(str).to_numpy())
        parts["fold"].append(saved["fold"].reindex(adata.obs_names).fillna(-1).astype(np.int64).to_numpy())
        parts["summary"].append(ev.summary_features(adata, vocab.values["consequence"]))
    lengths = np.concatenate(parts["lengths"])
    summary = pd.concat(parts["summary"]).fillna(0.0)
    all_offsets = np.r_[0, np.cumsum(np.concatenate(parts["site_counts"]))]
    # only sites / codons of >= 2 tumours can ever be recurrent in a training part (labels unused): smaller
    site_rows, site_ids, site_names = _recurrent(site_pairs(all_offsets, np.concatenate(parts["sites"])))
    codon_rows, codon_ids, codon_names = _recurrent(site_pairs(all_offsets, np.concatenate(parts["codons"])))
    print(
        f"{len(lengths)} tumours, {lengths.sum()} tokens kept (cap {args.max_events}); length median "
        f"{np.median(lengths):.0f}, p99 {np.percentile(lengths, 99):.0f}; vocab {vocab.sizes()}",
        flush=True,
    )
    args.npz.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.npz.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        **{f"ids_{k}": np.concatenate([p[k] for p in parts["ids"]]) for k in FIELDS},
        offsets=np.r_[0, np.cumsum(lengths)].astype(np.int64),
        tumours=np.concatenate(parts["tumours"]).astype(str),
        label=np.concatenate(parts["label"]).astype(str),
        fold=np.concatenate(parts["fold"]),
        summary=summary.to_numpy(np.float32),
        summary_names=np.array(summary.columns, dtype=str),
        gene_pairs=np.concatenate(parts["pairs"]).astype(np.int64),  # (tumour row, gene id), all mutations
        bin_pairs=np.concatenate(parts["bins"]).astype(np.int64),  # (tumour row, 1 Mb bin id), all mutations
        site_pairs=np.stack([site_rows, site_ids], axis=1).astype(np.int64),  # (row, 3 + site), sites of >= 2
        site_names=site_names.astype(str),
        codon_pairs=np.stack([codon_rows, codon_ids], axis=1).astype(np.int64),  # (row, 3 + codon), >= 2
        codon_names=codon_names.astype(str),  # "KRAS:p.G12" (nanog1.genomics.protein)
        vocab=np.array(json.dumps({"values": vocab.values})),
        max_events=np.array(args.max_events),
    )
    os.replace(tmp, args.npz)
    print(f"wrote {args.npz} ({args.npz.stat().st_size / 1e6:.1f} MB)", flush=True)


def _recurrent(pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, ids, names) of `site_pairs` keeping the pairs of ids carried by >= 2 tumours."""
    rows, ids, names = pairs
    keep = np.bincount(ids, minlength=len(names) + 3)[ids] >= 2
    return rows[keep], ids[keep], names


# ------------------------------------------------------------------------------------------ data (torch)
class Tokens:
    """The npz's ragged tokens as one flat tensor per field on the device, gathered into padded batches."""

    def __init__(self, npz: Path, device: torch.device):
        z = np.load(npz, allow_pickle=False)
        self.ids = {k: torch.from_numpy(z[f"ids_{k}"].astype(np.int64)).to(device) for k in FIELDS}
        self.offsets = z["offsets"]
        self.lengths = np.diff(self.offsets)
        self.tumours = z["tumours"]
        self.label = z["label"]
        self.fold = z["fold"]
        s = z["summary"]
        self.summary = torch.from_numpy((s - s.mean(0)) / (s.std(0) + 1e-6)).to(device)
        self.vocab = json.loads(str(z["vocab"]))
        self.device = device
        self.gene_ids = z["ids_gene"]
        pairs = z["gene_pairs"] if "gene_pairs" in z.files else np.zeros((0, 2), dtype=np.int64)
        self.pair_rows, self.pair_genes = pairs[:, 0], pairs[:, 1]
        self.pairs = {"gene": pairs}  # field -> (row, id) pairs over every mutation, sorted by row
        self.names = {}  # hotspot kind -> names of its ids (id = 3 + index)
        for key, name in (("bin_pairs", "bin"), ("site_pairs", "site"), ("codon_pairs", "codon")):
            if key in z.files:
                self.pairs[name] = z[key]
        for name in ("site", "codon"):
            self.names[name] = z[f"{name}_names"] if f"{name}_names" in z.files else np.zeros(0, dtype=str)

    def hotspot_pairs(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, ids, names) of the hotspot `key`: site, codon, or both (codon ids after the sites')."""
        kinds = ("site", "codon") if key == "both" else (key,)
        missing = [k for k in kinds if k not in self.pairs]
        if missing:
            raise SystemExit(f"this npz has no {missing[0]}_pairs: re-run `export` for --hotspot-key {key}")
        rows, ids, names, shift = [], [], [], 0
        for kind in kinds:
            rows.append(self.pairs[kind][:, 0])
            ids.append(self.pairs[kind][:, 1] + shift)
            names.append(self.names[kind])
            shift += len(self.names[kind])
        return np.concatenate(rows), np.concatenate(ids), np.concatenate(names)

    def with_hotspot_bag(self, summary: torch.Tensor, train: np.ndarray, min_count: int, k: int, key: str):
        """`summary` + every tumour's 0/1 hotspot bag: the (at most k) hotspots (`key`: sites, codons or
        both) mutated in >= min_count `train` tumours (nanog1.genomics.gene_bag), and their names."""
        rows, ids, names = self.hotspot_pairs(key)
        chosen = top_genes(rows, ids, train, k, min_count=min_count)
        bag = gene_bag(rows, ids, chosen, len(self.lengths))
        return torch.cat([summary, torch.from_numpy(bag).to(self.device)], 1), names[chosen - 3]

    def bags(self, rows: np.ndarray, fields: tuple[str, ...]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """field -> (flat ids of every distinct value of each of `rows`, count per row) on the device."""
        out = {}
        for name in fields:
            pairs = self.pairs[name]
            start = np.searchsorted(pairs[:, 0], rows, side="left")
            counts = np.searchsorted(pairs[:, 0], rows, side="right") - start
            flat = np.repeat(start - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
            out[name] = (torch.from_numpy(pairs[flat, 1]).to(self.device),
                         torch.from_numpy(counts).to(self.device))  # fmt: skip
        return out

    def with_bags(self, genes: np.ndarray, hotspots: np.ndarray, key: str) -> torch.Tensor:
        """Summaries [N, S + len(genes) + len(hotspots)]: the standardised summary + every tumour's 0/1 bag
        over the given gene ids and hotspot ids (of `hotspot_pairs(key)`), e.g. a pretraining's own bag."""
        n = len(self.lengths)
        out = [self.summary, torch.from_numpy(gene_bag(self.pair_rows, self.pair_genes, genes, n))]
        if len(hotspots):
            rows, ids, _ = self.hotspot_pairs(key)
            out.append(torch.from_numpy(gene_bag(rows, ids, hotspots, n)))
        return torch.cat([o.to(self.device) for o in out], 1)

    def with_gene_bag(self, train: np.ndarray, k: int) -> tuple[torch.Tensor, np.ndarray]:
        """Summaries [N, S + k]: the standardised summary + every tumour's 0/1 gene bag over the k genes
        mutated in most `train` tumours (chosen from those rows only; nanog1.genomics.gene_bag), and
        the chosen gene ids."""
        if not len(self.pair_rows):
            raise SystemExit("this npz has no gene_pairs: re-run `export` to use --gene-bag")
        chosen = top_genes(self.pair_rows, self.pair_genes, train, k)
        bag = gene_bag(self.pair_rows, self.pair_genes, chosen, len(self.lengths))
        return torch.cat([self.summary, torch.from_numpy(bag).to(self.device)], 1), chosen

    def batch(
        self,
        rows: np.ndarray,
        max_len: int,
        summary: torch.Tensor | None = None,
        keep: np.ndarray | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Padded ids [B, L] (L = the batch's longest, at most max_len) and summaries [B, S] (rows of
        `summary`, default the npz's own). A tumour longer than max_len gives a random contiguous window,
        or with `keep` (a flag per token) its flagged tokens first (a random max_len of them if more),
        then random others up to max_len, in genomic order (`window_positions`)."""
        lens = np.minimum(self.lengths[rows], max_len)
        width = int(lens.max())
        pos = np.arange(width)[None, :]
        valid = pos < lens[:, None]
        if keep is None:
            starts = self.offsets[rows] + np.where(
                self.lengths[rows] > max_len,
                np.random.randint(0, 1 << 30, len(rows)) % (self.lengths[rows] - lens + 1),
                0,
            )
            flat = np.where(valid, starts[:, None] + pos, 0)
        else:
            flat = np.zeros(valid.shape, dtype=np.int64)
            for i, row in enumerate(rows):
                flat[i, : lens[i]] = window_positions(self.offsets[row], self.offsets[row + 1], max_len, keep)
        flat = torch.from_numpy(flat).to(self.device)
        valid_t = torch.from_numpy(valid).to(self.device)
        ids = {k: torch.where(valid_t, v[flat], 0) for k, v in self.ids.items()}
        summary = self.summary if summary is None else summary
        return ids, summary[torch.from_numpy(rows).to(self.device)]


def window_positions(start: int, end: int, max_len: int, keep: np.ndarray) -> np.ndarray:
    """Flat token positions of one tumour's window: all of them when it has <= max_len; else its `keep`
    tokens first (a random max_len of them when more), filled with random others, in genomic order."""
    if end - start <= max_len:
        return np.arange(start, end)
    key = np.random.random(end - start) - keep[start:end]  # flagged tokens sort first
    return start + np.sort(np.argsort(key)[:max_len])


def length_batches(lengths: np.ndarray, rows: np.ndarray, tokens: int, max_len: int, rng) -> list[np.ndarray]:
    """Length-bucketed batches: rows sorted by length (ties and order shuffled), cut so that
    batch size x longest <= tokens; batch order shuffled."""
    lens = np.minimum(lengths[rows], max_len)
    order = rows[np.lexsort((rng.random(len(rows)), lens))]
    out, start = [], 0
    for i in range(1, len(order) + 1):
        width = min(lengths[order[i - 1]], max_len)
        if (i - start) * width > tokens or i == len(order):
            end = i if (i - start) * width <= tokens or i - start == 1 else i - 1
            out.append(order[start:end])
            start = end
    if start < len(order):
        out.append(order[start:])
    rng.shuffle(out)
    return out


# ------------------------------------------------------------------------------------- pretraining
def set_lr(opt: torch.optim.Optimizer, base: float, progress: float, warmup: float) -> None:
    """Linear warm-up over the first `warmup` of training, then cosine decay to zero (progress in [0, 1])."""
    scale = (
        progress / warmup
        if progress < warmup
        else 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))
    )
    for group in opt.param_groups:
        group["lr"] = base * scale


def mask_tokens(ids: dict[str, torch.Tensor], rate: float, gen: torch.Generator) -> torch.Tensor:
    """Mask [B, L]: each real token with probability `rate`, at least one per tumour."""
    real = ids["channel"] > 0
    mask = (torch.rand(real.shape, device=real.device, generator=gen) < rate) & real
    score = torch.rand(real.shape, device=real.device, generator=gen).masked_fill(~real, -1)
    first = F.one_hot(score.argmax(1), real.shape[1]).bool() & real
    return mask | first


def run_model(model: MutationEncoder, ids, summary, token_mask=None, bags=None) -> EncoderOutput:
    """The encoder on a padded batch (padding = channel id 0): `summary`'s first cfg.n_summary columns are
    the summary features, the rest the 0/1 bag (genes, then hotspots); `bags` the embedding bags."""
    n, width = model.cfg.n_summary, model.gene_bag.in_features if model.gene_bag is not None else 0
    if summary.shape[-1] != n + width:
        raise ValueError(f"summary has {summary.shape[-1]} columns; this model reads {n} + a gene bag of "
                         f"{len(model.cfg.gene_bag)} + a hotspot bag of {len(model.cfg.hotspots)}")
    return model(events=ids, padding_mask=ids["channel"] == 0, token_mask=token_mask,
                 summary_features=summary[:, :n], gene_bag=summary[:, n:] if width else None, bags=bags)


def port_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the former EventModel (pretrained before the merge) in MutationEncoder's names:
    summary -> summary_features, mlm_heads -> masked_heads, and its gene_bag + hotspot_bag maps -> one bag
    map over both column blocks (weights side by side, biases summed: the same function). Others as is."""
    if not any(k.startswith("mlm_heads.") for k in state):
        return state
    out = {}
    for k, v in state.items():
        if k.startswith(("gene_bag.", "hotspot_bag.")):
            continue
        k = "summary_features." + k.removeprefix("summary.") if k.startswith("summary.") else k
        out["masked_heads." + k.removeprefix("mlm_heads.") if k.startswith("mlm_heads.") else k] = v
    parts = [p for p in ("gene_bag", "hotspot_bag") if f"{p}.weight" in state]
    if parts:
        out["gene_bag.weight"] = torch.cat([state[f"{p}.weight"] for p in parts], 1)
        out["gene_bag.bias"] = sum(state[f"{p}.bias"] for p in parts)
    return out


def mlm_loss(
    model: MutationEncoder, ids, summary, mask, gene_weights
) -> tuple[torch.Tensor, dict[str, float]]:
    """The masked-event objective (losses.masked_event_loss: class + consequence + capped gene, weighted),
    with each head's accuracy and its majority-class baseline on this batch's masked tokens."""
    from nanog1.encoder import losses  # imports pandas (nanog1.schema): off the fine-tuning path

    logits = run_model(model, ids, summary, mask).masked_logits
    k = logits["gene"].shape[-1] - 1
    targets = losses.masked_targets(ids, mask, k)
    stats = {}
    for name in losses.MASKED_HEADS:
        t = targets[name]
        stats[f"{name}_acc"] = (logits[name].argmax(-1) == t).float().mean().item()
        stats[f"{name}_majority"] = torch.bincount(t).max().item() / len(t)
    top = targets["gene"] < k
    if top.any():
        t = targets["gene"][top]
        stats["gene_topk_acc"] = (logits["gene"][top].argmax(-1) == t).float().mean().item()
        stats["gene_topk_majority"] = torch.bincount(t).max().item() / len(t)
    return losses.masked_event_loss(logits, targets, gene_weights), stats


def model_config(
    args, data: Tokens, mixer: str, n_types: int, genes=(), hotspots=()
) -> MutationEncoderConfig:
    """The recipe's shape on the event-view encoder (the npz's vocabularies, its summary features, no
    catalogue summary); mha_rank gets the rank whose parameter count is closest to SAVO's, qdelta SAVO's
    own rank (its smallest rank still has more mixer parameters than SAVO's: at hidden 64 the nearest is 4,
    one key dimension a head; at rank 16 the whole model is < 1 % larger, the embeddings dominate). Bags
    (`genes`, `hotspots`: names) only when fine-tuning or contrastive pretraining: in masked pretraining
    they would show the masked tokens' genes."""
    base = MutationEncoderConfig(view="events", event_vocab=data.vocab["values"], summary=False,
                                 n_summary=data.summary.shape[1], hidden=args.hidden, layers=args.layers,
                                 rank=args.rank, heads=args.heads, mixer="savo", dropout=args.dropout,
                                 n_types=n_types, gene_top_k=args.gene_top_k,
                                 gene_bag=[str(g) for g in genes], hotspots=[str(h) for h in hotspots],
                                 embed_bags=list(embed_fields(args)) if n_types else [],
                                 bag_dropout=args.bag_dropout)  # fmt: skip
    if mixer != "mha_rank":
        return MutationEncoderConfig(**(base.to_dict() | {"mixer": mixer}))
    target = _n_params(base)
    best = min(
        (r for r in range(args.heads, args.hidden + 1, args.heads)),
        key=lambda r: abs(
            _n_params(MutationEncoderConfig(**(base.to_dict() | {"mixer": mixer, "rank": r}))) - target
        ),
    )
    return MutationEncoderConfig(**(base.to_dict() | {"mixer": mixer, "rank": best}))


def set_qdelta_chunk(model: MutationEncoder, chunk: int) -> MutationEncoder:
    """Q-Delta layers scan in chunks of `chunk` steps (the chunkwise form is exact: outputs equal for any
    chunk). The layer's default 64 pads an 8-token window + CLS to 64 steps: on CPU chunk 16 was 30x faster
    at max-len 8, same outputs. On CUDA the fused kernels need 64 (another chunk runs the PyTorch form)."""
    for layer in model.modules():
        if isinstance(layer, QDelta):
            layer.chunk_size = chunk
    return model


def gene_names(data: Tokens, ids: np.ndarray) -> list[str]:
    """The vocabulary's names of gene ids (id = 3 + position)."""
    return [data.vocab["values"]["gene"][g - 3] for g in ids]


def embed_fields(args) -> tuple[str, ...]:
    """Token fields of --embed-bags (e.g. "gene,bin"), in order."""
    return tuple(f for f in args.embed_bags.split(",") if f)


_N_PARAMS: dict[str, int] = {}


def _n_params(cfg: MutationEncoderConfig) -> int:
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _N_PARAMS:
        _N_PARAMS[key] = sum(p.numel() for p in MutationEncoder(cfg).parameters())
    return _N_PARAMS[key]


def patient_ids(tumours: np.ndarray) -> np.ndarray:
    """TCGA patient of each "source|barcode" row: the barcode's first 12 characters (TCGA-02-0001 of
    TCGA-02-0001-01C); the two sources share patients, so a held-out fold is held out of pretraining by
    patient."""
    return np.array([str(t).split("|", 1)[1][:12] for t in tumours])


def pretraining_rows(data: Tokens, source: str, fold: int) -> np.ndarray:
    """Rows of both sources whose patient has no tumour in `source`'s test fold `fold` (labels unused)."""
    patients = patient_ids(data.tumours)
    src = np.char.startswith(data.tumours.astype(str), source + "|")
    held = np.unique(patients[src & (data.fold == fold)])
    return np.flatnonzero(~np.isin(patients, held))


def checkpoint_path(args, mixer: str, source: str | None = None, fold: int | None = None) -> Path:
    """pretrained_<mixer>.pt (one masked pretraining on every tumour), or with --pt-name N a contrastive
    one per evaluated (source, fold): pretrained_<mixer>_<N>_<source>_f<fold>.pt."""
    if not args.pt_name:
        return args.out / f"pretrained_{mixer}.pt"
    return args.out / f"pretrained_{mixer}_{args.pt_name}_{source}_f{fold}.pt"


def pretrain(args) -> None:
    """--objective masked: masked-mutation modelling on every tumour of both sources, one checkpoint per
    mixer; contrastive: one two-view pretraining per (source, fold of --pt-folds), held-out patients out."""
    if args.objective == "contrastive":
        data = Tokens(args.npz, torch.device(args.device))
        for source in args.sources.split(","):
            for fold in (int(f) for f in args.pt_folds.split(",")):
                for mixer in args.mixers.split(","):
                    pretrain_contrastive(args, data, source, fold, mixer)
        return
    pretrain_masked(args)


def pretrain_contrastive(args, data: Tokens, source: str, fold: int, mixer: str) -> None:
    """Two-view InfoNCE on the CLS embedding (nanog1.encoder.contrastive) over every tumour of both sources
    except `source` fold `fold`'s test patients, labels unused. Its own bag (genes in most pretraining
    tumours, hotspots in >= --hotspots of them) is saved with it: the pretrained init fine-tunes on that bag.
    5 % of the pretraining tumours are kept aside to report the view accuracy (chance 1 / --pt-batch)."""
    from nanog1.encoder import contrastive as con

    path = checkpoint_path(args, mixer, source, fold)
    if args.skip_done and path.exists():
        return
    device = data.device
    rng = np.random.default_rng(args.seed + 100 * fold)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    rows = pretraining_rows(data, source, fold)
    genes, hot = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if args.gene_bag:
        genes = top_genes(data.pair_rows, data.pair_genes, rows, args.gene_bag)
    if args.hotspots:
        h_rows, h_ids, _ = data.hotspot_pairs(args.hotspot_key)
        hot = top_genes(h_rows, h_ids, rows, args.max_hotspots, min_count=args.hotspots)
    summary = data.with_bags(genes, hot, args.hotspot_key)
    aside = rng.choice(rows, max(args.pt_batch, len(rows) // 20), replace=False)
    train = np.setdiff1d(rows, aside)
    hot_names = data.hotspot_pairs(args.hotspot_key)[2][hot - 3] if len(hot) else []
    cfg = model_config(args, data, mixer, n_types=0, genes=gene_names(data, genes), hotspots=hot_names)
    model = set_qdelta_chunk(MutationEncoder(cfg), args.qdelta_chunk).to(device)
    head = con.ProjectionHead(cfg.hidden).to(device)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01)
    n_plain = data.summary.shape[1]

    def views(b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for _ in range(2):  # two independent random windows, bag drops and summary jitters
            ids, summ = data.batch(b, args.max_len, summary)
            summ = con.augment_view(summ, slice(n_plain, None), args.pt_bag_drop, args.pt_summary_noise, gen)
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                out.append(head(run_model(model, ids, summ).embedding).float())
        return out[0], out[1]

    t0, log, n_batches = time.perf_counter(), [], max(1, len(train) // args.pt_batch)
    for epoch in range(args.pt_epochs):
        model.train()
        order = rng.permutation(train)
        tot, accs = 0.0, []
        for i in range(n_batches):
            set_lr(opt, args.lr, (epoch + i / n_batches) / args.pt_epochs, warmup=0.05)
            z1, z2 = views(order[i * args.pt_batch : (i + 1) * args.pt_batch])
            loss = con.info_nce(z1, z2, args.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*model.parameters(), *head.parameters()], 1.0)
            opt.step()
            tot += loss.item()
            accs.append(con.view_accuracy(z1, z2))
        model.eval()
        with torch.no_grad():
            held = [views(b) for b in np.array_split(aside, len(aside) // args.pt_batch)]
        row = {"epoch": epoch, "loss": tot / n_batches, "view_acc": float(np.mean(accs)),
               "aside_loss": float(np.mean([con.info_nce(a, b, args.temperature).item() for a, b in held])),
               "aside_view_acc": float(np.mean([con.view_accuracy(a, b) for a, b in held])),
               "chance": 1 / args.pt_batch, "seconds": time.perf_counter() - t0}  # fmt: skip
        log.append(row)
        print(f"pretrain[{mixer} {source} f{fold}] " + json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = {"config": cfg.to_dict(), "vocab": data.vocab, "state": model.state_dict(), "log": log,
            "objective": "contrastive", "bag_genes": genes.tolist(), "hotspot_ids": hot.tolist(),
            "hotspot_key": args.hotspot_key, "n_pretrain": len(rows), "source": source, "fold": fold,
            "settings": {k: getattr(args, k) for k in SETTINGS}}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def pretrain_masked(args) -> None:
    """Masked-mutation modelling on every tumour of both sources (labels unused); one checkpoint per mixer."""
    from nanog1.encoder import losses  # see mlm_loss

    device = torch.device(args.device)
    data = Tokens(args.npz, device)
    for mixer in args.mixers.split(","):
        torch.manual_seed(args.seed)
        cfg = model_config(args, data, mixer, n_types=0)
        model = set_qdelta_chunk(MutationEncoder(cfg), args.qdelta_chunk).to(device)
        k = model.masked_heads["gene"].out_features - 1
        gene_weights = losses.gene_class_weights(data.ids["gene"].cpu().numpy(), k, args.gene_weight_power)
        gene_weights = gene_weights.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        rng, gen = np.random.default_rng(args.seed), torch.Generator(device=device).manual_seed(args.seed)
        rows = np.arange(len(data.lengths))
        if args.pt_limit:  # a small CPU check: a seeded sample of tumours
            rows = np.sort(rng.choice(rows, min(args.pt_limit, len(rows)), replace=False))
        t0, log = time.perf_counter(), []
        for epoch in range(args.pt_epochs):
            model.train()
            tot, n, accs = 0.0, 0, []
            batches = length_batches(data.lengths, rows, args.batch_tokens, args.max_len, rng)
            for i, b in enumerate(batches):
                set_lr(opt, args.lr, (epoch + i / len(batches)) / args.pt_epochs, warmup=0.05)
                ids, summ = data.batch(b, args.max_len)
                with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                    mask = mask_tokens(ids, args.mask_rate, gen)
                    loss, acc = mlm_loss(model, ids, summ, mask, gene_weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                tot, n = tot + loss.item(), n + 1
                accs.append(acc)
            names = sorted(set().union(*accs))
            row = {"epoch": epoch, "loss": tot / n, "seconds": time.perf_counter() - t0,
                   **{k: float(np.nanmean([a.get(k, np.nan) for a in accs])) for k in names}}  # fmt: skip
            log.append(row)
            print(f"pretrain[{mixer}] " + json.dumps(row), flush=True)
            if time.perf_counter() - t0 > args.pt_budget_s:
                print(f"pretrain[{mixer}]: --pt-budget-s spent after epoch {epoch}", flush=True)
                break
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"config": cfg.to_dict(), "vocab": data.vocab, "state": model.state_dict(), "log": log},
            args.out / f"pretrained_{mixer}.pt",
        )


# ------------------------------------------------------------------------------------- fine-tuning
def jobs(args) -> list[dict]:
    """Every fine-tuning run, most important first: (source, fold, mixer, init, fraction, seed)."""
    out = []
    wanted = [float(f) for f in args.fractions.split(",")]
    plan = [(f, s) for s in range(args.seeds) for f in (1.0, 0.25, 0.1)]  # a seed also redraws the subset
    for frac, seed in [(f, s) for f, s in plan if f in wanted]:
        for source in args.sources.split(","):
            for fold in range(args.folds):
                for mixer, init in [(m, i) for m in MIXERS for i in ("pretrained", "scratch")]:
                    if frac < 1.0 and mixer not in args.low_label_mixers.split(","):
                        continue
                    if mixer not in args.mixers.split(","):
                        continue
                    if init not in args.inits.split(","):
                        continue
                    out.append({"source": source, "fold": fold, "mixer": mixer, "init": init,
                                "frac": frac, "seed": seed, "gene_bag": args.gene_bag,
                                "window": args.window, "predict_windows": args.predict_windows,
                                "hotspots": args.hotspots, "hotspot_key": args.hotspot_key,
                                "embed_bags": args.embed_bags,
                                "bag_dropout": args.bag_dropout, "logit_adjust": args.logit_adjust,
                                "class_weight_power": args.class_weight_power,
                                "label_smoothing": args.label_smoothing, "tag": args.tag,
                                "pt_name": getattr(args, "pt_name", ""),
                                "bag_from": getattr(args, "bag_from", "labelled")})  # fmt: skip
    return out


def job_name(job: dict) -> str:
    """Row name in the typing table, e.g. events_savo_pretrained_p100_s0."""
    bag = f"_bag{job['gene_bag']}" if job.get("gene_bag") else ""
    bag += "_keep" if job.get("window") == "bag" else ""
    bag += f"_w{job['predict_windows']}" if job.get("predict_windows", 1) > 1 else ""
    key = job.get("hotspot_key", "site")
    bag += f"_hot{job['hotspots']}{'' if key == 'site' else key}" if job.get("hotspots") else ""
    bag += "".join(f"_e{f}" for f in job.get("embed_bags", "").split(",") if f)
    bag += f"_la{job['logit_adjust']:g}" if job.get("logit_adjust") else ""  # non-default loss options
    bag += f"_cw{job['class_weight_power']:g}" if job.get("class_weight_power", 0.5) != 0.5 else ""
    bag += f"_ls{job['label_smoothing']:g}" if job.get("label_smoothing", 0.1) != 0.1 else ""
    bag += f"_{job['tag']}" if job.get("tag") else ""
    if job.get("pt_name") and job["init"] == "pretrained":
        bag += f"_{job['pt_name']}"
    elif job.get("pt_name") and job.get("bag_from") == "pretrained":
        bag += f"_ptbag{job['pt_name']}"
    return f"events_{job['mixer']}_{job['init']}{bag}_p{round(job['frac'] * 100)}_s{job['seed']}"


def stratified_subset(labels: np.ndarray, frac: float, rng) -> np.ndarray:
    """Indices of a stratified `frac` of `labels` (at least one per class)."""
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, max(1, round(frac * len(idx))), replace=False))
    return np.sort(np.concatenate(keep))


def run_job(args, data: Tokens, job: dict) -> None:
    """Fine-tune one (source, fold, ...) and write its test-fold probabilities."""
    device = data.device
    src = np.array([t.split("|", 1)[0] == job["source"] for t in data.tumours]) & (data.fold >= 0)
    rows_src = np.flatnonzero(src)  # the typing benchmark's row order (barcodes sorted)
    classes = sorted(set(data.label[rows_src]))
    y_all = np.full(len(data.label), -1)
    y_all[rows_src] = np.searchsorted(classes, data.label[rows_src])
    rng = np.random.default_rng(1000 * job["seed"] + job["fold"])
    train = rows_src[data.fold[rows_src] != job["fold"]]
    test = rows_src[data.fold[rows_src] == job["fold"]]
    if job["frac"] < 1.0:
        train = train[stratified_subset(y_all[train], job["frac"], rng)]
    summary, bag_genes = data.summary, np.zeros(0, dtype=np.int64)
    hot_sites, ckpt = np.zeros(0, dtype=str), None
    if job.get("pt_name") and (job["init"] == "pretrained" or job.get("bag_from") == "pretrained"):
        path = checkpoint_path(args, job["mixer"], job["source"], job["fold"])
        ckpt = torch.load(path, map_location=device, weights_only=True)
    if ckpt is not None and "bag_genes" in ckpt:  # the pretraining's own bag (chosen without labels)
        bag_genes, hot_ids = np.asarray(ckpt["bag_genes"], dtype=np.int64), np.asarray(ckpt["hotspot_ids"])
        summary = data.with_bags(bag_genes, hot_ids, ckpt["hotspot_key"])
        hot_sites = data.hotspot_pairs(ckpt["hotspot_key"])[2][hot_ids - 3] if len(hot_ids) else hot_sites
    elif job.get("gene_bag"):  # genes chosen on the job's labelled training tumours (validation part too)
        summary, bag_genes = data.with_gene_bag(train, job["gene_bag"])
    if job.get("hotspots") and ckpt is None:  # sites recurrent in >= N of the job's labelled training tumours
        key = job.get("hotspot_key", "site")
        summary, hot_sites = data.with_hotspot_bag(summary, train, job["hotspots"], args.max_hotspots, key)
    keep = np.isin(data.gene_ids, bag_genes) if job.get("window") == "bag" else None  # tokens always kept
    val = train[stratified_subset(y_all[train], 0.1, rng)]
    train = np.setdiff1d(train, val)
    torch.manual_seed(job["seed"])
    np.random.seed(job["seed"])
    cfg = model_config(args, data, job["mixer"], n_types=len(classes), genes=gene_names(data, bag_genes),
                       hotspots=hot_sites)  # fmt: skip
    model = set_qdelta_chunk(MutationEncoder(cfg), args.qdelta_chunk).to(device)
    if job["init"] == "pretrained":
        if ckpt is None:
            ckpt = torch.load(checkpoint_path(args, job["mixer"]), map_location=device, weights_only=True)
        missing = model.load_state_dict(port_state(ckpt["state"]), strict=False)
        fresh = ("type_head.", "embed_bags.")  # fresh heads (and bag maps, after masked pretraining)
        fresh += () if "bag_genes" in ckpt else ("gene_bag.",)
        assert all(k.startswith(fresh) for k in missing.missing_keys), missing
    weight = class_weights(y_all[train], len(classes), job.get("class_weight_power", 0.5)).to(device)
    offsets = logit_offsets(y_all[train], len(classes), job.get("logit_adjust", 0.0)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.ft_lr, weight_decay=0.05)
    epochs = args.ft_epochs
    best, best_state, t0, hist, hist_f1 = -1.0, None, time.perf_counter(), [], []
    for epoch in range(epochs):
        model.train()
        batches = length_batches(data.lengths, train, args.batch_tokens, args.max_len, rng)
        for i, b in enumerate(batches):
            set_lr(opt, args.ft_lr, (epoch + i / len(batches)) / epochs, warmup=0.1)
            ids, summ = data.batch(b, args.max_len, summary, keep)
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                logits = run_model(model, ids, summ, bags=data.bags(b, cfg.embed_bags)).type_logits
            target = torch.from_numpy(y_all[b]).to(device)
            loss = F.cross_entropy(logits.float() + offsets, target, weight=weight,
                                   label_smoothing=job.get("label_smoothing", 0.1))  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        pred = predict(args, model, data, val, summary, keep).argmax(1)
        score = float((pred == y_all[val]).mean())
        hist.append(score)
        hist_f1.append(macro_f1(y_all[val], pred, len(classes)))
        if score > best:
            best, best_state = score, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    proba = predict(args, model, data, test, summary, keep)
    work = args.out / job["source"]
    work.mkdir(parents=True, exist_ok=True)
    name, fold = job_name(job), job["fold"]
    np.save(work / f"part_{name}_f{fold}.npy", proba)
    info = job | {
        "seconds": time.perf_counter() - t0,
        "val_top1": hist,
        "val_macro_f1": hist_f1,
        "best_epoch": int(np.argmax(hist)),
        "n_params": sum(p.numel() for p in model.parameters()),
        "rank": cfg.rank,
        "n_train": len(train),
        "test_top1": float((proba.argmax(1) == y_all[test]).mean()),
        "gene_bag_genes": gene_names(data, bag_genes),
        "hotspot_sites": hot_sites.tolist(),
    }
    (work / f"part_{name}_f{fold}.json").write_text(json.dumps(info))
    print(f"{job['source']} fold {fold} {name}: test top1 {info['test_top1']:.3f} "
          f"({info['seconds']:.0f}s, best epoch {info['best_epoch']})", flush=True)  # fmt: skip


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in `y` (numpy only: the GPU machine has no scikit-learn)."""
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(n_classes), where=support + predicted > 0)
    return float(f1[support > 0].mean())


@torch.no_grad()
def predict(
    args, model: MutationEncoder, data: Tokens, rows: np.ndarray, summary=None, keep=None
) -> np.ndarray:
    """Class probabilities [len(rows), n_types] in `rows` order. A tumour over --max-len tokens is read
    through a window drawn as in training; with --predict-windows N its probabilities are the mean over
    N windows (test-time averaging: one model sees more of a long tumour)."""
    model.eval()
    out = np.zeros((len(rows), model.cfg.n_types), dtype=np.float32)
    order = np.argsort(data.lengths[rows], kind="stable")
    for chunk in np.array_split(order, max(1, math.ceil(len(rows) * args.max_len / args.batch_tokens / 4))):
        if len(chunk) == 0:
            continue
        passes = args.predict_windows if data.lengths[rows[chunk]].max() > args.max_len else 1
        for _ in range(passes):
            ids, summ = data.batch(rows[chunk], args.max_len, summary, keep)
            with torch.autocast(data.device.type, torch.bfloat16, enabled=data.device.type == "cuda"):
                bags = data.bags(rows[chunk], model.cfg.embed_bags)
                logits = run_model(model, ids, summ, bags=bags).type_logits
            out[chunk] += torch.softmax(logits.float(), -1).cpu().numpy() / passes
    return out


def finetune(args) -> None:
    """Run this shard's jobs (job i goes to shard i % n) until --budget-s has passed."""
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    data = Tokens(args.npz, torch.device(args.device))
    t0 = time.perf_counter()
    for i, job in enumerate(jobs(args)):
        if i % n_shards != shard:
            continue
        if time.perf_counter() - t0 > args.budget_s:
            print(f"budget spent: job {i} {job} not run", flush=True)
            continue
        done = args.out / job["source"] / f"part_{job_name(job)}_f{job['fold']}.npy"
        if args.skip_done and done.exists():
            continue
        try:
            run_job(args, data, job)
        except Exception as err:  # one failed job must not cost the others (a GPU lease is short)
            print(f"job {i} {job} failed: {type(err).__name__}: {err}", flush=True)


def assemble(args) -> None:
    """Per-fold parts -> oof_<name>.npy / info_<name>.json over the folds each model finished, in the
    typing benchmark's row order (copy the files into its work folder to tabulate them)."""
    data_fold, data_tumours = (np.load(args.npz)[k] for k in ("fold", "tumours"))
    for source in SOURCES:
        work = args.out / source
        rows = np.flatnonzero(np.char.startswith(data_tumours.astype(str), source + "|") & (data_fold >= 0))
        fold = data_fold[rows]
        names = sorted({p.stem.rsplit("_f", 1)[0].removeprefix("part_") for p in work.glob("part_*.npy")})
        for name in names:
            parts = {int(p.stem.rsplit("_f", 1)[1]): p for p in work.glob(f"part_{name}_f*.npy")}
            proba, infos = None, []
            for k, path in sorted(parts.items()):
                part = np.load(path)
                proba = np.zeros((len(rows), part.shape[1])) if proba is None else proba
                proba[fold == k] = part
                infos.append(json.loads(path.with_suffix(".json").read_text()))
            np.save(work / f"oof_{name}.npy", proba)
            info = {"folds": sorted(parts), "seconds": sum(i["seconds"] for i in infos),
                    "n_params": infos[0]["n_params"], "rank": infos[0]["rank"], "parts": infos}  # fmt: skip
            (work / f"info_{name}.json").write_text(json.dumps(info))
            print(f"{source} {name}: folds {sorted(parts)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["export", "pretrain", "finetune", "assemble"])
    ap.add_argument("--tcga", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/tcga")
    ap.add_argument(
        "--typing-work", type=Path, default=Path("results/tcga_typing"), help="holds <source>/folds.tsv"
    )
    ap.add_argument("--npz", type=Path, default=Path("results/tcga_events.npz"))
    ap.add_argument("--out", type=Path, default=Path("results/tcga_events"))
    ap.add_argument(
        "--max-events", type=int, default=2048, help="per-tumour cap at export (sampled, see above)"
    )
    ap.add_argument("--max-len", type=int, default=512, help="tokens per tumour in a batch (random window)")
    ap.add_argument("--min-gene-tumours", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--mixers", default="savo,mha_rank", help=f"comma-separated, of {','.join(MIXERS)}; "
                    "mha_rank gets the rank whose parameter count is closest to SAVO's, qdelta --rank")
    ap.add_argument("--qdelta-chunk", type=int, default=64, help="qdelta: scan chunk (exact for any value; "
                    "16 is 30x faster on CPU at --max-len 8, the fused CUDA kernels need 64)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--batch-tokens", type=int, default=32768, help="batch size x longest sequence")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pt-epochs", type=int, default=10)
    ap.add_argument("--pt-budget-s", type=float, default=1e9, help="stop pretraining a mixer after this")
    ap.add_argument("--pt-limit", type=int, default=0, help="pretrain on this many tumours (0 = all)")
    ap.add_argument("--objective", choices=["masked", "contrastive"], default="masked",
                    help="pretraining: masked mutations (one checkpoint, every tumour) or two-view "
                    "contrastive on the CLS (nanog1.encoder.contrastive; one per --sources x --pt-folds, "
                    "that fold's test patients left out; needs --pt-name; --gene-bag/--hotspots/"
                    "--hotspot-key make its bag)")
    ap.add_argument("--pt-name", default="", help="contrastive checkpoints' name; with finetune: the "
                    "pretrained init loads pretrained_<mixer>_<name>_<source>_f<fold>.pt, fine-tuned on its "
                    "bag")
    ap.add_argument("--pt-folds", default="0,1,2,3,4", help="contrastive: folds to pretrain for (per source)")
    ap.add_argument("--pt-batch", type=int, default=256, help="contrastive: tumours a batch (negatives)")
    ap.add_argument("--temperature", type=float, default=0.1, help="contrastive: InfoNCE temperature")
    ap.add_argument("--pt-bag-drop", type=float, default=0.4, help="contrastive: drop each present bag entry "
                    "with this probability, independently per view")
    ap.add_argument("--pt-summary-noise", type=float, default=0.5, help="contrastive: Gaussian noise (sd, "
                    "standardised units) on the summary columns of each view")
    ap.add_argument("--bag-from", choices=["labelled", "pretrained"], default="labelled",
                    help="finetune: scratch rows' bag from the labelled training part (the recipe) or, as a "
                    "control, from the --pt-name checkpoint (the pretrained init always uses that one)")
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--gene-top-k", type=int, default=256, help="masked-gene head: K commonest genes + other")
    ap.add_argument("--gene-weight-power", type=float, default=1.0, help="gene class weight = count^-power")
    ap.add_argument("--gene-bag", type=int, default=0, help="fine-tuning: CLS gene bag over the K genes "
                    "mutated in most training tumours of the fold (0 = none; see nanog1.genomics.gene_bag)")
    ap.add_argument("--window", choices=["random", "bag"], default="random",
                    help="tokens of a tumour over --max-len: a random contiguous window, or (bag, with "
                    "--gene-bag) every token in a bag gene first, then random others, in genomic order")
    ap.add_argument("--predict-windows", type=int, default=1,
                    help="average a long tumour's probabilities over this many windows (validation, test)")
    ap.add_argument("--hotspots", type=int, default=0, help="fine-tuning: CLS hotspot bag over the sites "
                    "mutated in >= N training tumours of the fold (0 = none; nanog1.genomics.gene_bag)")
    ap.add_argument("--max-hotspots", type=int, default=2000, help="at most this many sites (commonest)")
    ap.add_argument("--hotspot-key", choices=HOTSPOT_KEYS, default="site",
                    help="what a hotspot is: the site (contig:position), the protein codon (gene + residue + "
                    "position of the MAF's protein change, allele-agnostic: KRAS:p.G12) or both kinds in "
                    "one bag (rows named _hot<N>codon / _hot<N>both)")
    ap.add_argument("--embed-bags", default="", help="fine-tuning: token fields (gene, bin) whose mean "
                    "embedding over all the tumour's distinct values feeds the CLS (comma-separated)")
    ap.add_argument("--bag-dropout", type=float, default=0.0, help="drop each value of an embedding bag "
                    "with this probability in training")
    ap.add_argument("--logit-adjust", type=float, default=0.0, help="fine-tuning: add TAU x log(training "
                    "class share) to the logits in the loss (logit adjustment, Menon et al. 2021); 0 = off")
    ap.add_argument("--class-weight-power", type=float, default=0.5, help="fine-tuning: class weights "
                    "n_c^-P (mean 1); 0 = unweighted")
    ap.add_argument("--label-smoothing", type=float, default=0.1, help="fine-tuning: cross-entropy smoothing")
    ap.add_argument("--tag", default="", help="suffix of the row names (a variant's own name)")
    ap.add_argument("--inits", default="pretrained,scratch", help="fine-tuning starts to run")
    ap.add_argument("--ft-lr", type=float, default=1e-3)
    ap.add_argument("--ft-epochs", type=int, default=12)
    ap.add_argument("--folds", type=int, default=5, help="fine-tune folds 0..N-1")
    ap.add_argument("--sources", default=",".join(SOURCES), help="sources to fine-tune on")
    ap.add_argument("--fractions", default="1.0,0.25,0.1", help="labelled shares to fine-tune on")
    ap.add_argument("--low-label-mixers", default="savo", help="mixers (of --mixers) run below 100 %% labels")
    ap.add_argument("--seeds", type=int, default=1, help="seeds of every row (seed spread; subsets redrawn)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--skip-done", action="store_true", help="skip jobs whose part file is already in --out")
    ap.add_argument("--budget-s", type=float, default=1e9, help="start no new fine-tuning job after this")
    args = ap.parse_args()
    unknown = sorted(set(args.mixers.split(",")) - set(MIXERS))
    if unknown:
        ap.error(f"--mixers: unknown {', '.join(unknown)}; expected some of {', '.join(MIXERS)}")
    if args.objective == "contrastive" and args.step == "pretrain" and not args.pt_name:
        ap.error("--objective contrastive writes one checkpoint per (source, fold): give --pt-name NAME")
    if args.window == "bag" and not args.gene_bag:
        ap.error("--window bag keeps the tokens of the bag's genes: give --gene-bag K")
    {"export": export, "pretrain": pretrain, "finetune": finetune, "assemble": assemble}[args.step](args)


if __name__ == "__main__":
    main()
