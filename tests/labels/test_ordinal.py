import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from curate.labels.ordinal import OrdinalRidgeClassifier, ridge_leave_one_out


def test_leave_one_out_predictions_equal_refitting_without_each_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=40)
    alpha, coef, loo, intercept = ridge_leave_one_out(X, y, [0.5, 3.0, 50.0])
    refits = [Ridge(alpha=alpha).fit(np.delete(X, i, 0), np.delete(y, i)).predict(X[i : i + 1])[0] for i in range(40)]
    np.testing.assert_allclose(loo, refits, atol=1e-10)
    full = Ridge(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(coef, full.coef_, atol=1e-10)
    assert abs(intercept - full.intercept_) < 1e-10


def _ordinal_data(n, rng):
    grade = rng.integers(0, 5, n)
    severity = grade + rng.normal(0, 0.35, n)
    # many weak, noisy views of one latent severity: the situation of image features
    X = severity[:, None] * rng.uniform(0.2, 1.0, 40) + rng.normal(0, 1.0, (n, 40))
    return X, grade


def test_ordinal_probe_keeps_its_errors_between_neighbouring_grades():
    rng = np.random.default_rng(1)
    X, y = _ordinal_data(3000, rng)
    Xt, yt = _ordinal_data(3000, rng)
    ordinal = OrdinalRidgeClassifier().fit(X, y).predict(Xt)
    multinomial = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y).predict(Xt)
    far_ordinal = np.mean(np.abs(ordinal - yt) >= 2)
    far_multinomial = np.mean(np.abs(multinomial - yt) >= 2)
    assert far_ordinal < far_multinomial
    probs = OrdinalRidgeClassifier().fit(X, y).predict_proba(Xt)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_ordinal_probe_keeps_the_label_values_and_a_missing_middle_class():
    rng = np.random.default_rng(2)
    X, y = _ordinal_data(600, rng)
    labels = np.array([10, 20, 30, 40, 50])[y]
    model = OrdinalRidgeClassifier().fit(X, labels)
    assert set(model.predict(X)) <= {10, 20, 30, 40, 50}
    assert model.predict_proba(X).shape == (600, 5)


def test_measured_columns_with_a_threshold_relation_are_used_non_linearly():
    rng = np.random.default_rng(4)
    grade = rng.integers(0, 5, 3000)
    # a sign that saturates: it tells grades 0-2 apart but says nothing above
    sign = np.minimum(grade, 2) + rng.normal(0, 0.15, 3000)
    other = grade[:, None] * 0.3 + rng.normal(0, 1.0, (3000, 10))
    X = np.column_stack([other, np.exp(sign)])
    train, test = slice(0, 2000), slice(2000, None)
    plain = OrdinalRidgeClassifier().fit(X[train], grade[train]).predict(X[test])
    stacked = OrdinalRidgeClassifier(nonlinear_columns=(10,)).fit(X[train], grade[train]).predict(X[test])
    assert np.mean(stacked == grade[test]) > np.mean(plain == grade[test]) + 0.05
