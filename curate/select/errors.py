"""Errors of the select stage: each one line a person can act on."""

from __future__ import annotations

from collections.abc import Mapping

from curate.errors import CurateError

__all__ = ["SplitError", "ShortClassError"]


class SplitError(CurateError):
    """A split that breaks an invariant (a patient in two splits, a class missing...)."""


class ShortClassError(CurateError):
    """A sampler asked for more samples of a class than the split holds.

    Attributes
    ----------
    split : str
        The split that was sampled.
    wanted, available : dict
        Samples asked for and samples available, per class (keys are the labels as text).
    """

    def __init__(self, message: str, *, split: str, wanted: Mapping[str, int], available: Mapping[str, int]):
        super().__init__(message)
        self.split = split
        self.wanted = dict(wanted)
        self.available = dict(available)
