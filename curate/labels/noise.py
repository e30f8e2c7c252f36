"""Label noise: which given labels are probably wrong, and what they probably are.

cleanlab's confident learning reads out-of-sample probabilities (from patient-
grouped cross-validation, built-in features, the user's embeddings, or the user's
own model) and flags samples whose given label disagrees with what the data
supports. Kellgren-Lawrence grades are ordinal and expert readers disagree on
adjacent grades, so every finding carries the grade distance between the given and
the suggested label: acting only on distance >= 2 is the usual choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.labels.probe import cross_val_probabilities, probe_metrics

__all__ = [
    "LabelNoiseResult",
    "OUTLIER_DISTANCE",
    "fit_exclusions",
    "find_label_noise",
    "neighbour_distance",
    "read_pred_probs",
]

#: Quality flags that keep a sample out of the probe's training and scoring: files that
#: cannot be read or repeat another, and images whose pixels cannot show a grade (crushed
#: exposure, blur that wipes out spurs, not the expected modality or body part). The probe
#: would read a grade off their artefacts; the scan already reports them.
FIT_EXCLUDING_FLAGS = (
    "unreadable",
    "exact_duplicate",
    "near_duplicate",
    "blank",
    "dark",
    "overexposed",
    "blurred",
    "wrong_modality",
    "wrong_body_part",
)


#: A sample whose nearest neighbours (in standardized feature space) are this many times
#: farther than the median sample's is unlike the rest of the collection: another body part
#: filed with the knees, a test object. A probe trained on the others cannot judge its grade,
#: so it stays out of the fit. On the demo the hand and chest radiographs filed as knees lie
#: 3.0-3.5 times the median distance away, the most isolated knee 1.7 times.
OUTLIER_DISTANCE = 2.5
_NEIGHBOURS = 10
_OUTLIER_REASON = "outlier (unlike the other images)"


@dataclass
class LabelNoiseResult:
    """The labels table (one row per catalog sample) and the probe's figures."""

    table: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def fit_exclusions(catalog: pd.DataFrame, quality: pd.DataFrame | None) -> pd.Series:
    """Why each sample stays out of the fit (empty text when it takes part)."""
    reasons = pd.Series("", index=catalog.index, dtype=object)
    reasons[catalog["label"].isna()] = "no label"
    if quality is not None:
        q = quality.set_index("sample_id").reindex(catalog["sample_id"].astype(str))
        for flag in FIT_EXCLUDING_FLAGS:
            column = f"flag_{flag}"
            if column in q.columns:
                hit = q[column].fillna(False).astype(bool).to_numpy()
                reasons[hit & (reasons == "").to_numpy()] = flag
    return reasons


def read_pred_probs(path, catalog: pd.DataFrame, classes: list) -> pd.DataFrame:
    """A user's predicted probabilities: ``sample_id`` (or ``path``) and one column per class."""
    from curate.tables import read_table

    table = read_table(path)
    key = "sample_id" if "sample_id" in table.columns else "path" if "path" in table.columns else None
    if key is None:
        raise CurateError(f"{path}: predicted probabilities need a 'sample_id' or 'path' column")
    names = [str(c) for c in classes]
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise CurateError(f"{path}: no probability column for class(es) {', '.join(missing)}; it has {', '.join(table.columns)}")
    ids = table[key].astype(str)
    if key == "path":
        ids = ids.map(dict(zip(catalog["path"].astype(str), catalog["sample_id"].astype(str))))
    probs = table[names].apply(pd.to_numeric, errors="coerce")
    probs.index = pd.Index(ids, name="sample_id")
    if probs.isna().any().any():
        raise CurateError(f"{path}: probabilities must be numbers")
    return probs


def find_label_noise(
    catalog: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    quality: pd.DataFrame | None = None,
    pred_probs: pd.DataFrame | None = None,
    n_splits: int = 5,
    classifier: str = "auto",
    seed: int = 0,
    nonlinear_columns: Sequence[str] | None = None,
    outlier_distance: float | None = OUTLIER_DISTANCE,
    prune_distant: bool = True,
) -> LabelNoiseResult:
    """Flag probably wrong labels with cleanlab on out-of-sample probabilities.

    Parameters
    ----------
    catalog : DataFrame
        ``sample_id``, ``label``, ``patient_id``.
    features : DataFrame, optional
        Indexed by ``sample_id`` (built-in features or the user's embeddings).
    quality : DataFrame, optional
        The scan's table: samples with a flag in :data:`FIT_EXCLUDING_FLAGS`
        (unreadable, blank, redundant duplicates, crushed exposure, blur, wrong
        modality or body part) are left out of the fit (their rows say why).
    pred_probs : DataFrame, optional
        The user's own out-of-sample probabilities (indexed by ``sample_id``, one
        column per class); used as they are instead of fitting the probe.
    n_splits, classifier, seed
        The patient-grouped cross-validation (see :func:`cross_val_probabilities`).
    nonlinear_columns : sequence of str, optional
        Feature columns that are direct measurements, which the ordinal probe
        combines non-linearly. Default: the built-in features' measured knee signs
        (:data:`~curate.labels.features.SIGN_COLUMNS`) when ``features`` has them;
        ``()`` for none.
    outlier_distance : float or None
        With features (not with ``pred_probs``): samples whose
        :func:`neighbour_distance` exceeds this are left out of the fit (their
        reason starts with ``outlier``), see :data:`OUTLIER_DISTANCE`. ``None``
        keeps them and skips the measure.
    prune_distant : bool
        Integer grades (three or more) with a fitted probe: each fold's model is fitted
        without the training samples that its own inner cross-validation finds two or
        more grades away (see :func:`cross_val_probabilities`; about three times the
        fitting time). On five demos it finds 188 of 200 distant flips instead of 184;
        ``metrics["pruned_per_fold"]`` says how many samples each fold left out.

    Returns
    -------
    LabelNoiseResult
        ``table`` columns: ``sample_id``, ``given_label``, ``suggested_label``,
        ``label_quality`` (cleanlab self-confidence; low = suspicious),
        ``is_label_issue`` (cleanlab's confident learning; for integer grades also
        every suggestion two or more grades away), ``grade_distance`` (integer
        grades), ``margin``,
        ``outlier_score`` (cleanlab's; low = unusual image), ``neighbour_distance``,
        ``fold``, ``fitted``,
        ``excluded_reason`` and ``prob_<class>``.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    catalog = catalog.reset_index(drop=True)
    ids = catalog["sample_id"].astype(str)
    reasons = fit_exclusions(catalog, quality)
    if pred_probs is None:
        if features is None:
            raise CurateError("label noise needs features, embeddings or predicted probabilities")
        missing = ~ids.isin(features.index)
        reasons[missing & (reasons == "")] = "no features (undecodable)"
    else:
        missing = ~ids.isin(pred_probs.index)
        reasons[missing & (reasons == "")] = "no predicted probabilities"
    isolation = pd.Series(np.nan, index=catalog.index)
    if pred_probs is None and outlier_distance is not None:
        candidates = np.flatnonzero((reasons == "").to_numpy())
        if len(candidates) > _NEIGHBOURS:
            x_all = features.loc[ids.iloc[candidates]].to_numpy(dtype=np.float64)
            bad = ~np.isfinite(x_all).all(axis=1)
            if bad.any():
                names = ", ".join(ids.iloc[candidates[bad]].head(5))
                raise CurateError(f"{int(bad.sum())} samples have non-finite features (NaN or inf), e.g. {names}")
            isolation.iloc[candidates] = neighbour_distance(x_all)
            reasons[(isolation > outlier_distance).to_numpy()] = _OUTLIER_REASON
    fit = (reasons == "").to_numpy()
    if fit.sum() < 10:
        raise CurateError(f"only {int(fit.sum())} samples are usable for the label-noise probe; need at least 10")

    labels = catalog.loc[fit, "label"].to_numpy()
    groups = catalog.loc[fit, "patient_id"].astype("string").fillna(catalog.loc[fit, "sample_id"]).to_numpy()
    if pred_probs is None:
        x = features.loc[ids[fit]].to_numpy(dtype=np.float32)
        if nonlinear_columns is None:
            from curate.labels.features import SIGN_COLUMNS

            nonlinear_columns = [c for c in SIGN_COLUMNS if c in features.columns]
        measured = None
        if nonlinear_columns:
            unknown = [c for c in nonlinear_columns if c not in features.columns]
            if unknown:
                raise CurateError(f"nonlinear_columns not among the feature columns: {', '.join(map(str, unknown[:5]))}")
            measured = [features.columns.get_loc(c) for c in nonlinear_columns]
        probe = cross_val_probabilities(
            x,
            labels,
            groups,
            n_splits=n_splits,
            classifier=classifier,
            seed=seed,
            nonlinear_columns=measured,
            prune_distant=prune_distant and np.issubdtype(np.asarray(labels).dtype, np.integer),
        )
        probs, classes, folds = probe.pred_probs, probe.classes, probe.folds
    else:
        classes = np.unique(labels)
        probs = pred_probs.loc[ids[fit], [str(c) for c in classes]].to_numpy(dtype=np.float64)
        probs = probs / probs.sum(axis=1, keepdims=True)
        folds = np.full(len(probs), -1)
        x = features.loc[ids[fit]].to_numpy(dtype=np.float32) if features is not None else None

    y = np.searchsorted(classes, labels)
    issues = find_label_issues(labels=y, pred_probs=probs)
    scores = get_label_quality_scores(labels=y, pred_probs=probs)
    suggested = probs.argmax(axis=1)
    ordinal = np.issubdtype(np.asarray(classes).dtype, np.integer)
    if ordinal:
        # Confident learning counts a (given, true) cell only where a sample clears the true
        # class's average confidence, so the few knees in a rare cell (a KL 4 filed as KL 1)
        # are often not counted and never pruned. A prediction two grades away is itself the
        # finding on an ordinal scale.
        issues = issues | (np.abs(classes[suggested] - labels) >= 2)
    outlier = _outlier_scores(x, probs, y)

    table = pd.DataFrame({"sample_id": ids, "given_label": catalog["label"]})
    table["fitted"] = fit
    table["excluded_reason"] = reasons.replace("", None).astype("string")
    fitted_rows = np.flatnonzero(fit)
    label_dtype = "Int64" if pd.api.types.is_integer_dtype(catalog["label"]) else "string"
    table["suggested_label"] = pd.Series(pd.NA, index=table.index, dtype=label_dtype)
    table.loc[fitted_rows, "suggested_label"] = classes[suggested]
    table["label_quality"] = np.nan
    table.loc[fitted_rows, "label_quality"] = scores
    table["is_label_issue"] = False
    table.loc[fitted_rows, "is_label_issue"] = issues
    table["margin"] = np.nan
    table.loc[fitted_rows, "margin"] = probs[np.arange(len(y)), suggested] - probs[np.arange(len(y)), y]
    table["grade_distance"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    if ordinal:
        table.loc[fitted_rows, "grade_distance"] = np.abs(classes[suggested] - labels).astype(np.int64)
    table["outlier_score"] = np.nan
    if outlier is not None:
        table.loc[fitted_rows, "outlier_score"] = outlier
    table["neighbour_distance"] = isolation.to_numpy()
    table["fold"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    table.loc[fitted_rows, "fold"] = folds
    for k, c in enumerate(classes):
        table[f"prob_{c}"] = np.nan
        table.loc[fitted_rows, f"prob_{c}"] = probs[:, k]

    metrics = probe_metrics(labels, probs, classes)
    metrics["classifier"] = probe.classifier if pred_probs is None else None  # the user's own model
    metrics.update(_issue_counts(table, ordinal))
    metrics["fitted"] = int(fit.sum())
    metrics["pruned_per_fold"] = list(probe.pruned) if pred_probs is None else []
    metrics["excluded"] = {str(k): int(v) for k, v in reasons[reasons != ""].value_counts().items()}
    return LabelNoiseResult(table=table, metrics=metrics)


def neighbour_distance(x: np.ndarray, k: int = _NEIGHBOURS) -> np.ndarray:
    """Mean distance of each row to its ``k`` nearest other rows, in units of the median row's.

    Columns are standardized first, so no one measure's units dominate. About 1
    for a typical sample; several times more for one unlike the rest.
    """
    from sklearn.neighbors import NearestNeighbors

    spread = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z)
    mean = distances[:, 1:].mean(axis=1)  # the first neighbour is the row itself
    unit = float(np.median(mean)) or float(mean.mean())  # most rows repeated: the median would be 0
    return mean / unit if unit > 0 else np.zeros_like(mean)


def _outlier_scores(x: np.ndarray | None, probs: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """cleanlab's out-of-distribution score: from features when there are any, else from probabilities."""
    from cleanlab.outlier import OutOfDistribution

    ood = OutOfDistribution()
    if x is not None:
        k = min(10, len(x) - 1)
        ood = OutOfDistribution(params={"k": k})
        return ood.fit_score(features=x, verbose=False)
    return ood.fit_score(pred_probs=probs, labels=y, verbose=False)


def _issue_counts(table: pd.DataFrame, ordinal: bool) -> dict:
    fitted = table[table["fitted"]]
    issues = fitted[fitted["is_label_issue"]]
    counts = {
        "issues": int(len(issues)),
        "issues_per_given_label": {str(k): int(v) for k, v in issues["given_label"].value_counts().sort_index().items()},
    }
    if ordinal:
        far = issues[issues["grade_distance"] >= 2]
        counts["issues_distance_2_or_more"] = int(len(far))
        counts["issues_adjacent"] = int((issues["grade_distance"] == 1).sum())
    return counts
