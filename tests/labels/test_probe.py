from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.errors import CurateError
from curate.labels.noise import find_label_noise
from curate.labels.probe import PRUNE_MAX_SHARE, _distant_rows, cross_val_probabilities


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
    flipped = np.flatnonzero(grades == 4)[:3]  # one KL 4 in twenty filed as KL 1
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


def test_only_unlikely_labels_are_pruned_and_never_more_than_a_third_of_a_grade():
    classes = np.arange(5)
    y = np.repeat([4, 0], [9, 30])
    probs = np.full((len(y), 5), 0.01)
    probs[:, 0] = 0.96  # everything looks like KL 0
    probs[:3, 4] = 0.2  # ... but these three KL 4 labels are not unlikely enough
    probs /= probs.sum(axis=1, keepdims=True)
    pruned = _distant_rows(probs, y, classes)
    # six KL 4 labels qualify; a third of the nine KL 4 rows may go, the least likely first
    assert pruned.sum() == 9 * PRUNE_MAX_SHARE == 3 and not pruned[:3].any() and not pruned[9:].any()
    # features that say nothing put no label that far below the suggestion
    x, grades, groups = _graded(n_patients=40)
    noise = np.random.default_rng(5).normal(0, 1, x.shape)
    assert cross_val_probabilities(noise, grades, groups, n_splits=4, prune_distant=True).pruned == (0, 0, 0, 0)


def test_a_fold_too_small_to_prune_says_so_and_two_classes_are_never_pruned():
    x, grades, groups = _graded(n_patients=30)
    rare = np.flatnonzero(grades == 4)[2:]
    keep = np.setdiff1d(np.arange(len(grades)), rare)  # grade 4 in two patients only
    result = cross_val_probabilities(x[keep], grades[keep], groups[keep], prune_distant=True)
    assert result.n_splits == 2 and result.pruned == (None, None)
    # binary labels on small embeddings with the logistic probe: no grade is two from another
    rng = np.random.default_rng(0)
    labels = (rng.random(150) < 0.1).astype(int)
    catalog = pd.DataFrame({"sample_id": [f"s{i}" for i in range(150)], "label": labels,
                            "patient_id": [f"p{i}" for i in range(150)], "path": [f"s{i}.png" for i in range(150)]})
    embeddings = pd.DataFrame(rng.normal(0, 1, (150, 128)), index=pd.Index(catalog["sample_id"], name="sample_id"))
    binary = find_label_noise(catalog, embeddings, outlier_distance=None)
    assert binary.metrics["classifier"] == "logistic" and binary.metrics["pruned_per_fold"] == []


def test_inner_fits_of_a_small_set_fit_the_logistic_probe_on_fewer_components():
    # 163 knees with grade 4 in only three patients: three outer folds, two inner ones of
    # ~54 knees each, fewer than the 64 principal components the whole set allows
    rng = np.random.default_rng(0)
    grades = np.r_[np.tile(np.arange(4), 40), [4, 4, 4]]
    groups = np.r_[np.repeat(np.arange(40), 4), [100, 101, 102]].astype(str)
    x = rng.normal(0, 1, (len(grades), 128)) + grades[:, None] * 0.3
    result = cross_val_probabilities(x, grades, groups, classifier="logistic", prune_distant=True)
    assert result.n_splits == 3 and len(result.pruned) == 3 and None not in result.pruned
    assert np.allclose(result.pred_probs.sum(axis=1), 1.0)


def test_pruning_needs_ordered_classes():
    x, grades, groups = _graded(n_patients=10)
    with pytest.raises(CurateError, match="prune_distant needs ordered classes"):
        cross_val_probabilities(x, np.array(list("abcde"))[grades], groups, prune_distant=True)
