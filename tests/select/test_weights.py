from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from curate.errors import CurateError
from curate.select import class_weights

COUNTS = {"0": 2286, "1": 1046, "2": 1516, "3": 757, "4": 173}  # the public KL train split


def test_inverse_weights_are_scikit_learns_balanced_weights():
    y = np.repeat(list(COUNTS), list(COUNTS.values()))
    expected = compute_class_weight("balanced", classes=np.array(list(COUNTS)), y=y)
    assert list(class_weights(COUNTS).values()) == pytest.approx(expected)


def test_effective_number_weights_sit_between_equal_and_inverse():
    rows = sum(COUNTS.values())
    for beta in (0.9, 0.999, 0.9999):
        w = class_weights(COUNTS, weighting="effective", beta=beta)
        assert sum(w[k] * n for k, n in COUNTS.items()) == pytest.approx(rows)  # averages 1 over the rows
        assert w["4"] >= w["3"] >= w["1"] >= w["2"] >= w["0"]
    assert class_weights(COUNTS, weighting="effective", beta=0.0) == pytest.approx(dict.fromkeys(COUNTS, 1.0))
    assert class_weights(COUNTS, weighting="effective", beta=1 - 1e-9) == pytest.approx(class_weights(COUNTS), rel=1e-4)
    assert class_weights(COUNTS, weighting="none") == dict.fromkeys(COUNTS, 1.0)


def test_effective_weights_follow_cui_et_al():
    beta = 0.999
    effective = {k: (1 - beta**n) / (1 - beta) for k, n in COUNTS.items()}
    w = class_weights(COUNTS, weighting="effective", beta=beta)
    assert w["4"] / w["0"] == pytest.approx(effective["0"] / effective["4"])


def test_bad_weighting_is_refused():
    with pytest.raises(CurateError, match="unknown weighting 'focal'"):
        class_weights(COUNTS, weighting="focal")
    with pytest.raises(CurateError, match="beta must be a number in \\[0, 1\\)"):
        class_weights(COUNTS, weighting="effective", beta=1.0)
    assert class_weights({"0": 0}) == {}
