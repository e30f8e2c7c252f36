"""Class weights for trainers that weight their loss instead of resampling.

Two schemes, each normalised so the weights average 1 over the training rows
(the loss keeps its scale; the inverse-frequency weights are then exactly
scikit-learn's ``class_weight="balanced"``):

- ``inverse``: ``w_c ∝ 1 / n_c``;
- ``effective``: ``w_c ∝ (1 - beta) / (1 - beta ** n_c)``, the inverse of the
  effective number of samples of Cui et al., "Class-Balanced Loss Based on
  Effective Number of Samples", CVPR 2019. ``beta`` -> 0 gives equal weights,
  ``beta`` -> 1 the inverse frequency; 0.999 to 0.9999 worked best in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from curate.errors import CurateError

__all__ = ["WEIGHTINGS", "DEFAULT_BETA", "class_weights", "check_weighting"]

WEIGHTINGS: tuple[str, ...] = ("inverse", "effective", "none")
DEFAULT_BETA = 0.999


def check_weighting(weighting: str, beta: float) -> None:
    """Refuse an unknown scheme or a ``beta`` outside [0, 1)."""
    if weighting not in WEIGHTINGS:
        raise CurateError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
        raise CurateError(f"beta must be a number in [0, 1), not {beta!r}")


def class_weights(
    counts: Mapping[str, int], *, weighting: str = "inverse", beta: float = DEFAULT_BETA
) -> dict[str, float]:
    """The weight of each class, given its number of training rows.

    Parameters
    ----------
    counts : mapping
        Class -> rows; classes with no row get no weight.
    weighting : {"inverse", "effective", "none"}
    beta : float
        Of the effective number, in [0, 1).

    Returns
    -------
    dict
        Class -> weight, averaging 1 over the rows.

    Examples
    --------
    >>> class_weights({"0": 300, "1": 100})
    {'0': 0.6666666666666667, '1': 2.0}
    >>> {k: round(v, 3) for k, v in class_weights({"0": 300, "1": 100}, weighting="effective", beta=0.99).items()}
    {'0': 0.889, '1': 1.333}
    """
    check_weighting(weighting, beta)
    present = {str(k): int(n) for k, n in counts.items() if n > 0}
    if not present:
        return {}
    if weighting == "none":
        raw = {k: 1.0 for k in present}
    elif weighting == "inverse":
        raw = {k: 1.0 / n for k, n in present.items()}
    else:
        raw = {k: (1.0 - beta) / (1.0 - beta**n) if beta > 0 else 1.0 for k, n in present.items()}
    rows = sum(present.values())
    scale = rows / sum(raw[k] * n for k, n in present.items())
    return {k: raw[k] * scale for k in present if math.isfinite(raw[k])}
