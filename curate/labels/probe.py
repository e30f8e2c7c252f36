"""Out-of-sample predicted probabilities by patient-grouped cross-validation.

cleanlab needs probabilities for each sample from a model that never saw it. Its
own cross-validation ignores patients, which leaks the other knee (or the
follow-up image) of the same person into training and makes every label look
right. Here folds come from :class:`~sklearn.model_selection.StratifiedGroupKFold`
on ``patient_id``: a patient's images are always predicted together, by a model
trained on other patients only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from curate.errors import CurateError

__all__ = ["AUTO", "CLASSIFIERS", "CLASSIFIER_NAMES", "check_classifier", "make_classifier", "resolve_classifier", "PRUNE_MAX_PROBABILITY", "PRUNE_MAX_SHARE", "PRUNE_SPLITS", "ProbeResult", "cross_val_probabilities", "probe_metrics"]


def _logistic(seed: int):
    # PCA keeps the fit fast and well conditioned on hundreds of correlated pixel features.
    return make_pipeline(
        StandardScaler(), PCA(n_components=64, svd_solver="randomized", random_state=seed), LogisticRegression(C=0.5, max_iter=500)
    )


def _ordinal(seed: int):
    from curate.labels.ordinal import OrdinalRidgeClassifier

    return OrdinalRidgeClassifier(random_state=seed)


def _boosting(seed: int):
    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)


#: Classifiers by name: the probe is a sanity check, not the researcher's model.
CLASSIFIERS = {"logistic": _logistic, "ordinal": _ordinal, "gradient-boosting": _boosting}

#: ``classifier="auto"``: ordinal for integer labels with three or more classes (KL grades), else logistic.
AUTO = "auto"
#: Every name the probe accepts.
CLASSIFIER_NAMES: tuple[str, ...] = (AUTO, *CLASSIFIERS)


def check_classifier(name: str) -> str:
    """``name`` if the probe knows it; else a :class:`CurateError` listing the choices."""
    if name not in CLASSIFIER_NAMES:
        raise CurateError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIER_NAMES)}")
    return name


def resolve_classifier(name: str, labels: np.ndarray) -> str:
    """The classifier ``name`` stands for with these labels (``auto`` picks by the labels' kind).

    Other names pass through unchecked: :func:`make_classifier` rejects unknown ones.
    """
    if name != AUTO:
        return name
    classes = np.unique(labels)
    return "ordinal" if _are_grades(classes) else "logistic"


def _are_grades(classes: np.ndarray) -> bool:
    """Integer classes, three or more: an ordered scale on which a label can be two grades off."""
    return np.issubdtype(classes.dtype, np.integer) and len(classes) >= 3


def make_classifier(name: str, seed: int = 0):
    """A fresh classifier of the named kind (see :data:`CLASSIFIERS`; ``auto`` is resolved first)."""
    if check_classifier(name) == AUTO:
        raise CurateError(f"classifier {AUTO!r} depends on the labels: resolve it with resolve_classifier first")
    return CLASSIFIERS[name](seed)


@dataclass
class ProbeResult:
    """Out-of-sample probabilities (rows aligned with the input) and the fold of each row."""

    pred_probs: np.ndarray
    classes: np.ndarray
    folds: np.ndarray
    n_splits: int
    classifier: str = "logistic"
    #: With ``prune_distant``: per fold, how many of its training samples were left out
    #: (None: a class had too few patients in the fold's training set to cross-validate it).
    pruned: tuple[int | None, ...] = ()


#: Inner folds that find each outer fold's distant training labels (``prune_distant``).
PRUNE_SPLITS = 3
#: A training label is pruned only if the inner fit gives it less than this probability:
#: weak features put many right labels two grades from the suggestion, but rarely this far
#: below it (on the 587-knee real sample 2% of training knees are pruned, 20% without it;
#: on the demo the same knees as without it).
PRUNE_MAX_PROBABILITY = 0.05
#: At most this share of a class's training samples is pruned (those whose label the inner
#: fit finds least likely first): a class pruned away entirely would flag every one of its samples.
PRUNE_MAX_SHARE = 1 / 3


def cross_val_probabilities(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    n_splits: int = 5,
    classifier: str = AUTO,
    seed: int = 0,
    nonlinear_columns: Sequence[int] | None = None,
    prune_distant: bool = False,
) -> ProbeResult:
    """Predict every sample's class probabilities with a model that never saw its patient.

    Parameters
    ----------
    features : array (n, d)
    labels : array (n,)
    groups : array (n,)
        Patient ids: all samples of a patient fall in the same fold.
    n_splits : int
        Folds; lowered (with a note in the result) when the rarest class has fewer patients.
    classifier : str
        A name from :data:`CLASSIFIERS`, or ``"auto"``: the ordinal probe for integer
        labels with three or more classes (grades), logistic regression otherwise.
    seed : int
        Shuffles the folds and seeds the classifier; the same seed gives the same probabilities.
    nonlinear_columns : sequence of int, optional
        Columns that are direct measurements (the built-in knee signs): the ordinal
        probe combines them non-linearly; other classifiers use every column alike.
    prune_distant : bool
        Integer grades (three or more): before a fold's model is fitted, its training
        samples are cross-validated among themselves (:data:`PRUNE_SPLITS` patient-
        grouped folds), and those predicted two or more grades from their label, with
        a probability of their label below :data:`PRUNE_MAX_PROBABILITY`, are left out
        (at most :data:`PRUNE_MAX_SHARE` of a grade). A probe that learns KL 4
        from knees filed as KL 1 reads real KL 4 knees as milder; the held-out fold plays
        no part in choosing what is left out. Costs about three times the plain fit.
    """
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise CurateError(f"label noise needs at least two classes; found only {classes.tolist()}")
    patients_per_class = pd.Series(groups).groupby(y).nunique()
    fewest = int(patients_per_class.min())
    if fewest < 2:
        rare = classes[int(patients_per_class.idxmin())]
        raise CurateError(f"class {rare!r} has samples from only {fewest} patient; cross-validation needs at least 2")
    if prune_distant and not np.issubdtype(classes.dtype, np.integer):
        raise CurateError(f"prune_distant needs ordered classes (integer grades), not {classes.dtype} labels")
    prune = prune_distant and _are_grades(classes)  # of two classes none is two grades from the other
    n_splits = min(n_splits, fewest)
    classifier = resolve_classifier(classifier, classes)
    template = make_classifier(classifier, seed)
    if nonlinear_columns is not None and "nonlinear_columns" in template.get_params():
        template.set_params(nonlinear_columns=tuple(int(c) for c in nonlinear_columns))
    if "pca" in getattr(template, "named_steps", {}):  # small embeddings need no reduction below their size
        template.set_params(pca__n_components=min(64, features.shape[1], len(y) // 2))
    probs = np.zeros((len(y), len(classes)), dtype=np.float64)
    folds = np.full(len(y), -1, dtype=np.int64)
    pruned = []
    for fold, (train, test) in enumerate(_folds(features, y, groups, n_splits, seed)):
        if prune:
            inner = _out_of_fold(template, features[train], y[train], groups[train], len(classes), seed)
            if inner is None:
                pruned.append(None)
            else:
                distant = _distant_rows(inner, y[train], classes)
                train = train[~distant]
                pruned.append(int(distant.sum()))
        probs[test] = _fit_predict(template, features[train], y[train], features[test], len(classes))
        folds[test] = fold
    return ProbeResult(
        pred_probs=probs, classes=classes, folds=folds, n_splits=n_splits, classifier=classifier, pruned=tuple(pruned)
    )


def _folds(features: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int):
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(features, y, groups)


def _fit_predict(template, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int) -> np.ndarray:
    model = clone(template)
    if "pca" in getattr(model, "named_steps", {}):  # an inner training set can be smaller than the components
        model.set_params(pca__n_components=min(model.get_params()["pca__n_components"], len(x_train)))
    with warnings.catch_warnings():
        # an unconverged probe is still a usable probe; the metrics say how good it is
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    # a class absent from this fold's training data gets probability 0
    out = np.zeros((len(x_test), n_classes), dtype=np.float64)
    out[:, model.classes_ if hasattr(model, "classes_") else np.arange(n_classes)] = model.predict_proba(x_test)
    return out


def _out_of_fold(template, x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, seed: int) -> np.ndarray | None:
    """Patient-grouped out-of-fold probabilities within one training set, or None if it is too small to split."""
    n_splits = min(PRUNE_SPLITS, int(pd.Series(groups).groupby(y).nunique().min()))
    if n_splits < 2:
        return None
    probs = np.zeros((len(y), n_classes), dtype=np.float64)
    for train, test in _folds(x, y, groups, n_splits, seed):
        probs[test] = _fit_predict(template, x[train], y[train], x[test], n_classes)
    return probs


def _distant_rows(probs: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Rows whose label is unlikely and two or more grades from the suggestion, at most :data:`PRUNE_MAX_SHARE` of each grade."""
    distant = (np.abs(classes[probs.argmax(axis=1)] - classes[y]) >= 2) & (probs[np.arange(len(y)), y] < PRUNE_MAX_PROBABILITY)
    for k in np.unique(y[distant]):
        rows = np.flatnonzero(distant & (y == k))
        allowed = int(np.sum(y == k) * PRUNE_MAX_SHARE)
        if len(rows) > allowed:
            # prune the labels the inner fit finds least likely; ties broken by row order
            order = np.argsort(probs[rows, k], kind="stable")
            distant[rows[order[allowed:]]] = False
    return distant


def probe_metrics(labels: np.ndarray, pred_probs: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and quadratic weighted kappa of the probe's predictions."""
    y = np.searchsorted(classes, labels)
    predicted = pred_probs.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
    }
    if np.issubdtype(np.asarray(classes).dtype, np.integer):
        metrics["quadratic_kappa"] = float(cohen_kappa_score(y, predicted, weights="quadratic"))
    return metrics
