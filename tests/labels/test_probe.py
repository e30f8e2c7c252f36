from __future__ import annotations

import numpy as np
import pytest

from curate.errors import CurateError
from curate.labels.probe import cross_val_probabilities


def _graded(n_patients: int = 60, noise: float = 0.2, seed: int = 0):
    """Five knees per patient, one of each grade; one feature carries the grade."""
    rng = np.random.default_rng(seed)
    grades = np.tile(np.arange(5), n_patients)
    groups = np.repeat(np.arange(n_patients), 5).astype(str)
    x = np.c_[grades + rng.normal(0, noise, len(grades)), rng.normal(0, 1, (len(grades), 3))]
    return x, grades, groups


def test_pruning_leaves_out_exactly_the_distant_training_labels_and_still_predicts_them():
    x, grades, groups = _graded()
    labels = grades.copy()
    flipped = np.flatnonzero(grades == 4)[:6]
    labels[flipped] = 1
    plain = cross_val_probabilities(x, labels, groups, n_splits=5, seed=0)
    pruned = cross_val_probabilities(x, labels, groups, n_splits=5, seed=0, prune_distant=True)
    # each flipped knee trains 4 of the 5 folds, and each of those folds leaves it out
    assert sum(pruned.pruned) == len(flipped) * 4
    assert plain.pruned == ()
    assert np.array_equal(plain.folds, pruned.folds)
    assert (pruned.pred_probs[flipped].argmax(axis=1) == 4).all()
    clean = cross_val_probabilities(x, grades, groups, n_splits=5, seed=0, prune_distant=True)
    assert clean.pruned == (0, 0, 0, 0, 0)


def test_a_held_out_fold_plays_no_part_in_what_its_model_leaves_out():
    x, grades, groups = _graded(noise=0.6)
    labels = grades.copy()
    labels[np.flatnonzero(grades >= 3)[::7]] = 0  # enough distant errors that every fold prunes
    first = cross_val_probabilities(x, labels, groups, n_splits=5, seed=1, prune_distant=True)
    assert min(first.pruned) > 0
    # shuffle the labels within each patient of fold 0: every patient keeps one knee per
    # grade, so the folds stay the same, but fold 0's labels are now mostly wrong
    held_out = first.folds == 0
    shuffled = labels.copy()
    for patient in np.unique(groups[held_out]):
        rows = np.flatnonzero(groups == patient)
        shuffled[rows] = np.roll(labels[rows], 2)
    second = cross_val_probabilities(x, shuffled, groups, n_splits=5, seed=1, prune_distant=True)
    assert np.array_equal(first.folds, second.folds)
    # fold 0 is predicted exactly as before; the other folds, which trained on it, are not
    assert np.array_equal(first.pred_probs[held_out], second.pred_probs[held_out])
    assert not np.allclose(first.pred_probs[~held_out], second.pred_probs[~held_out])


def test_pruning_needs_ordered_classes():
    x, grades, groups = _graded(n_patients=10)
    with pytest.raises(CurateError, match="prune_distant needs ordered classes"):
        cross_val_probabilities(x, np.array(list("abcde"))[grades], groups, prune_distant=True)
