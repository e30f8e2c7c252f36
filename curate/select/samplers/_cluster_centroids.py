"""``ClusterCentroids`` that keeps real samples: the one nearest each k-means centroid.

imbalanced-learn's ``ClusterCentroids`` returns the centroids themselves (or,
with hard voting, nearest samples that may repeat). Here each class to reduce is
clustered into as many clusters as samples it keeps, and every centroid is
matched to a distinct real sample so the summed distance is smallest (the
Hungarian assignment).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from curate.errors import CurateError
from curate.select.samplers._base import BaseSampler, available_counts, check_count, check_counts, class_rng
from curate.select.samplers._imblearn import sampling_targets

__all__ = ["ClusterCentroidsSampler"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterCentroidsSampler(BaseSampler):
    """Under-sample each class to the real samples nearest its k-means centroids.

    Parameters
    ----------
    n : int, optional
        Samples in all, shared equally over the classes present.
    counts : mapping, optional
        Class -> samples to keep.
    sampling_strategy : str
        imbalanced-learn's, when neither ``n`` nor ``counts`` is given (default
        ``"auto"``: every class but the smallest down to the smallest's size).
    """

    name = "ClusterCentroids"
    needs_features = True

    n: int | None = None
    counts: Mapping[str, int] | None = None
    sampling_strategy: object = "auto"

    def __post_init__(self):
        if self.n is not None and self.counts is not None:
            raise CurateError("ClusterCentroids: give n or per-class counts, not both")
        if self.n is not None:
            check_count("n", self.n)
        if self.counts is not None:
            object.__setattr__(self, "counts", check_counts(self.counts))

    def _sample(self, candidates, *, classes, features, seed, split):
        from imblearn.utils import check_sampling_strategy
        from sklearn.cluster import KMeans

        available = available_counts(candidates, classes)
        target = sampling_targets(
            method=self.name,
            kind="under",
            n=self.n,
            counts=self.counts,
            sampling_strategy=self.sampling_strategy,
            available=available,
            split=split,
        )
        y = candidates["class"].to_numpy(dtype=object)
        if isinstance(target, dict):
            keep = target
        else:
            try:
                keep = check_sampling_strategy(target, y, "under-sampling")
            except ValueError as exc:
                raise CurateError(f"ClusterCentroids: {str(exc).strip().splitlines()[0]}") from None
        repeat = np.ones(len(candidates), dtype=np.int64)
        for name, k in keep.items():
            members = np.flatnonzero(y == name)
            if k >= len(members):
                continue
            repeat[members] = 0
            if k == 0:
                continue
            points = features[members]
            state = int(class_rng(seed, split, str(name)).integers(2**31 - 1))
            centers = KMeans(n_clusters=k, random_state=state, n_init="auto").fit(points).cluster_centers_
            _, nearest = linear_sum_assignment(cdist(centers, points))
            repeat[members[nearest]] = 1
        return repeat

    def describe(self) -> str:
        return self.name + (f" n={self.n}" if self.n is not None else "")
