from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.errors import CurateError
from scipy.spatial.distance import cdist

from curate.select.strategies import coverage_order, farthest_point_order, order_candidates


def _group(n, patients=None, problems=None, label_quality=None):
    return pd.DataFrame(
        {
            "sample_id": [f"s{i:03d}" for i in range(n)],
            "patient_id": patients if patients is not None else [f"p{i}" for i in range(n)],
            "quality_problems": problems if problems is not None else 0,
            "label_quality": label_quality if label_quality is not None else np.nan,
        }
    )


def test_random_order_is_a_seeded_permutation():
    group = _group(20)
    a = order_candidates("random", group, rng=np.random.default_rng(1))
    assert sorted(a) == list(range(20))
    assert (a == order_candidates("random", group, rng=np.random.default_rng(1))).all()
    assert (a != order_candidates("random", group, rng=np.random.default_rng(2))).any()


def test_quality_order_puts_problems_last_then_label_quality():
    group = _group(5, problems=[1, 0, 0, 0, 2], label_quality=[0.9, 0.2, np.nan, 0.8, 1.0])
    assert order_candidates("quality", group, rng=np.random.default_rng(0)).tolist() == [3, 1, 2, 0, 4]


def test_one_per_patient_takes_every_patient_before_a_second_sample():
    patients = ["a", "a", "a", "b", "c", "c"]
    order = order_candidates("one-per-patient", _group(6, patients=patients), rng=np.random.default_rng(0))
    first = [patients[i] for i in order[:3]]
    assert sorted(first) == ["a", "b", "c"]
    assert [patients[i] for i in order[3:5]].count("a") == 1 and patients[order[5]] == "a"


def test_farthest_point_order_is_greedy_k_center():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 3))
    order = farthest_point_order(points, first=0)
    for k in (2, 5, 20):
        chosen = points[order[:k]]
        # the next pick is the point farthest from the chosen ones
        nearest = np.linalg.norm(points[:, None] - chosen[None], axis=2).min(axis=1)
        assert nearest[order[k]] == pytest.approx(nearest.max())
    limited = farthest_point_order(points, first=0, limit=10)
    assert (limited[:10] == order[:10]).all() and sorted(limited) == list(range(200))


def test_coverage_order_is_the_exact_greedy_facility_location():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(150, 4))
    distances = cdist(points, points)
    order = coverage_order(points, rng=np.random.default_rng(0), limit=30)
    assert sorted(order) == list(range(150))
    nearest = np.full(150, 1e9)
    for step, pick in enumerate(order[:30]):
        gains = np.maximum(nearest[:, None] - distances, 0).sum(axis=0)
        gains[order[:step]] = -1
        assert gains[pick] == pytest.approx(gains.max(), rel=1e-12)  # the best pick (ties: any)
        nearest = np.minimum(nearest, distances[:, pick])
    sampled = coverage_order(points, rng=np.random.default_rng(0), limit=30, reference_size=50)
    assert len(set(sampled[:30])) == 30


def test_diverse_needs_features_and_unknown_strategy_is_refused():
    for strategy in ("diverse", "k-center"):
        with pytest.raises(CurateError, match=f"strategy '{strategy}' needs features"):
            order_candidates(strategy, _group(3), rng=np.random.default_rng(0))
    with pytest.raises(CurateError, match="unknown strategy 'best'"):
        order_candidates("best", _group(3), rng=np.random.default_rng(0))
