"""The CLS gene bag: genes chosen from training tumours only, every mutation counted, and the bag
reaches the event model's prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanog1.genomics import event_vocab as ev
from nanog1.genomics.gene_bag import FIRST_ID, gene_bag, gene_pairs, top_genes


def _tumours() -> tuple[np.ndarray, np.ndarray]:
    """Four small tumours (ragged offsets, gene ids; 1 = UNK, 0 = pad). Tumour 0 hits gene 5 three times."""
    genes = [[5, 5, 5, 7], [5, 8, 1], [9, 9, 9, 9, 9], [9, 10, 0]]
    offsets = np.r_[0, np.cumsum([len(g) for g in genes])]
    return offsets, np.concatenate([np.array(g) for g in genes])


def test_pairs_are_unique_per_tumour_and_drop_special_ids():
    rows, genes = gene_pairs(*_tumours())
    assert list(zip(rows.tolist(), genes.tolist(), strict=True)) == [
        (0, 5), (0, 7), (1, 5), (1, 8), (2, 9), (3, 9), (3, 10)]  # fmt: skip
    assert FIRST_ID == ev.N_SPECIAL
    with pytest.raises(ValueError, match="gene ids"):
        gene_pairs(np.array([0, 3]), np.array([5, 6]))


def test_top_genes_count_training_tumours_only_not_mutations():
    rows, genes = gene_pairs(*_tumours())
    # training tumours 0 and 1: gene 5 is in both (tumour 0 hits it 3 times: still counted once)
    assert top_genes(rows, genes, np.array([0, 1]), 2).tolist() == [5, 7]  # tie 7/8 -> lower id
    # gene 9 is mutated 6 times in tumours 2 and 3; held out, they cannot make it a bag gene
    assert 9 not in top_genes(rows, genes, np.array([0, 1]), 10)
    assert top_genes(rows, genes, np.array([2, 3]), 1).tolist() == [9]
    with pytest.raises(ValueError, match="k >= 1"):
        top_genes(rows, genes, np.array([0]), 0)


def test_bag_reads_every_mutation_not_a_window():
    offsets, ids = _tumours()
    rows, genes = gene_pairs(offsets, ids)
    bag = gene_bag(rows, genes, np.array([9, 5, 42]), n_tumours=4)
    assert bag.shape == (4, 3) and bag.dtype == np.float32
    assert bag.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0]]


def test_event_model_bag_changes_the_prediction_and_checks_its_width():
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    sizes = {"channel": 10, "gene": 20, "consequence": 6, "chrom": 5, "bin": 30, "vaf": 13}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    torch.manual_seed(0)
    cfg = MutationEncoderConfig(view="events", event_vocab=vocab, summary=False, n_summary=4, hidden=16,
                                layers=1, rank=4, heads=2, dropout=0.0, n_types=3,
                                gene_bag=["gene0", "gene1", "gene2"])  # fmt: skip
    model = MutationEncoder(cfg).eval()
    ids = {k: torch.full((1, 5), 3) for k in sizes}
    summary = torch.randn(1, 4)
    without, with_gene = torch.zeros(1, 3), torch.tensor([[0.0, 1.0, 0.0]])
    with torch.no_grad():
        a, b = (model(events=ids, summary_features=summary, gene_bag=g).type_logits
                for g in (without, with_gene))
    assert not torch.allclose(a, b)  # the same tokens, another gene content: another prediction
    with pytest.raises(ValueError, match="gene bag of 3 genes"):
        model(events=ids, summary_features=summary, gene_bag=torch.zeros(1, 2))


def _arrays(n_tokens: list[int], genes: list[list[str]]):
    """A CohortArrays with event ids only (what the loader and the bag read); gene names per tumour."""
    from nanog1.encoder.data import CohortArrays
    from nanog1.schema import N_CHANNELS

    values = sorted({g for row in genes for g in row})
    vocab = ev.EventVocab({f: (values if f == "gene" else ["x"]) for f in ev.FIELDS})
    offsets = np.r_[0, np.cumsum(n_tokens)]
    gene_ids = np.concatenate([[values.index(row[i % len(row)]) + ev.N_SPECIAL for i in range(n)]
                               for n, row in zip(n_tokens, genes, strict=True)])  # fmt: skip
    ids = {f: (gene_ids if f == "gene" else np.full(offsets[-1], ev.N_SPECIAL)) for f in ev.FIELDS}
    n = len(n_tokens)
    return CohortArrays(sample_ids=[f"s{i}" for i in range(n)], counts=np.zeros((n, N_CHANNELS), np.float32),
                        channel_padding=np.zeros(N_CHANNELS, bool), labels=np.arange(n) % 2,
                        classes=["a", "b"], event_ids=ids | {"offsets": offsets},
                        event_vocab=vocab)  # fmt: skip


def test_cli_bag_is_chosen_on_the_training_split_only():
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.loop import prepare_gene_bag

    # tumours 0-3 train (TP53 in three, KRAS in two); 4-7 held out, every one carrying LEAK many times
    genes = [["TP53", "KRAS"], ["TP53"], ["TP53", "KRAS"], ["APC"]] + [["LEAK"]] * 4
    arrays = _arrays([4, 2, 3, 5, 9, 9, 9, 9], genes)
    cfg = TrainConfig(view="events", gene_bag=2, consequence_shares=False)
    bagged = prepare_gene_bag(cfg, arrays, np.arange(4))
    assert bagged.gene_bag_genes == ["TP53", "KRAS"]  # not LEAK, the commonest over all tumours
    assert bagged.gene_bag.tolist() == [[1, 1], [1, 0], [1, 1], [0, 0]] + [[0, 0]] * 4
    pretrain = prepare_gene_bag(TrainConfig(view="events", task="pretrain", gene_bag=2), arrays, np.arange(4))
    assert pretrain.gene_bag is None and pretrain.gene_bag_genes == []


def test_cli_event_batches_are_length_bucketed_under_the_token_budget():
    from nanog1.core.ragged import LengthBucketSampler
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.distributed import DistInfo
    from nanog1.encoder.loop import prepare_gene_bag, train_loader

    lengths = [3, 300, 4, 280, 5, 290, 3, 6, 310, 4, 2, 295]
    arrays = _arrays(lengths, [["TP53", "KRAS"]] * len(lengths))
    cfg = TrainConfig(view="events", batch_tokens=1200, batch_size=4, max_events=256, gene_bag=2,
                      consequence_shares=False)
    train = np.arange(len(lengths))
    arrays = prepare_gene_bag(cfg, arrays, train)
    loader = train_loader(arrays, train, cfg, DistInfo(), None)
    assert isinstance(loader.batch_sampler, LengthBucketSampler)
    seen, spans = [], []
    for batch in loader:
        n, width = batch["event_padding"].shape
        assert n <= 4 and (n * width <= 1200 or n == 1) and width <= 256
        assert batch["gene_bag"].shape == (n, 2)
        real = (~batch["event_padding"]).sum(1)
        spans.append((int(real.min()), int(real.max())))
        seen += batch["index"].tolist()
    assert sorted(seen) == train.tolist() and len(loader) == len(loader.batch_sampler.batches())
    spans.sort()
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        assert hi <= lo  # runs of the length order: short and long tumours are not mixed at random
    plain_cfg = TrainConfig(view="events", batch_tokens=0, batch_size=4)
    plain = train_loader(arrays, train, plain_cfg, DistInfo(), torch.Generator().manual_seed(0))
    assert plain.batch_size == 4 and not isinstance(plain.batch_sampler, LengthBucketSampler)


def test_cli_model_bag_changes_the_prediction_and_is_required():
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    vocab = {f: ["a", "b", "c"] for f in ev.FIELDS}
    torch.manual_seed(0)
    cfg = MutationEncoderConfig(hidden=8, layers=1, rank=4, heads=2, view="events", n_types=2,
                                event_vocab=vocab, gene_bag=["a", "b"], dropout=0.0)  # fmt: skip
    model = MutationEncoder(cfg).eval()
    events = {f: torch.full((1, 3), 3) for f in ev.FIELDS}
    with torch.no_grad():
        a = model(events=events, gene_bag=torch.tensor([[0.0, 0.0]])).type_logits
        b = model(events=events, gene_bag=torch.tensor([[1.0, 0.0]])).type_logits
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="gene bag of 2 genes"):
        model(events=events)


def test_benchmark_window_keeps_the_bag_genes_tokens_first():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tcga_events.py"
    spec = importlib.util.spec_from_file_location("tcga_events", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    keep = np.zeros(40, dtype=bool)
    keep[[12, 30, 33]] = True  # tumour = tokens 10..39 (30 tokens), three in bag genes
    np.random.seed(0)
    for _ in range(20):
        pos = bench.window_positions(10, 40, 8, keep)
        assert len(pos) == 8 and {12, 30, 33} <= set(pos.tolist())
        assert (np.diff(pos) > 0).all() and pos.min() >= 10 and pos.max() < 40  # genomic order, own tokens
    assert bench.window_positions(10, 15, 8, keep).tolist() == [10, 11, 12, 13, 14]  # short: all of it
    many = np.ones(40, dtype=bool)
    assert len(set(bench.window_positions(0, 40, 8, many).tolist())) == 8  # more flagged than room: 8 of them
