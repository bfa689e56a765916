"""Training configuration: one dataclass, loadable from YAML and overridable from the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from nanog1.encoder.contrastive import OBJECTIVES
from nanog1.errors import UserError
from nanog1.genomics.gene_bag import HOTSPOT_KEYS
from nanog1.io import read_yaml_mapping
from nanog1.schema import CANCER_TYPE

#: The `--task` value that learns obs[CANCER_TYPE], named after that key (a documented user value).
TYPE_TASK = CANCER_TYPE
TASKS = (TYPE_TASK, "exposures", "pretrain", "multitask")
#: Tasks with a cancer-type head.
TYPE_TASKS = (TYPE_TASK, "multitask")
VIEWS = ("catalogue", "events")
POOLINGS = ("cls", "mean")


@dataclass
class TrainConfig:
    """Everything one training run needs besides the cohort; saved in the checkpoint and in MLflow."""

    task: str = TYPE_TASK
    view: str = "catalogue"
    mixer: str = "savo"
    # Defaults sized for CPU: on PCAWG (2,650 genomes x 257 channel tokens) the L x L routing dominates,
    # and 2 heads at hidden 32 keep an epoch near 10 s on two cores (BENCHMARKS.md, PCAWG section).
    hidden: int = 32
    layers: int = 2
    rank: int = 8
    heads: int = 2
    dropout: float = 0.1
    pooling: str = "cls"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    grad_clip: float = 1.0
    val_fraction: float = 0.2
    # A test fold cut before training: never trained on nor used to choose the epoch, temperature or
    # abstention threshold; `nanog1 evaluate` scores only such held-out samples (obs['split'] == 'test').
    test_fraction: float = 0.15
    folds: int = 1
    patience: int = 8
    seed: int = 0
    mask_fraction: float = 0.15
    # Pretraining objective (task pretrain, event view): `masked` mutations (predict a hidden event's class,
    # consequence and gene) or `contrastive` (nanog1.encoder.contrastive): two views of each tumour, each a
    # thinned copy keeping U(1 - view_drop, 1) of its events and counts with each present 0/1 bag entry
    # (gene, hotspot) dropped with probability view_drop and Gaussian noise of sd view_noise on its
    # consequence shares (sd-scaled; jittered, never dropped), should give matching CLS embeddings (InfoNCE
    # at `temperature` over the batch, through a projection head dropped for fine-tuning). Contrastive
    # pretraining keeps the gene bag.
    objective: str = "masked"
    temperature: float = 0.1
    view_drop: float = 0.4
    view_noise: float = 0.5
    max_events: int = 2048
    # Event view: genes carried by fewer tumours of the training cohort are UNK; the masked-gene head
    # predicts the gene_top_k commonest genes + "other" (class-weighted), so it cannot win by the prior.
    min_gene_tumours: int = 3
    gene_top_k: int = 256
    # Event view: training batches grouped by length (nanog1.core.ragged.LengthBucketSampler), each at most
    # batch_tokens padded tokens (tumours x longest, after the max_events cap) and batch_size tumours, so a
    # batch of 40-mutation exomes is not padded to one hypermutator's 2,048. 0: plain random batches.
    batch_tokens: int = 16384
    # Event view: the CLS token also reads a 0/1 gene bag over the gene_bag genes mutated in most training
    # tumours, counted over all of each tumour's mutations (nanog1.genomics.gene_bag). 0 turns it off.
    gene_bag: int = 300
    # Event view: the CLS bag also reads 0/1 over the sites (contig:position) mutated in >= hotspots training
    # tumours (at most 2,000, commonest first): IDH1 R132H, BRAF V600E... On TCGA (5 folds) it added 1-2
    # points of top-1 (BENCHMARKS.md, issue 28). 0 turns it off.
    hotspots: int = 5
    # Event view: what a hotspot is: the genomic `site`, the protein `codon` (gene + residue + position,
    # allele-agnostic: KRAS:p.G12; needs a MAF protein-change column at ingest) or `both` kinds in one bag.
    hotspot_key: str = "site"
    # Event view: the CLS bag also reads the tumour's share of events per consequence (missense, silent,
    # nonsense...) over all of its mutations, each scaled by its sd over the training split: a summary a
    # window of max_events tokens misses (the TCGA event benchmark's CLS has it). On MC3 fold 0 it took the
    # product path from 0.508 to 0.538 test top-1, two seeds (BENCHMARKS.md, issue 28/31). False: off.
    consequence_shares: bool = True
    recon_weight: float = 0.5
    # Augmentation: each training sample thinned to a U(1 - thin, 1) share of its mutations (catalogue
    # counts binomially; events in the event view), a lower-coverage copy of the same tumour. On PCAWG
    # fold 0, thin 0.5 took the SAVO encoder from 0.770 to 0.806 top-1 (BENCHMARKS.md); 0 turns it off.
    thin: float = 0.0
    # Channel-set dropout: in each training draw DBS78 is masked as unmeasured with this probability, the
    # indels (ID83 + ID12) likewise, ID83 alone (reference-free input) with half of it and SBS96 alone
    # (SBS6 kept) with a third, so a cohort that lacks a set (a study without DBS or indel calls, a MAF
    # without a reference) meets inputs the model trained on (#31). 0 turns it off.
    set_dropout: float = 0.0
    # Event view: in each training draw a tumour is read, with this probability, as an SNV-only input (a
    # Strelka2 SNV VCF alone, VarScan2's .snp.vcf) gives it: its indel events dropped, its ID83/ID12 masked
    # as unmeasured, its bag's genes and consequence shares taken from the rest; and the model reads which
    # sets were masked (MutationEncoderConfig.unmeasured_indicator), so 'indels not measured' is not read as
    # 'no indels'. MC3 fold 0 (BENCHMARKS.md, issue 31): 0.25 added +0.8 top-1 on SNV-only input, within the
    # seed spread (the indels' information is lost, not misread). 0 turns it off.
    indel_dropout: float = 0.0
    # Cancer-type loss: class weights n_c^-1 (inverse frequency, mean 1), and/or logit adjustment (Menon et
    # al. 2021): tau * log(training class share) added to the logits in the loss only, so the model's own
    # logits come out prior-free (balanced); tau = logit_adjust, 0 turns it off. The paper uses it instead
    # of weights (class_weighting false). TCGA fold-0 validation: BENCHMARKS.md, issue 28.
    class_weighting: bool = True
    # The weights' power: n_c^-power (1 inverse frequency; 0.5 the TCGA event benchmark's) and the loss's
    # label smoothing (0 off; the benchmark's 0.1). MC3 fold 0: BENCHMARKS.md, issue 28/31.
    class_weight_power: float = 1.0
    label_smoothing: float = 0.0
    logit_adjust: float = 0.0
    min_class_size: int = 2
    amp: bool = True
    # On CUDA, each training step (forward, backward, AdamW) is captured once per batch shape and replayed
    # as a CUDA graph (nanog1.core.step_graph): no host time per op, which bounds short-sequence encoders
    # (BENCHMARKS.md, issue 30). Shapes whose step syncs with the host stay eager; NANOG1_STEP_GRAPH=0|1
    # overrides this field. No effect on CPU or with DDP.
    step_graph: bool = True
    experiment: str | None = None
    register_model: bool = True

    def __post_init__(self) -> None:
        from nanog1.core.mixers import MIXER_KINDS

        if self.task not in TASKS:
            raise UserError(f"unknown task {self.task!r}; expected one of {TASKS}")
        for option, value, known in (("mixer", self.mixer, MIXER_KINDS), ("view", self.view, VIEWS),
                                     ("pooling", self.pooling, POOLINGS)):
            if value not in known:
                raise UserError(f"unknown {option} {value!r}; expected one of {known}")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 <= self.test_fraction < 1.0 - self.val_fraction:
            raise UserError(f"test_fraction must be in [0, 1 - val_fraction), got {self.test_fraction}")
        if not 0.0 <= self.thin < 1.0:
            raise UserError(f"thin must be in [0, 1), got {self.thin}")
        for option in ("batch_tokens", "gene_bag", "hotspots"):
            if getattr(self, option) < 0:
                raise UserError(f"{option} must be >= 0 (0 turns it off), got {getattr(self, option)}")
        if not 0.0 <= self.logit_adjust <= 10.0:
            raise UserError(f"logit_adjust (tau) must be in [0, 10] (0: off), got {self.logit_adjust}")
        if not 0.0 <= self.class_weight_power <= 2.0:
            raise UserError(
                f"class_weight_power must be in [0, 2] (1: inverse frequency), got {self.class_weight_power}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError(f"label_smoothing must be in [0, 1) (0: off), got {self.label_smoothing}")
        if self.hotspot_key not in HOTSPOT_KEYS:
            raise UserError(f"unknown hotspot_key {self.hotspot_key!r}; expected one of {HOTSPOT_KEYS}")
        if self.objective not in OBJECTIVES:
            raise UserError(f"unknown objective {self.objective!r}; expected one of {OBJECTIVES}")
        if self.objective == "contrastive" and self.view != "events":
            raise UserError("the contrastive objective reads the event view: give --view events")
        if not 0.0 <= self.view_drop < 1.0 or self.temperature <= 0 or self.view_noise < 0:
            raise UserError(f"view_drop must be in [0, 1), temperature > 0 and view_noise >= 0, got "
                            f"{self.view_drop}, {self.temperature}, {self.view_noise}")  # fmt: skip
        if not 0.0 <= self.set_dropout < 1.0:
            raise UserError(f"set_dropout must be in [0, 1), got {self.set_dropout}")
        if not 0.0 <= self.indel_dropout < 1.0:
            raise UserError(f"indel_dropout must be in [0, 1), got {self.indel_dropout}")
        if self.indel_dropout and self.view != "events":
            raise UserError("indel_dropout drops indel events: it needs --view events (the catalogue view "
                            "masks the indel sets with --set-dropout)")

    def to_dict(self) -> dict:
        """Plain dict (MLflow params, checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a dict, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown training option(s) (not fields of TrainConfig): {', '.join(unknown)}")
        return cls(**values)


def load_config(path: Path | None, overrides: dict) -> TrainConfig:
    """YAML file (optional) then command-line overrides (None values are ignored)."""
    values: dict = {}
    if path is not None:
        values.update(read_yaml_mapping(path, "a mapping of training options"))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
