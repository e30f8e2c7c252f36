"""imbalanced-learn's samplers that pick real samples, by name, on the label features.

``RandomUnderSampler``, ``RandomOverSampler``, ``NearMiss``, ``TomekLinks`` and
``EditedNearestNeighbours`` report the rows they chose (``sample_indices_``):
those become the selection, a row chosen twice a repeat of 2. Samplers that
make synthetic samples (SMOTE and kin, shrinkage) have no place here: a training
set of radiographs holds radiographs.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping

import numpy as np

from curate.errors import CurateError
from curate.select.errors import ShortClassError
from curate.select.samplers._balanced import balanced_counts
from curate.select.samplers._base import BaseSampler, available_counts, check_count, check_counts, class_rng

__all__ = ["ImblearnSampler", "IMBLEARN_SAMPLERS", "sampling_targets"]

#: name -> (module, kind, needs features, takes random_state)
IMBLEARN_SAMPLERS: dict[str, tuple[str, str, bool, bool]] = {
    "RandomUnderSampler": ("imblearn.under_sampling", "under", False, True),
    "RandomOverSampler": ("imblearn.over_sampling", "over", False, True),
    "NearMiss": ("imblearn.under_sampling", "under", True, False),
    "TomekLinks": ("imblearn.under_sampling", "cleaning", True, False),
    "EditedNearestNeighbours": ("imblearn.under_sampling", "cleaning", True, False),
}

_SYNTHETIC_PARAMS = frozenset({"shrinkage"})


def sampling_targets(
    *,
    method: str,
    kind: str,
    n: int | None,
    counts: Mapping[str, int] | None,
    sampling_strategy: object,
    available: Mapping[str, int],
    split: str,
) -> object:
    """The ``sampling_strategy`` given to imbalanced-learn.

    ``n`` becomes a balanced dict over the classes present (see
    :func:`~curate.select.samplers.balanced_counts`), ``counts`` a dict as is;
    otherwise ``sampling_strategy`` passes through. A count an under-sampler
    cannot reach fails with the counts available per class.
    """
    if n is None and counts is None:
        return sampling_strategy
    if kind == "cleaning":
        raise CurateError(f"{method} removes the samples it finds noisy: it takes no n or per-class counts")
    present = {c: a for c, a in available.items() if a > 0}
    wanted = dict(counts) if counts is not None else balanced_counts(n, list(present), present)
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise CurateError(f"{method}: unknown class(es) {', '.join(unknown)}; classes: {', '.join(available)}")
    if kind == "under":
        short = {c: w for c, w in wanted.items() if w > available[c]}
        if short:
            have = ", ".join(f"{c}: {a}" for c, a in available.items())
            asked = ", ".join(f"{c}: {w}" for c, w in short.items())
            raise ShortClassError(
                f"{method} cannot keep more than a class has: asked {asked}; available in {split} per class: {have}",
                split=split,
                wanted=wanted,
                available=available,
            )
    else:
        low = {c: w for c, w in wanted.items() if w < available[c]}
        if low:
            raise CurateError(
                f"{method} only adds samples: asked {', '.join(f'{c}: {w}' for c, w in low.items())} "
                f"but {split} already holds {', '.join(f'{c}: {available[c]}' for c in low)}"
            )
    return wanted


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImblearnSampler(BaseSampler):
    """One of :data:`IMBLEARN_SAMPLERS`, choosing among a split's candidates.

    Parameters
    ----------
    method : str
        The imbalanced-learn class name (case-insensitive).
    n : int, optional
        Samples in all, shared equally over the classes present (not for cleaning samplers).
    counts : mapping, optional
        Class -> samples (imbalanced-learn's dict ``sampling_strategy``).
    sampling_strategy : str or list
        Passed through when neither ``n`` nor ``counts`` is given (default ``"auto"``).
    params : mapping
        Other keyword arguments of the imbalanced-learn class (``version`` of NearMiss,
        ``n_neighbors``...).

    Examples
    --------
    >>> ImblearnSampler(method="nearmiss", n=500, params={"version": 2}).describe()
    'NearMiss n=500'
    """

    method: str
    n: int | None = None
    counts: Mapping[str, int] | None = None
    sampling_strategy: object = "auto"
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        known = {k.lower(): k for k in IMBLEARN_SAMPLERS}
        if str(self.method).lower() not in known:
            raise CurateError(
                f"unknown imbalanced-learn sampler {self.method!r}; known: {', '.join(IMBLEARN_SAMPLERS)}"
            )
        object.__setattr__(self, "method", known[str(self.method).lower()])
        if self.n is not None and self.counts is not None:
            raise CurateError(f"{self.method}: give n or per-class counts, not both")
        if self.n is not None:
            check_count("n", self.n)
        if self.counts is not None:
            object.__setattr__(self, "counts", check_counts(self.counts))
        synthetic = sorted(_SYNTHETIC_PARAMS & set(self.params))
        if synthetic:
            raise CurateError(
                f"{self.method}: {', '.join(synthetic)} makes synthetic samples; curate selects real ones"
            )
        if "random_state" in self.params or "sampling_strategy" in self.params:
            raise CurateError(f"{self.method}: set the seed and counts with seed / n / per-class, not in params")
        object.__setattr__(self, "params", dict(self.params))

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.method

    @property
    def needs_features(self) -> bool:  # type: ignore[override]
        return IMBLEARN_SAMPLERS[self.method][2]

    def _sample(self, candidates, *, classes, features, seed, split):
        module, kind, _, seeded = IMBLEARN_SAMPLERS[self.method]
        available = available_counts(candidates, classes)
        target = sampling_targets(
            method=self.method,
            kind=kind,
            n=self.n,
            counts=self.counts,
            sampling_strategy=self.sampling_strategy,
            available=available,
            split=split,
        )
        params = dict(self.params)
        if seeded:
            params["random_state"] = int(class_rng(seed, split).integers(2**31 - 1))
        try:
            sampler = getattr(importlib.import_module(module), self.method)(sampling_strategy=target, **params)
        except TypeError as exc:
            raise CurateError(f"{self.method}: {exc}") from None
        # the random samplers ignore X: positions stand in when there are no features
        X = features if features is not None else np.arange(len(candidates), dtype=float)[:, None]
        y = candidates["class"].to_numpy(dtype=object)
        try:
            sampler.fit_resample(X, y)
        except ValueError as exc:
            raise CurateError(f"{self.method}: {str(exc).strip().splitlines()[0]}") from None
        return np.bincount(sampler.sample_indices_, minlength=len(candidates))

    def describe(self) -> str:
        return self.method + (f" n={self.n}" if self.n is not None else "")
