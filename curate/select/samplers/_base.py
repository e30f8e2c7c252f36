"""The base of every sampler: one split's candidates in, a repeat count per candidate out."""

from __future__ import annotations

import dataclasses
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import pandas as pd

from curate.errors import CurateError

__all__ = [
    "BaseSampler",
    "SHORT_POLICIES",
    "class_rng",
    "check_count",
    "check_counts",
    "check_short",
    "available_counts",
]

#: What a sampler does when a class has fewer candidates than asked.
SHORT_POLICIES: tuple[str, ...] = ("fail", "available", "oversample")


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def class_rng(seed: int, *keys: str) -> np.random.Generator:
    """The random stream of one (split, class): independent of every other class and of row order."""
    return np.random.default_rng([int(seed), *(_stable_int(k) for k in keys)])


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """A whole number >= ``minimum``, or :class:`CurateError` naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise CurateError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return int(value)


def check_counts(counts: Mapping[object, object]) -> dict[str, int]:
    """Per-class counts with text keys (``0`` and ``"0"`` are one class), each a whole number >= 0."""
    return {str(k): check_count(f"the count of class {k}", v, minimum=0) for k, v in counts.items()}


def check_short(short: str) -> str:
    if short not in SHORT_POLICIES:
        raise CurateError(f"unknown short policy {short!r}; choose one of {', '.join(SHORT_POLICIES)}")
    return short


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaseSampler(ABC):
    """Choose, within one split, which candidates are selected and how often.

    Subclasses are frozen keyword-only dataclasses that validate their parameters
    in ``__post_init__`` and implement :meth:`_sample`.
    """

    #: The name the CLI and :func:`curate.select.samplers.make_sampler` know it by.
    name: ClassVar[str] = ""
    #: True when the sampler cannot work without features.
    needs_features: ClassVar[bool] = False

    def sample(
        self,
        candidates: pd.DataFrame,
        *,
        classes: Sequence[str],
        features: np.ndarray | None = None,
        seed: int = 0,
        split: str = "train",
    ) -> pd.DataFrame:
        """Sample one split.

        Parameters
        ----------
        candidates : DataFrame
            The split's samples that survived exclusion, sorted by ``sample_id``:
            ``sample_id``, ``patient_id``, ``class`` (the label as text),
            ``quality_problems`` and ``label_quality``.
        classes : sequence of str
            Every class of the catalog, so a class absent from the split is seen as short.
        features : ndarray, optional
            One standardised row per candidate.
        seed : int
            Seed of every random choice.
        split : str
            The split's name (for messages and the random streams).

        Returns
        -------
        DataFrame
            ``repeat`` (int, 0 = not selected) and ``weight`` (float), indexed like ``candidates``.
        """
        repeat = np.asarray(
            self._sample(candidates, classes=list(classes), features=features, seed=seed, split=split), dtype=np.int64
        )
        weight = np.where(repeat > 0, self._weights(candidates, repeat), 0.0)
        return pd.DataFrame({"repeat": repeat, "weight": weight.astype(float)}, index=candidates.index)

    @abstractmethod
    def _sample(
        self, candidates: pd.DataFrame, *, classes: list[str], features: np.ndarray | None, seed: int, split: str
    ) -> np.ndarray:
        """The repeat count of every candidate (0: not selected)."""

    def _weights(self, candidates: pd.DataFrame, repeat: np.ndarray) -> np.ndarray:
        """Loss weight of every selected candidate; 1 unless a sampler weights classes."""
        return np.ones(len(candidates))

    def describe(self) -> str:
        """A short text naming the sampler and its main parameters, for messages."""
        main = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self) if f.name in ("n",)]
        return " ".join([self.name, *main])

    def get_params(self) -> dict:
        """The sampler's name and parameters, as JSON-ready values."""
        return {"sampler": self.name, **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def available_counts(candidates: pd.DataFrame, classes: Sequence[str]) -> dict[str, int]:
    """Candidates per class, every class listed."""
    counts = candidates["class"].value_counts()
    return {c: int(counts.get(c, 0)) for c in classes}
