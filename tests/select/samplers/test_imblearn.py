from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.errors import CurateError
from curate.select import ImblearnSampler, ShortClassError, select
from curate.select.samplers import ClusterCentroidsSampler
from tests.select._data import features_for, random_catalog


@pytest.fixture(scope="module")
def tables():
    catalog = random_catalog(np.random.default_rng(7), patients=200, official=True, class_weights=(0.5, 0.3, 0.2))
    return catalog, features_for(catalog, dims=4, seed=1)


def _train_counts(selection, weighted=False):
    rows = selection[(selection["split"] == "train") & selection["selected"]]
    values = rows["repeat"] if weighted else pd.Series(1, index=rows.index)
    return values.groupby(rows["label"].astype(str)).sum().to_dict()


def _available(selection):
    rows = selection[(selection["split"] == "train") & selection["exclusion_reason"].isna()]
    return rows["label"].astype(str).value_counts().to_dict()


@pytest.mark.parametrize("method", ["RandomUnderSampler", "NearMiss"])
def test_under_samplers_balance_to_the_smallest_class(tables, method):
    catalog, features = tables
    selection = select(catalog, features=features, sampler=ImblearnSampler(method=method))
    smallest = min(_available(selection).values())
    assert _train_counts(selection) == dict.fromkeys(["0", "1", "2"], smallest)
    assert (selection.loc[selection["selected"], "repeat"] == 1).all()


def test_random_over_sampler_records_repeats(tables):
    catalog, features = tables
    selection = select(catalog, sampler=ImblearnSampler(method="RandomOverSampler"), seed=3)
    largest = max(_available(selection).values())
    assert _train_counts(selection, weighted=True) == dict.fromkeys(["0", "1", "2"], largest)
    assert selection["repeat"].max() > 1
    again = select(catalog, sampler=ImblearnSampler(method="RandomOverSampler"), seed=3)
    pd.testing.assert_frame_equal(selection, again)


@pytest.mark.parametrize("method", ["TomekLinks", "EditedNearestNeighbours"])
def test_cleaning_samplers_only_remove(tables, method):
    catalog, features = tables
    selection = select(catalog, features=features, sampler=ImblearnSampler(method=method))
    counts, available = _train_counts(selection), _available(selection)
    assert all(counts[c] <= available[c] for c in available)
    assert sum(counts.values()) < sum(available.values())
    with pytest.raises(CurateError, match="takes no n or per-class counts"):
        select(catalog, features=features, sampler=ImblearnSampler(method=method, n=30))


def test_n_and_counts_become_the_sampling_strategy(tables):
    catalog, features = tables
    sampler = ImblearnSampler(method="NearMiss", n=30, params={"version": 2})
    selection = select(catalog, features=features, sampler=sampler)
    assert _train_counts(selection) == {"0": 10, "1": 10, "2": 10}
    with pytest.raises(ShortClassError, match="NearMiss cannot keep more than a class has"):
        select(catalog, features=features, sampler=ImblearnSampler(method="NearMiss", counts={"2": 10_000}))
    with pytest.raises(CurateError, match="RandomOverSampler only adds samples"):
        select(catalog, sampler=ImblearnSampler(method="RandomOverSampler", counts={"0": 1}))


def test_feature_samplers_say_they_need_features(tables):
    catalog, _ = tables
    with pytest.raises(CurateError, match="NearMiss needs features: pass a Parquet table"):
        select(catalog, sampler=ImblearnSampler(method="NearMiss"))
    with pytest.raises(CurateError, match="ClusterCentroids needs features"):
        select(catalog, sampler=ClusterCentroidsSampler())


def test_cluster_centroids_keeps_distinct_real_samples_near_the_centroids(tables):
    catalog, features = tables
    selection = select(catalog, features=features, sampler=ClusterCentroidsSampler(n=30), seed=1)
    assert _train_counts(selection) == {"0": 10, "1": 10, "2": 10}
    assert (selection.loc[selection["selected"], "repeat"] == 1).all()
    auto = select(catalog, features=features, sampler=ClusterCentroidsSampler())
    smallest = min(_available(auto).values())
    assert _train_counts(auto) == dict.fromkeys(["0", "1", "2"], smallest)


def test_cluster_centroids_covers_clusters_that_random_may_miss():
    # one class, three tight blobs of very different sizes: keeping 3 should take one of each
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    sizes = [90, 6, 4]
    points = np.vstack([c + rng.normal(scale=0.3, size=(n, 2)) for c, n in zip(centers, sizes)])
    catalog = pd.DataFrame(
        {"sample_id": [f"s{i:03d}" for i in range(100)], "path": "x", "label": 0,
         "patient_id": [f"p{i}" for i in range(100)], "source": "t", "official_split": "train"}
    )
    features = pd.DataFrame(points, index=catalog["sample_id"]).add_prefix("f")
    selection = select(catalog, features=features, sampler=ClusterCentroidsSampler(counts={"0": 3}))
    picked = points[selection["selected"].to_numpy()]
    assert sorted(np.argmin(np.linalg.norm(picked[:, None] - centers[None], axis=2), axis=1)) == [0, 1, 2]
