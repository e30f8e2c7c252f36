"""``full``: every sample that survived exclusion, with class weights for a weighted loss."""

from __future__ import annotations

import dataclasses

import numpy as np

from curate.select.samplers._base import BaseSampler
from curate.select.weights import DEFAULT_BETA, check_weighting, class_weights

__all__ = ["FullSampler"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FullSampler(BaseSampler):
    """Select every candidate once; weight each by its class (see :mod:`curate.select.weights`).

    Parameters
    ----------
    weighting : {"inverse", "effective", "none"}
        The scheme written to the ``weight`` column (both schemes are recorded in
        the selection's metadata whatever this is).
    beta : float
        Of the effective-number weights, in [0, 1).

    Examples
    --------
    >>> FullSampler(weighting="effective", beta=0.9999).get_params()
    {'sampler': 'full', 'weighting': 'effective', 'beta': 0.9999}
    """

    name = "full"

    weighting: str = "inverse"
    beta: float = DEFAULT_BETA

    def __post_init__(self):
        check_weighting(self.weighting, self.beta)

    def _sample(self, candidates, *, classes, features, seed, split):
        return np.ones(len(candidates), dtype=np.int64)

    def _weights(self, candidates, repeat):
        rows = candidates.assign(rows=repeat).groupby("class")["rows"].sum()
        weights = class_weights(rows.to_dict(), weighting=self.weighting, beta=self.beta)
        return candidates["class"].map(weights).fillna(0.0).to_numpy(dtype=float)
