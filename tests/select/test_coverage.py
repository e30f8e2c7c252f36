"""``diverse`` covers a class's feature space better than ``random`` (see tests/benchmarks/select_diverse.py)."""

from __future__ import annotations

import numpy as np
import pytest

from curate.select import BalancedSampler, coverage, select
from tests.select._data import clustered_features, random_catalog


@pytest.fixture(scope="module")
def tables():
    catalog = random_catalog(np.random.default_rng(0), patients=900, official=True)
    return catalog, clustered_features(catalog, seed=0)


def _distances(catalog, features, strategy, seeds=range(3)):
    """Mean and max distance to the nearest selected sample, averaged over classes and seeds."""
    figures = []
    for seed in seeds:
        sampler = BalancedSampler(n=75, strategy=strategy, short="available")
        table = coverage(select(catalog, features=features, sampler=sampler, seed=seed), features)
        figures.append((table["mean_distance"].mean(), table["max_distance"].mean()))
    return np.mean(figures, axis=0)


def test_diverse_leaves_every_member_closer_to_a_selected_one(tables):
    catalog, features = tables
    diverse_mean, _ = _distances(catalog, features, "diverse")
    random_mean, _ = _distances(catalog, features, "random")
    assert diverse_mean < 0.7 * random_mean, (diverse_mean, random_mean)  # measured: 0.48


def test_k_center_shrinks_the_worst_distance(tables):
    catalog, features = tables
    _, k_center_max = _distances(catalog, features, "k-center")
    _, random_max = _distances(catalog, features, "random")
    assert k_center_max < 0.5 * random_max, (k_center_max, random_max)  # measured: 0.20


def test_coverage_reports_each_class(tables):
    catalog, features = tables
    selection = select(catalog, features=features, sampler=BalancedSampler(n=75, strategy="diverse", short="available"))
    table = coverage(selection, features)
    assert list(table.index) == ["0", "1", "2", "3", "4"]
    assert (table["selected"] == 15).all() and (table["members"] > 15).all()
    assert (table["max_distance"] >= table["mean_distance"]).all()
