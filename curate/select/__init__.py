"""Select: patient-grouped splits, exclusion with reasons, and samplers for the training split.

The experiment this serves, a small balanced set against the full imbalanced one on
one shared, patient-disjoint test set::

    from curate.select import BalancedSampler, freeze_split, make_split, read_frozen_split, select

    freeze_split(make_split(catalog, fractions=(0.7, 0.1, 0.2), seed=0), "split.parquet")
    split = read_frozen_split("split.parquet")
    balanced = select(catalog, split=split, quality=quality, labels=labels, sampler=BalancedSampler(n=500))
    full = select(catalog, split=split, quality=quality, labels=labels, sampler="full")
"""

from curate.select.errors import ShortClassError, SplitError
from curate.select.coverage import coverage
from curate.select.exclusion import DEFAULT_EXCLUDE, exclusion_reasons, resolve_exclusions
from curate.select.frozen import apply_frozen_split, catalog_fingerprint, freeze_split, read_frozen_split
from curate.select.invariants import DEFAULT_TOLERANCE, SplitCheck, check_split, proportion_tolerance
from curate.select.io import read_features, read_labels, read_selection, select_to_file, write_selection
from curate.select.samplers import (
    BalancedSampler,
    BaseSampler,
    ClusterCentroidsSampler,
    FullSampler,
    ImblearnSampler,
    PerClassSampler,
    StratifiedSampler,
    make_sampler,
)
from curate.select.selection import RESULT_COLUMNS, select
from curate.select.splits import DEFAULT_FRACTIONS, make_split, official_split, parse_fractions
from curate.select.strategies import STRATEGIES
from curate.select.summary import selection_report, selection_summary
from curate.select.weights import class_weights

__all__ = [
    "select",
    "RESULT_COLUMNS",
    "official_split",
    "make_split",
    "parse_fractions",
    "DEFAULT_FRACTIONS",
    "check_split",
    "SplitCheck",
    "proportion_tolerance",
    "DEFAULT_TOLERANCE",
    "freeze_split",
    "read_frozen_split",
    "apply_frozen_split",
    "catalog_fingerprint",
    "exclusion_reasons",
    "resolve_exclusions",
    "DEFAULT_EXCLUDE",
    "BaseSampler",
    "FullSampler",
    "BalancedSampler",
    "PerClassSampler",
    "StratifiedSampler",
    "ImblearnSampler",
    "ClusterCentroidsSampler",
    "make_sampler",
    "STRATEGIES",
    "class_weights",
    "coverage",
    "selection_summary",
    "selection_report",
    "write_selection",
    "read_selection",
    "read_features",
    "read_labels",
    "select_to_file",
    "SplitError",
    "ShortClassError",
]
