"""``stratified n``: n samples keeping the split's class proportions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from curate.errors import CurateError
from curate.select.samplers._base import available_counts, check_count
from curate.select.samplers._per_class import StrategySampler, take_per_class
from curate.select.strategies import check_strategy

__all__ = ["StratifiedSampler", "proportional_counts"]


def proportional_counts(n: int, available: Mapping[str, int]) -> dict[str, int]:
    """``n`` shared in proportion to ``available`` by largest remainders (ties: class order).

    Examples
    --------
    >>> proportional_counts(100, {"0": 686, "1": 314, "2": 455, "3": 227, "4": 52})
    {'0': 40, '1': 18, '2': 26, '3': 13, '4': 3}
    """
    total = sum(available.values())
    exact = {c: n * a / total for c, a in available.items()}
    counts = {c: int(v) for c, v in exact.items()}
    order = sorted(available, key=lambda c: (-(exact[c] - counts[c]), list(available).index(c)))
    for c in order[: n - sum(counts.values())]:
        counts[c] += 1
    return counts


@dataclasses.dataclass(frozen=True, kw_only=True)
class StratifiedSampler(StrategySampler):
    """Take ``n`` samples with the class proportions of the split's candidates.

    Parameters
    ----------
    n : int
        Samples in all, at most the split's candidates.
    strategy : str
        Which samples a class keeps (see :mod:`curate.select.strategies`).
    """

    name = "stratified"

    n: int
    strategy: str = "random"

    def __post_init__(self):
        check_count("n", self.n)
        check_strategy(self.strategy)

    def _sample(self, candidates, *, classes, features, seed, split):
        available = available_counts(candidates, classes)
        total = sum(available.values())
        if self.n > total:
            raise CurateError(f"stratified n={self.n} is more than the {total} samples available in {split}")
        return take_per_class(
            candidates,
            proportional_counts(self.n, available),
            strategy=self.strategy,
            short="fail",
            features=features,
            seed=seed,
            split=split,
            what=self.describe(),
        )
