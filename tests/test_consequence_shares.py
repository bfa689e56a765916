"""The event view's consequence shares (issue 28/31): each tumour's share of events per consequence, over all
of its events, read by the CLS bag; models saved before the option existed read exactly what they did."""

from __future__ import annotations

import numpy as np
import torch

from nanog1.encoder.data import CohortArrays, consequence_scale, consequence_shares, for_model, with_gene_bag
from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
from nanog1.genomics.event_vocab import EventVocab

VOCAB = {"channel": ["C>A", "C>T"], "gene": ["TP53", "KRAS"], "consequence": ["Missense_Mutation", "Silent"],
         "chrom": ["1"], "bin": ["1:0"], "vaf": []}  # fmt: skip


def _arrays() -> CohortArrays:
    """Tumour a: 4 events (2 missense, 1 silent, 1 consequence the vocabulary lacks); b: none; c: 1 silent."""
    ids = {"consequence": np.array([3, 3, 4, 1, 4]), "gene": np.array([3, 4, 3, 1, 1]),
           "offsets": np.array([0, 4, 4, 5])}  # fmt: skip
    return CohortArrays(sample_ids=["a", "b", "c"], counts=np.zeros((3, 1)),
                        channel_padding=np.zeros(1, bool), labels=np.zeros(3, int), classes=["T"],
                        event_ids=ids, event_vocab=EventVocab(values=VOCAB))  # fmt: skip


def test_shares_count_every_event_and_unknown_consequences_only_in_the_denominator():
    shares = consequence_shares(_arrays())
    assert shares.tolist() == [[0.5, 0.25], [0.0, 0.0], [0.0, 1.0]]


def test_the_bag_ends_with_the_shares_only_when_the_model_asks_for_them():
    arrays = _arrays()
    assert with_gene_bag(arrays, ["TP53"], consequence_scale=[0.5, 0.25]).gene_bag.tolist() == [
        [1, 1, 1], [0, 0, 0], [0, 0, 4]]  # fmt: skip
    sd = consequence_scale(arrays, np.array([0, 1]))  # training rows a, b: shares (0.5, 0.25) and (0, 0)
    assert np.allclose(sd, [0.25, 0.125])
    assert consequence_scale(arrays, np.array([1])) == [1.0, 1.0]  # no spread: left unscaled
    assert with_gene_bag(arrays, ["TP53"]).gene_bag.tolist() == [[1], [0], [0]]


def test_a_saved_model_gets_the_shares_of_new_tumours_only_when_it_was_trained_with_them(tmp_path):
    import anndata as ad
    import pandas as pd

    from nanog1.encoder.data import cohort_arrays
    from nanog1.genomics.ingest import IngestOptions, ingest

    cols = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
            "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2"]  # fmt: skip
    rows = [("a", "TP53", "17", 7577120 + 1000 * i, 7577120 + 1000 * i, csq, "SNP", "C", "T")
            for i, csq in enumerate(["Missense_Mutation", "Missense_Mutation", "Silent", "Intron"])]
    rows.append(("b", "KRAS", "12", 25398284, 25398284, "Silent", "SNP", "C", "T"))
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "x.maf", sep="\t", index=False)
    ingest([tmp_path / "x.maf"], None, None, tmp_path / "x.h5ad", IngestOptions(filter="all"))
    arrays = cohort_arrays(ad.read_h5ad(tmp_path / "x.h5ad"), min_class_size=1)
    old = {"view": "events", "event_vocab": VOCAB, "gene_bag": ["TP53"]}  # saved before the option
    assert for_model(arrays, old).gene_bag.tolist() == [[1], [0]]
    saved = {"view": "events", "event_vocab": VOCAB, "consequence_shares": True,
             "consequence_scale": [0.5, 0.25]}
    assert for_model(arrays, saved).gene_bag.tolist() == [[1, 1], [0, 4]]  # Intron: not in the vocabulary


def test_encoder_reads_the_shares_and_an_old_config_keeps_its_shape():
    kw = dict(view="events", event_vocab=VOCAB, gene_bag=["TP53"], hidden=8, layers=1, rank=2, heads=2,
              n_types=2, dropout=0.0)  # fmt: skip
    assert MutationEncoder(MutationEncoderConfig(**kw)).gene_bag.in_features == 1
    torch.manual_seed(0)
    model = MutationEncoder(MutationEncoderConfig(**kw, consequence_shares=True)).eval()
    assert model.gene_bag.in_features == 1 + 2
    events = {k: torch.full((2, 3), 3 if VOCAB[k] else 1) for k in VOCAB}
    bag = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # same gene, all missense vs all silent
    logits = model(events=events, gene_bag=bag).type_logits
    assert not torch.allclose(logits[0], logits[1])
