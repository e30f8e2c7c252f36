"""Take a given number of samples of each class: ``per-class {0: 100, 1: 100, ...}``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.select.errors import ShortClassError
from curate.select.samplers._base import BaseSampler, available_counts, check_counts, check_short, class_rng
from curate.select.strategies import FEATURE_STRATEGIES, check_strategy, order_candidates

__all__ = ["PerClassSampler", "take_per_class"]


def _short_message(what: str, split: str, wanted: Mapping[str, int], available: Mapping[str, int]) -> str:
    short = [c for c in wanted if wanted[c] > available.get(c, 0)]
    asked = ", ".join(f"{c}: {wanted[c]}" for c in short)
    have = ", ".join(f"{c}: {n}" for c, n in available.items())
    return (
        f"{what} asks more than {split} holds for class(es) {', '.join(short)} (asked {asked}); "
        f"available in {split} per class: {have}. Ask for fewer, or set short to 'available' "
        "(take all of a short class) or 'oversample' (repeat its samples)"
    )


def take_per_class(
    candidates: pd.DataFrame,
    wanted: Mapping[str, int],
    *,
    strategy: str,
    short: str,
    features: np.ndarray | None,
    seed: int,
    split: str,
    what: str,
) -> np.ndarray:
    """Repeat counts taking ``wanted[c]`` candidates of each class ``c`` in ``strategy`` order.

    A class with fewer candidates than wanted fails (``short="fail"``, listing what
    every class has), gives all it has (``"available"``), or repeats its candidates
    (``"oversample"``: each ``wanted // have`` times, the first ``wanted % have`` in
    strategy order once more).
    """
    available = available_counts(candidates, list(wanted))
    if short == "fail" and any(n > available[c] for c, n in wanted.items()):
        message = _short_message(what, split, wanted, available)
        raise ShortClassError(message, split=split, wanted=wanted, available=available)
    repeat = np.zeros(len(candidates), dtype=np.int64)
    classes = candidates["class"].to_numpy()
    for name, want in wanted.items():
        members = np.flatnonzero(classes == name)
        have = len(members)
        if want == 0 or have == 0:
            if want > 0 and short == "oversample":
                message = f"{what}: class {name} has no sample in {split} to repeat"
                raise ShortClassError(message, split=split, wanted=wanted, available=available)
            continue
        group = candidates.iloc[members]
        order = order_candidates(
            strategy,
            group,
            rng=class_rng(seed, split, name),
            features=None if features is None else features[members],
            limit=min(want, have),
        )
        if want <= have:
            repeat[members[order[:want]]] = 1
        elif short == "available":
            repeat[members] = 1
        else:
            times, extra = divmod(want, have)
            repeat[members] = times
            repeat[members[order[:extra]]] += 1
    return repeat


class StrategySampler(BaseSampler):
    """A sampler that picks each class's samples by ``self.strategy``; some strategies need features."""

    @property
    def needs_features(self) -> bool:  # type: ignore[override]
        return self.strategy in FEATURE_STRATEGIES


@dataclasses.dataclass(frozen=True, kw_only=True)
class PerClassSampler(StrategySampler):
    """Take ``counts[c]`` samples of each class ``c``; classes not listed are not taken.

    Parameters
    ----------
    counts : mapping
        Class -> number of samples (keys compared as text: ``0`` and ``"0"`` are one class).
    short : {"fail", "available", "oversample"}
        When a class has fewer samples than asked (see :func:`take_per_class`).
    strategy : str
        Which samples a class keeps (see :mod:`curate.select.strategies`).

    Examples
    --------
    >>> PerClassSampler(counts={0: 100, 4: 100}).counts
    {'0': 100, '4': 100}
    """

    name = "per-class"

    counts: Mapping[str, int]
    short: str = "fail"
    strategy: str = "random"

    def __post_init__(self):
        if not isinstance(self.counts, Mapping) or not self.counts:
            raise CurateError("per-class needs counts per class, e.g. {0: 100, 1: 100}")
        object.__setattr__(self, "counts", check_counts(self.counts))
        check_short(self.short)
        check_strategy(self.strategy)

    def _sample(self, candidates, *, classes, features, seed, split):
        unknown = sorted(set(self.counts) - set(classes))
        if unknown:
            raise CurateError(f"per-class names unknown class(es) {', '.join(unknown)}; classes: {', '.join(classes)}")
        return take_per_class(
            candidates,
            self.counts,
            strategy=self.strategy,
            short=self.short,
            features=features,
            seed=seed,
            split=split,
            what=self.describe(),
        )

    def describe(self) -> str:
        return "per-class " + ",".join(f"{k}={v}" for k, v in self.counts.items())
