from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.errors import CurateError
from curate.labels.features import image_features, read_embeddings
from curate.labels.noise import find_label_noise
from curate.labels.probe import cross_val_probabilities


def _catalog(n_patients: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two knees per patient; features carry the grade plus noise."""
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for p in range(n_patients):
        for side in "LR":
            grade = int(rng.integers(0, 3))
            rows.append({"sample_id": f"{p}{side}", "label": grade, "patient_id": str(p), "path": f"{p}{side}.png"})
            feats.append(np.r_[grade * 2.0, rng.normal(0, 0.5, 7)])
    catalog = pd.DataFrame(rows)
    return catalog, pd.DataFrame(np.array(feats), index=pd.Index(catalog["sample_id"], name="sample_id"))


def test_both_knees_of_a_patient_are_always_predicted_by_the_same_fold():
    catalog, _ = _catalog()
    rng = np.random.default_rng(1)
    # the two knees of a patient are the same image: a leaky split would predict one from the other
    per_patient = rng.normal(0, 1, (60, 16))
    x = np.repeat(per_patient, 2, axis=0)
    result = cross_val_probabilities(x, catalog["label"].to_numpy(), catalog["patient_id"].to_numpy(), n_splits=5)
    folds = pd.Series(result.folds).groupby(catalog["patient_id"].to_numpy()).nunique()
    assert (folds == 1).all()
    # labels are random with respect to these features, so out-of-sample accuracy stays near chance
    accuracy = (result.pred_probs.argmax(1) == catalog["label"].to_numpy()).mean()
    assert accuracy < 0.6


def test_a_distant_flip_is_found_and_its_grade_distance_reported():
    catalog, features = _catalog(n_patients=80)
    catalog.loc[4, "label"] = 2 if catalog.loc[4, "label"] == 0 else 0  # a gross error
    result = find_label_noise(catalog, features, seed=0)
    row = result.table.set_index("sample_id").loc[catalog.loc[4, "sample_id"]]
    assert row["is_label_issue"] and row["grade_distance"] == 2
    assert result.metrics["accuracy"] > 0.9 and result.metrics["quadratic_kappa"] > 0.9
    assert result.table["fitted"].all()


def test_quality_flags_keep_samples_out_of_the_fit_with_a_reason():
    catalog, features = _catalog()
    quality = pd.DataFrame({"sample_id": catalog["sample_id"], "flag_unreadable": False, "flag_exact_duplicate": False})
    quality.loc[3, "flag_exact_duplicate"] = True
    result = find_label_noise(catalog, features, quality=quality)
    row = result.table.set_index("sample_id").loc[catalog.loc[3, "sample_id"]]
    assert not row["fitted"] and row["excluded_reason"] == "exact_duplicate" and pd.isna(row["label_quality"])


@pytest.mark.parametrize("flag", ["overexposed", "blurred", "wrong_body_part"])
def test_images_that_cannot_show_a_grade_are_not_given_one(flag):
    catalog, features = _catalog()
    quality = pd.DataFrame({"sample_id": catalog["sample_id"], f"flag_{flag}": False})
    quality.loc[5, f"flag_{flag}"] = True
    result = find_label_noise(catalog, features, quality=quality)
    row = result.table.set_index("sample_id").loc[catalog.loc[5, "sample_id"]]
    assert not row["fitted"] and row["excluded_reason"] == flag and not row["is_label_issue"]
    assert pd.isna(row["suggested_label"])


def test_samples_unlike_the_collection_stay_out_of_the_fit_and_keep_their_outlier_score():
    catalog, features = _catalog(n_patients=80)
    strangers = [7, 30]  # another body part filed with the knees: far from every knee in feature space
    features.iloc[strangers] = [[40.0, -35.0, 30.0, 25.0, -30.0, 35.0, 20.0, -25.0], [-45.0] * 8]
    result = find_label_noise(catalog, features, seed=0)
    table = result.table.set_index("sample_id")
    out = table.loc[catalog.loc[strangers, "sample_id"]]
    assert not out["fitted"].any() and out["excluded_reason"].str.startswith("outlier").all()
    assert not out["is_label_issue"].any() and out["suggested_label"].isna().all()
    # they lie several times farther from their neighbours than any knee, and nothing else is left out
    assert out["neighbour_distance"].min() > 2.5 > table["neighbour_distance"].drop(out.index).max()
    assert table["fitted"].sum() == len(catalog) - len(strangers)
    kept = find_label_noise(catalog, features, seed=0, outlier_distance=None).table
    assert kept["fitted"].all()


def test_embeddings_join_by_id_in_any_order_and_name_missing_samples(tmp_path):
    catalog, features = _catalog(n_patients=5)
    features.columns = [f"e{k}" for k in range(features.shape[1])]
    shuffled = features.sample(frac=1.0, random_state=3).reset_index()
    shuffled.to_parquet(tmp_path / "emb.parquet")
    loaded = read_embeddings(tmp_path / "emb.parquet", catalog)
    assert list(loaded.index) == list(catalog["sample_id"])
    np.testing.assert_allclose(loaded.to_numpy(), features.loc[catalog["sample_id"]].to_numpy())
    shuffled.iloc[2:].to_parquet(tmp_path / "partial.parquet")
    missing = sorted(set(catalog["sample_id"]) - set(shuffled.iloc[2:]["sample_id"]))
    with pytest.raises(CurateError, match="no embedding for 2 sample"):
        read_embeddings(tmp_path / "partial.parquet", catalog)
    with pytest.raises(CurateError, match=missing[0]):
        read_embeddings(tmp_path / "partial.parquet", catalog)


def test_image_features_have_a_fixed_length_whatever_the_resolution():
    small = image_features(np.random.default_rng(0).random((120, 100), dtype=np.float32))
    large = image_features(np.random.default_rng(0).random((900, 1000), dtype=np.float32))
    assert small.shape == large.shape and np.isfinite(small).all()


def test_a_lone_flip_in_a_rare_cell_is_still_flagged_on_an_ordinal_scale():
    # one knee of grade 4 filed under grade 1: the only member of its (given, true) cell,
    # which confident learning alone tends to leave unpruned
    rng = np.random.default_rng(3)
    rows, feats = [], []
    for p in range(300):
        grade = int(rng.integers(0, 5))
        rows.append({"sample_id": f"s{p}", "label": grade, "patient_id": f"p{p}", "path": f"s{p}.png"})
        feats.append(np.r_[grade + rng.normal(0, 0.2), rng.normal(0, 1, 3)])
    catalog = pd.DataFrame(rows)
    features = pd.DataFrame(np.array(feats), index=pd.Index(catalog["sample_id"], name="sample_id"))
    flipped = catalog.index[catalog["label"] == 4][0]
    catalog.loc[flipped, "label"] = 1
    result = find_label_noise(catalog, features)
    row = result.table.set_index("sample_id").loc[catalog.loc[flipped, "sample_id"]]
    assert row["is_label_issue"]
    assert row["suggested_label"] == 4 and row["grade_distance"] == 3
    assert result.metrics["classifier"] == "ordinal"


def test_an_unknown_classifier_is_named_with_the_choices():
    catalog, features = _catalog()
    with pytest.raises(CurateError, match=r"unknown classifier 'svm'; choose one of auto, logistic, ordinal"):
        find_label_noise(catalog, features, classifier="svm")


def test_neighbour_distance_stays_finite_when_most_samples_repeat():
    from curate.labels.noise import neighbour_distance

    x = np.vstack([np.zeros((30, 4)), np.random.default_rng(0).normal(0, 1, (10, 4))])
    distance = neighbour_distance(x)
    assert np.isfinite(distance).all() and (distance[:30] == 0).all() and (distance[30:] > 0).all()


def test_non_finite_features_are_refused_with_the_samples_named():
    catalog, features = _catalog()
    features.iloc[4, 2] = np.nan
    with pytest.raises(CurateError, match=f"non-finite features.*{catalog.loc[4, 'sample_id']}"):
        find_label_noise(catalog, features)
