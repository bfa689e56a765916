"""Signature fitting in torch: batched NNLS and sparse forward/backward selection for whole cohorts.

Kept apart from `nanog1.genomics`, which stays free of torch. Public API: `__all__`; `fit_cohort` (the
whole-cohort fit behind `nanog1 signatures fit`, writing obsm['exposures_<set>']) is imported on first use.
"""

from nanog1.exports import lazy_attributes
from nanog1.fitting.fit import FitConfig, FitResult, cosine_rows, fit_signatures
from nanog1.fitting.nnls import nnls, nnls_gram
from nanog1.fitting.selection import SelectionConfig, select_signatures

__all__ = [
    "FitConfig",
    "FitResult",
    "SelectionConfig",
    "cosine_rows",
    "fit_cohort",
    "fit_signatures",
    "nnls",
    "nnls_gram",
    "select_signatures",
]

__getattr__ = lazy_attributes(__name__, {"fit_cohort": "nanog1.fitting.cohort"})
