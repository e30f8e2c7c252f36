"""Which samples a class keeps: an order of preference over the class's candidates.

A sampler that takes ``k`` samples of a class takes the first ``k`` of the order,
so every strategy is a function ``order(group, *, rng, features, limit)`` that
returns positions into ``group`` (the class's candidates, sorted by sample id
so that the result never depends on the catalog's row order):

``random``
    A seeded permutation.
``quality``
    Fewest quality problems first (flags of the scan, informational ones aside),
    then highest label quality, then seeded random among equals.
``diverse``
    Greedy coverage on the features (facility location, or k-median): each pick is
    the candidate that most reduces the summed distance from the class's members
    to their nearest pick, so k images spread over the class, in proportion to
    where its members are, instead of repeating its most common look.
``k-center``
    Farthest-point traversal on the features, from a seeded random start: each
    pick is the candidate farthest from those already picked. It minimises the
    worst distance rather than the typical one, and so takes outliers first.
``one-per-patient``
    One sample of every patient first (seeded random), then the second ones, and so on.

``diverse`` was first farthest-point (k-center); on real knee radiographs that
chose odd images first and left the typical image *farther* from a selected one
than ``random`` did for small budgets (tests/benchmarks/select_diverse.py), so
``diverse`` optimises the mean distance and ``k-center`` remains for the worst case.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from curate.errors import CurateError

__all__ = [
    "STRATEGIES",
    "FEATURE_STRATEGIES",
    "check_strategy",
    "order_candidates",
    "coverage_order",
    "farthest_point_order",
]

#: Strategies that need features.
FEATURE_STRATEGIES = frozenset({"diverse", "k-center"})

Order = Callable[..., np.ndarray]

_LAZY_BATCH = 16


def _random(
    group: pd.DataFrame, *, rng: np.random.Generator, features: np.ndarray | None, limit: int | None
) -> np.ndarray:
    return rng.permutation(len(group))


def _quality(
    group: pd.DataFrame, *, rng: np.random.Generator, features: np.ndarray | None, limit: int | None
) -> np.ndarray:
    tie = rng.permutation(len(group))
    problems = group["quality_problems"].to_numpy(dtype=float)
    # unknown label quality sorts after every known one
    label_quality = group["label_quality"].astype(float).fillna(-np.inf).to_numpy()
    return np.lexsort((tie, -label_quality, problems))


def farthest_point_order(points: np.ndarray, *, first: int = 0, limit: int | None = None) -> np.ndarray:
    """Farthest-point traversal of ``points`` from ``first``.

    The first ``k`` positions of the order are the greedy k-center choice for
    every ``k`` (a 2-approximation of the best covering radius). After ``limit``
    picks, the others follow by decreasing distance to the picked ones, which
    costs nothing more.

    Examples
    --------
    >>> farthest_point_order(np.array([[0.0], [1.0], [10.0], [4.0]])).tolist()
    [0, 2, 3, 1]
    """
    n = len(points)
    limit = n if limit is None else min(max(int(limit), 1), n)
    order = np.empty(n, dtype=np.int64)
    picked = np.zeros(n, dtype=bool)
    distance = np.full(n, np.inf)
    current = int(first)
    for step in range(limit):
        order[step] = current
        picked[current] = True
        distance = np.minimum(distance, np.linalg.norm(points - points[current], axis=1))
        if step + 1 < limit:
            current = int(np.argmax(np.where(picked, -1.0, distance)))
    rest = np.flatnonzero(~picked)
    order[limit:] = rest[np.argsort(-distance[rest], kind="stable")]
    return order


def coverage_order(
    points: np.ndarray, *, rng: np.random.Generator, limit: int | None = None, reference_size: int = 2000
) -> np.ndarray:
    """Greedy facility-location order of ``points`` (lazy greedy, exact).

    Each pick maximises the drop of ``sum_i min_j d(x_i, x_picked_j)`` over the
    reference members ``x_i``; the objective is submodular, so the greedy prefix
    of length ``k`` is within ``1 - 1/e`` of the best ``k`` picks, and stale gains
    are valid upper bounds (lazy evaluation keeps it to a few distance passes per
    pick). The first pick is the medoid. Classes larger than ``reference_size``
    measure the objective on that many members drawn with ``rng``. Ties follow
    ``rng``. After ``limit`` picks, the others follow by their last known gain.

    Examples
    --------
    The medoid first, then a member of the other group:

    >>> points = np.array([[0.0], [0.1], [0.2], [10.0], [10.1]])
    >>> order = coverage_order(points, rng=np.random.default_rng(0))
    >>> int(order[0]), bool(points[order[1], 0] >= 10)
    (2, True)
    """
    n = len(points)
    limit = n if limit is None else min(max(int(limit), 1), n)
    reference = points if n <= reference_size else points[np.sort(rng.choice(n, reference_size, replace=False))]
    spread = np.linalg.norm(points - reference.mean(axis=0), axis=1).max()
    # any distance is below the bound, so the first gains are positive and pick the medoid
    bound = 2.0 * spread + 1.0
    current = np.full(len(reference), bound)
    first_gains = np.empty(n)
    for lo in range(0, n, 1024):
        first_gains[lo : lo + 1024] = (bound - cdist(reference, points[lo : lo + 1024])).sum(axis=0)
    tie = rng.permutation(n)
    heap = [(-g, int(t), c) for c, (g, t) in enumerate(zip(first_gains, tie))]
    heapq.heapify(heap)
    order: list[int] = []
    while len(order) < limit:
        # Refresh the best few bounds at once; the best fresh gain wins if no stale bound exceeds it.
        batch = [heapq.heappop(heap) for _ in range(min(_LAZY_BATCH, len(heap)))]
        columns = [c for _, _, c in batch]
        distances = cdist(reference, points[columns])
        gains = np.maximum(current[:, None] - distances, 0.0).sum(axis=0)
        best = min(range(len(batch)), key=lambda i: (-gains[i], batch[i][1]))
        picked = not heap or gains[best] >= -heap[0][0]
        for i, (_, t, c) in enumerate(batch):
            if not (picked and i == best):
                heapq.heappush(heap, (-gains[i], t, c))
        if picked:
            order.append(columns[best])
            current = np.minimum(current, distances[:, best])
    rest = [c for _, _, c in sorted(heap)]
    return np.array(order + rest, dtype=np.int64)


def _features_of(strategy: str, features: np.ndarray | None) -> np.ndarray:
    if features is None:
        raise CurateError(f"strategy {strategy!r} needs features (--features FILE)")
    return features


def _diverse(
    group: pd.DataFrame, *, rng: np.random.Generator, features: np.ndarray | None, limit: int | None
) -> np.ndarray:
    points = _features_of("diverse", features)
    if len(group) == 0:
        return np.empty(0, dtype=np.int64)
    return coverage_order(points, rng=rng, limit=limit)


def _k_center(
    group: pd.DataFrame, *, rng: np.random.Generator, features: np.ndarray | None, limit: int | None
) -> np.ndarray:
    points = _features_of("k-center", features)
    if len(group) == 0:
        return np.empty(0, dtype=np.int64)
    return farthest_point_order(points, first=int(rng.integers(len(group))), limit=limit)


def _one_per_patient(
    group: pd.DataFrame, *, rng: np.random.Generator, features: np.ndarray | None, limit: int | None
) -> np.ndarray:
    tie = rng.permutation(len(group))
    patients = group["patient_id"].astype("string").fillna(group["sample_id"].astype("string")).to_numpy()
    # rank of each sample within its patient, in the seeded order
    frame = pd.DataFrame({"patient": patients, "tie": tie})
    nth = frame.sort_values("tie").groupby("patient", sort=False).cumcount().sort_index().to_numpy()
    return np.lexsort((tie, nth))


STRATEGIES: dict[str, Order] = {
    "random": _random,
    "quality": _quality,
    "diverse": _diverse,
    "k-center": _k_center,
    "one-per-patient": _one_per_patient,
}


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if it is known, else raise :class:`CurateError`."""
    if strategy not in STRATEGIES:
        raise CurateError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return strategy


def order_candidates(
    strategy: str,
    group: pd.DataFrame,
    *,
    rng: np.random.Generator,
    features: np.ndarray | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Positions into ``group`` in the order ``strategy`` prefers them.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    group : DataFrame
        One class's candidates: ``sample_id``, ``patient_id``, and for ``quality``
        ``quality_problems`` and ``label_quality``.
    rng : Generator
        The class's random stream.
    features : ndarray, optional
        One row per candidate (needed by ``diverse`` and ``k-center``).
    limit : int, optional
        How many will be taken; lets ``diverse`` and ``k-center`` stop early.
    """
    return STRATEGIES[check_strategy(strategy)](group, rng=rng, features=features, limit=limit)
