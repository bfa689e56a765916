"""Signature fitting in torch: batched NNLS and sparse forward/backward selection for whole cohorts.

Kept apart from `nanog1.genomics`, which stays free of torch.
"""

from nanog1.fitting.fit import FitConfig, FitResult, fit_signatures
from nanog1.fitting.nnls import nnls, nnls_gram
from nanog1.fitting.selection import SelectionConfig, select_signatures

__all__ = [
    "FitConfig",
    "FitResult",
    "SelectionConfig",
    "fit_signatures",
    "nnls",
    "nnls_gram",
    "select_signatures",
]
