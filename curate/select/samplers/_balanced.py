"""The same number of samples from every class: ``balanced n=500`` is 100 per KL grade."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from curate.errors import CurateError
from curate.select.samplers._base import available_counts, check_count, check_short
from curate.select.samplers._per_class import StrategySampler, take_per_class
from curate.select.strategies import check_strategy

__all__ = ["BalancedSampler", "balanced_counts"]


def balanced_counts(n: int, classes: Sequence[str], available: Mapping[str, int]) -> dict[str, int]:
    """``n`` shared equally over ``classes``.

    When ``n`` is not a multiple of the number of classes, the remainder goes one
    each to the classes with the most samples available (ties: class order), so
    the extra samples never push a short class further short.

    Examples
    --------
    >>> balanced_counts(502, ["0", "1", "2", "3", "4"], {"0": 686, "1": 314, "2": 455, "3": 227, "4": 52})
    {'0': 101, '1': 100, '2': 101, '3': 100, '4': 100}
    """
    base, remainder = divmod(n, len(classes))
    by_supply = sorted(classes, key=lambda c: (-available.get(c, 0), list(classes).index(c)))
    extra = set(by_supply[:remainder])
    return {c: base + (c in extra) for c in classes}


@dataclasses.dataclass(frozen=True, kw_only=True)
class BalancedSampler(StrategySampler):
    """Take ``n / classes`` samples of every class of the catalog.

    Parameters
    ----------
    n : int
        Samples in all; at least the number of classes. A remainder is shared as
        :func:`balanced_counts` says.
    short : {"fail", "available", "oversample"}
        When a class has fewer samples than its share: fail with the counts
        available per class (default), take all it has, or repeat them.
    strategy : str
        Which samples a class keeps (see :mod:`curate.select.strategies`).

    Examples
    --------
    >>> BalancedSampler(n=500, strategy="diverse").describe()
    'balanced n=500'
    """

    name = "balanced"

    n: int
    short: str = "fail"
    strategy: str = "random"

    def __post_init__(self):
        check_count("n", self.n)
        check_short(self.short)
        check_strategy(self.strategy)

    def _sample(self, candidates, *, classes, features, seed, split):
        if self.n < len(classes):
            raise CurateError(
                f"balanced n={self.n} is fewer than the {len(classes)} classes: take at least 1 per class"
            )
        wanted = balanced_counts(self.n, classes, available_counts(candidates, classes))
        return take_per_class(
            candidates,
            wanted,
            strategy=self.strategy,
            short=self.short,
            features=features,
            seed=seed,
            split=split,
            what=f"balanced n={self.n} ({_shares(wanted)} per class)",
        )


def _shares(wanted: Mapping[str, int]) -> str:
    values = sorted(set(wanted.values()))
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
