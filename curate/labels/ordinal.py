"""An ordinal probe: regress the grade, then read class probabilities off that score.

A multinomial classifier treats KL 0 and KL 4 as no further apart than KL 0 and
KL 1, so its errors land anywhere; on the demo it suggests a grade two or more away
from the given one for about 3% of clean knees, which drowns the real distant flips.
Regressing the grade's rank first keeps errors between neighbours; a small
logistic link on the one-dimensional score turns it into probabilities that
cleanlab can read.

When some columns are direct measurements (the built-in knee signs), a gradient-
boosted regressor combines them non-linearly with the ridge score: joint-space
width and spur size relate to the grade in thresholds, not in straight lines. On
the demo this lifts balanced accuracy from 0.67 to 0.74, and on the real knee
sample the quadratic kappa from 0.67 to 0.70.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_predict

__all__ = ["PROBE_VERSION", "OrdinalRidgeClassifier", "ridge_leave_one_out"]

#: Bump when the probe's results change: recipes do not reuse labels of another version.
PROBE_VERSION = 6  # 5: samples unlike the collection stay out of the fit; 6: each fold prunes its distant training labels

# Below this many training rows the boosted stage is skipped: its leaves need 40 rows
# each, and on a few dozen samples the ridge score alone generalizes better (on the
# 587-knee sample, folds of ~470 rows, boosting still lifts kappa from 0.67 to 0.70).
MIN_ROWS_FOR_BOOSTING = 300


def ridge_leave_one_out(X: np.ndarray, y: np.ndarray, alphas) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Ridge regression with the penalty chosen by exact leave-one-out error.

    One eigendecomposition of the (d x d) Gram matrix gives every penalty's fit and
    leave-one-out predictions in O(n d) each, so the link below is fitted on honest
    out-of-sample scores without refitting (100,000 x 256 takes about a second).

    Returns
    -------
    alpha, coef, intercept_free_loo_predictions, intercept
    """
    x_mean, y_mean = X.mean(axis=0), y.mean()
    xc, yc = X - x_mean, y - y_mean
    eigenvalues, vectors = np.linalg.eigh(xc.T @ xc)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    z = xc @ vectors
    z2 = z * z
    zy = z.T @ yc
    best = None
    n = len(y)
    for alpha in alphas:
        shrink = 1.0 / (eigenvalues + alpha)
        fitted = z @ (zy * shrink)
        leverage = z2 @ shrink + 1.0 / n  # the intercept's share of each row's leverage
        residual = (yc - fitted) / np.maximum(1.0 - leverage, 1e-9)
        error = float(residual @ residual)
        if best is None or error < best[0]:
            best = (error, float(alpha), vectors @ (zy * shrink), y - residual)
    _, alpha, coef, loo = best
    return alpha, coef, loo, float(y_mean - x_mean @ coef)


class OrdinalRidgeClassifier(ClassifierMixin, BaseEstimator):
    """Ridge regression on the class rank, with a logistic link from score to classes.

    Parameters
    ----------
    alphas : tuple of float
        Ridge penalties tried; the one with the least exact leave-one-out error is kept.
    nonlinear_columns : sequence of int, optional
        Columns (measured signs) that a gradient-boosted regressor combines with the
        ridge score, given at least :data:`MIN_ROWS_FOR_BOOSTING` training rows;
        None or empty: the ridge score alone.
    random_state : int
        Seeds the boosted regressor and its inner folds.

    Notes
    -----
    The link is fitted on the regressor's leave-one-out scores: scores of the
    training rows themselves would be overconfident.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 5, 400)
    >>> X = y[:, None] + rng.normal(0, 0.4, (400, 3))
    >>> model = OrdinalRidgeClassifier().fit(X, y)
    >>> model.predict_proba(X).shape
    (400, 5)
    >>> float((model.predict(X) == y).mean()) > 0.8
    True
    """

    def __init__(
        self,
        alphas: tuple[float, ...] = tuple(np.logspace(-1, 4, 11)),
        nonlinear_columns: tuple[int, ...] | None = None,
        random_state: int = 0,
    ):
        self.alphas = alphas
        self.nonlinear_columns = nonlinear_columns
        self.random_state = random_state

    def _booster(self) -> HistGradientBoostingRegressor:
        # shallow, strongly regularized trees: a few dozen signs and thousands of rows
        return HistGradientBoostingRegressor(
            max_iter=200,
            learning_rate=0.06,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            random_state=self.random_state,
        )

    def _stacked(self, X: np.ndarray, ridge_score: np.ndarray) -> np.ndarray:
        return np.column_stack([X[:, list(self.nonlinear_columns)], ridge_score])

    @staticmethod
    def _link_features(score: np.ndarray) -> np.ndarray:
        # a quadratic term lets the middle grades be narrower or wider than the ends
        return np.column_stack([score, score**2])

    def fit(self, X, y):
        """Fit the regressor on the class ranks and the link on out-of-sample scores."""
        self.classes_, rank = np.unique(y, return_inverse=True)
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        self.alpha_, self.coef_, score, self.intercept_ = ridge_leave_one_out(
            (X - self.mean_) / self.scale_, rank.astype(np.float64), self.alphas
        )
        self.booster_ = None
        if self.nonlinear_columns and len(rank) >= MIN_ROWS_FOR_BOOSTING:
            stacked = self._stacked(X, score)
            folds = KFold(3, shuffle=True, random_state=self.random_state)
            # the link needs out-of-sample scores here too
            score = cross_val_predict(self._booster(), stacked, rank.astype(np.float64), cv=folds)
            self.booster_ = self._booster().fit(stacked, rank.astype(np.float64))
        self.link_ = LogisticRegression(C=10.0, max_iter=1000).fit(self._link_features(score), rank)
        return self

    def decision_score(self, X) -> np.ndarray:
        """The regressed rank (0 = first class) of each row."""
        X = np.asarray(X, dtype=np.float64)
        score = ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return score if self.booster_ is None else self.booster_.predict(self._stacked(X, score))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        probs = np.zeros((len(X), len(self.classes_)))
        probs[:, self.link_.classes_] = self.link_.predict_proba(self._link_features(self.decision_score(X)))
        return probs

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
