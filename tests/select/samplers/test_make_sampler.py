from __future__ import annotations

import pytest

from curate.errors import CurateError
from curate.select import (
    BalancedSampler,
    FullSampler,
    ImblearnSampler,
    PerClassSampler,
    StratifiedSampler,
    make_sampler,
)
from curate.select.samplers import ClusterCentroidsSampler


def test_names_build_samplers_with_their_options():
    assert make_sampler("full", weighting="effective", beta=0.99) == FullSampler(weighting="effective", beta=0.99)
    assert make_sampler("balanced", n=500, strategy="quality") == BalancedSampler(n=500, strategy="quality")
    assert make_sampler("per-class", per_class={"0": 10}) == PerClassSampler(counts={0: 10})
    assert make_sampler("stratified", n=50) == StratifiedSampler(n=50)
    assert make_sampler("nearmiss", n=50) == ImblearnSampler(method="NearMiss", n=50)
    assert make_sampler("ClusterCentroids", per_class={"1": 3}) == ClusterCentroidsSampler(counts={"1": 3})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_sampler("balanced"), "'balanced' needs n"),
        (lambda: make_sampler("per-class"), "needs the counts per class"),
        (lambda: make_sampler("full", short="fail"), "'full' takes no short"),
        (lambda: make_sampler("NearMiss", strategy="random"), "'NearMiss' takes no strategy"),
        (lambda: make_sampler("SMOTE"), "unknown sampler 'SMOTE'"),
        (lambda: BalancedSampler(n=0), "n must be a whole number >= 1"),
        (lambda: BalancedSampler(n=5, short="skip"), "unknown short policy 'skip'"),
        (lambda: BalancedSampler(n=5, strategy="best"), "unknown strategy 'best'"),
        (lambda: PerClassSampler(counts={0: -1}), "the count of class 0 must be"),
        (lambda: FullSampler(beta=2), "beta must be"),
        (lambda: ImblearnSampler(method="NearMiss", n=5, counts={"0": 1}), "give n or per-class counts, not both"),
        (lambda: ImblearnSampler(method="RandomOverSampler", params={"shrinkage": 1.0}), "synthetic"),
        (lambda: ImblearnSampler(method="NearMiss", params={"random_state": 1}), "set the seed"),
    ],
)
def test_bad_options_are_refused_when_the_sampler_is_made(call, message):
    with pytest.raises(CurateError, match=message):
        call()


def test_samplers_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        BalancedSampler(500)  # type: ignore[misc]
    sampler = BalancedSampler(n=500)
    with pytest.raises(AttributeError):
        sampler.n = 10  # type: ignore[misc]
    assert sampler.get_params() == {"sampler": "balanced", "n": 500, "short": "fail", "strategy": "random"}
