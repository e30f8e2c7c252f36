"""Samplers: which of a split's candidates a training set takes, and how often.

One small private module per sampler, as in imbalanced-learn; every sampler is a
frozen keyword-only dataclass validating its parameters, with one method to
implement (``_sample``). :func:`make_sampler` builds one from the name the CLI uses.
"""

from __future__ import annotations

from collections.abc import Mapping

from curate.errors import CurateError
from curate.select.samplers._balanced import BalancedSampler, balanced_counts
from curate.select.samplers._base import SHORT_POLICIES, BaseSampler
from curate.select.samplers._cluster_centroids import ClusterCentroidsSampler
from curate.select.samplers._full import FullSampler
from curate.select.samplers._imblearn import IMBLEARN_SAMPLERS, ImblearnSampler
from curate.select.samplers._per_class import PerClassSampler
from curate.select.samplers._stratified import StratifiedSampler, proportional_counts

__all__ = [
    "BaseSampler",
    "FullSampler",
    "BalancedSampler",
    "PerClassSampler",
    "StratifiedSampler",
    "ImblearnSampler",
    "ClusterCentroidsSampler",
    "SAMPLER_NAMES",
    "SHORT_POLICIES",
    "make_sampler",
    "balanced_counts",
    "proportional_counts",
]

#: Every name :func:`make_sampler` knows.
SAMPLER_NAMES: tuple[str, ...] = ("full", "balanced", "per-class", "stratified", *IMBLEARN_SAMPLERS, "ClusterCentroids")


def make_sampler(
    name: str,
    *,
    n: int | None = None,
    per_class: Mapping[str, int] | None = None,
    short: str | None = None,
    strategy: str | None = None,
    weighting: str | None = None,
    beta: float | None = None,
    params: Mapping[str, object] | None = None,
) -> BaseSampler:
    """Build a sampler from its name and the options that apply to it.

    An option that does not apply to the sampler is refused, so a mistyped
    command never runs with an option silently ignored.

    Examples
    --------
    >>> make_sampler("balanced", n=500, short="oversample")
    BalancedSampler(n=500, short='oversample', strategy='random')
    >>> make_sampler("full", n=500)
    Traceback (most recent call last):
    ...
    curate.errors.CurateError: sampler 'full' takes no n
    """
    given = {
        "n": n,
        "per_class": per_class,
        "short": short,
        "strategy": strategy,
        "weighting": weighting,
        "beta": beta,
        "params": params,
    }
    given = {k: v for k, v in given.items() if v is not None}

    def only(*allowed: str) -> dict:
        extra = [k for k in given if k not in allowed]
        if extra:
            raise CurateError(f"sampler {name!r} takes no {', '.join(e.replace('_', '-') for e in extra)}")
        return given

    if name == "full":
        return FullSampler(**only("weighting", "beta"))
    if name == "balanced":
        options = only("n", "short", "strategy")
        if "n" not in options:
            raise CurateError("sampler 'balanced' needs n (e.g. --n 500)")
        return BalancedSampler(**options)
    if name == "per-class":
        options = only("per_class", "short", "strategy")
        if "per_class" not in options:
            raise CurateError("sampler 'per-class' needs the counts per class (e.g. --per-class 0=100,1=100)")
        return PerClassSampler(counts=options.pop("per_class"), **options)
    if name == "stratified":
        options = only("n", "strategy")
        if "n" not in options:
            raise CurateError("sampler 'stratified' needs n (e.g. --n 500)")
        return StratifiedSampler(**options)
    if name.lower() == "clustercentroids":
        options = only("n", "per_class")
        return ClusterCentroidsSampler(n=options.get("n"), counts=options.get("per_class"))
    if name.lower() in {k.lower() for k in IMBLEARN_SAMPLERS}:
        options = only("n", "per_class", "params")
        return ImblearnSampler(
            method=name, n=options.get("n"), counts=options.get("per_class"), params=options.get("params", {})
        )
    raise CurateError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}")
