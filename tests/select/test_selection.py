from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.errors import CurateError
from curate.select import (
    RESULT_COLUMNS,
    BalancedSampler,
    FullSampler,
    PerClassSampler,
    ShortClassError,
    SplitError,
    StratifiedSampler,
    check_split,
    make_split,
    select,
)
from curate.select.samplers import balanced_counts
from tests.select._data import features_for, random_catalog

GRADES = ["0", "1", "2", "3", "4"]


def _per_class(selection, split="train", weighted=False):
    rows = selection[(selection["split"] == split) & selection["selected"]]
    column = rows["repeat"] if weighted else pd.Series(1, index=rows.index)
    return column.groupby(rows["label"].astype(str)).sum().reindex(GRADES, fill_value=0).to_dict()


def _evaluation(selection):
    rows = selection[selection["split"].isin(["val", "test"])]
    return rows[["sample_id", "split", "selected", "weight", "repeat", "exclusion_reason"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def full(demo_tables):
    catalog, quality, labels = demo_tables
    return select(catalog, quality=quality, labels=labels, sampler="full")


@pytest.fixture(scope="module")
def balanced(demo_tables):
    catalog, quality, labels = demo_tables
    return select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=250), seed=0)


def test_balanced_takes_the_same_number_per_grade_from_train(balanced):
    assert _per_class(balanced) == dict.fromkeys(GRADES, 50)
    assert list(balanced.columns) == list(RESULT_COLUMNS)
    assert not (balanced["selected"] & balanced["exclusion_reason"].notna()).any()
    assert (balanced.loc[balanced["selected"], "repeat"] == 1).all()


def test_balanced_and_full_share_validation_and_test(balanced, full):
    pd.testing.assert_frame_equal(_evaluation(balanced), _evaluation(full))
    evaluation = _evaluation(full)
    assert (evaluation["selected"] == evaluation["exclusion_reason"].isna()).all()


def test_no_patient_crosses_splits(balanced):
    assert balanced.groupby("patient_id")["split"].nunique().max() == 1
    assert check_split(balanced).ok


def test_full_selects_every_kept_train_sample_with_class_weights(full):
    train = full[full["split"] == "train"]
    assert (train["selected"] == train["exclusion_reason"].isna()).all()
    weights = full.attrs["selection"]["class_weights"]["train"]
    kept = train[train["selected"]]
    per_class = kept.groupby(kept["label"].astype(str))["weight"].unique()
    assert all(len(w) == 1 for w in per_class)  # one weight per class
    assert {k: v[0] for k, v in per_class.items()} == pytest.approx(weights["inverse"])
    assert kept["weight"].mean() == pytest.approx(1.0)
    assert weights["inverse"]["4"] > weights["effective"]["4"] > weights["effective"]["0"]


def test_excluded_samples_keep_readable_reasons(full):
    reasons = full["exclusion_reason"].dropna()
    assert {"unreadable", "exact_duplicate", "near_duplicate", "blank", "wrong_modality", "wrong_body_part"} <= {
        r.split(" (")[0] for text in reasons for r in text.split("; ")
    }
    issues = reasons[reasons.str.startswith("label_issue")]
    assert len(issues) and issues.str.fullmatch(r"label_issue \(given \d, suggested \d\)").all()
    assert not (full["selected"] & full["exclusion_reason"].notna()).any()


def test_same_seed_same_table_other_seed_other_subset(demo_tables, balanced):
    catalog, quality, labels = demo_tables
    again = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=250), seed=0)
    pd.testing.assert_frame_equal(again, balanced)
    assert again.attrs == balanced.attrs
    other = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=250), seed=1)
    assert _per_class(other) == dict.fromkeys(GRADES, 50)
    assert set(other.loc[other["selected"] & (other["split"] == "train"), "sample_id"]) != set(
        balanced.loc[balanced["selected"] & (balanced["split"] == "train"), "sample_id"]
    )
    pd.testing.assert_frame_equal(_evaluation(other), _evaluation(balanced))


def test_result_does_not_depend_on_catalog_row_order(demo_tables, balanced):
    catalog, quality, labels = demo_tables
    shuffled = catalog.sample(frac=1.0, random_state=3)
    again = select(shuffled, quality=quality, labels=labels, sampler=BalancedSampler(n=250), seed=0)
    pd.testing.assert_frame_equal(
        again.sort_values("sample_id").reset_index(drop=True), balanced.sort_values("sample_id").reset_index(drop=True)
    )


def test_a_short_class_fails_listing_every_grade(demo_tables):
    catalog, quality, labels = demo_tables
    with pytest.raises(ShortClassError) as info:
        select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=500))
    message = str(info.value)
    assert "balanced n=500 (100 per class) asks more than train holds for class(es) 4 (asked 4: 100)" in message
    assert "available in train per class: 0: 678, 1: 311, 2: 444, 3: 224, 4: 50" in message
    assert info.value.available == {"0": 678, "1": 311, "2": 444, "3": 224, "4": 50}


def test_short_available_takes_all_and_oversample_repeats(demo_tables):
    catalog, quality, labels = demo_tables
    available = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=500, short="available"))
    assert _per_class(available) == {"0": 100, "1": 100, "2": 100, "3": 100, "4": 50}
    over = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=500, short="oversample"))
    assert _per_class(over, weighted=True) == dict.fromkeys(GRADES, 100)
    grade4 = over[(over["split"] == "train") & (over["label"] == 4) & over["selected"]]
    assert len(grade4) == 50 and (grade4["repeat"] == 2).all()


def test_remainder_of_n_goes_to_the_best_supplied_classes(demo_tables):
    catalog, quality, labels = demo_tables
    selection = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=203))
    # 203 = 5 x 40 + 3: the extra 3 go to the grades with the most available (0, 2, 1)
    assert _per_class(selection) == {"0": 41, "1": 41, "2": 41, "3": 40, "4": 40}


def test_per_class_and_stratified(demo_tables):
    catalog, quality, labels = demo_tables
    per_class = select(catalog, quality=quality, labels=labels, sampler=PerClassSampler(counts={0: 30, 4: 10}))
    assert _per_class(per_class) == {"0": 30, "1": 0, "2": 0, "3": 0, "4": 10}
    stratified = select(catalog, quality=quality, labels=labels, sampler=StratifiedSampler(n=200))
    counts = _per_class(stratified)
    assert sum(counts.values()) == 200 and counts["0"] > counts["2"] > counts["1"] > counts["3"] > counts["4"] > 0
    with pytest.raises(CurateError, match="more than the 1707 samples available in train"):
        select(catalog, quality=quality, labels=labels, sampler=StratifiedSampler(n=5000))


def test_sample_splits_can_include_val(demo_tables):
    catalog, quality, labels = demo_tables
    sampler = PerClassSampler(counts={0: 5, 1: 5}, short="available")
    selection = select(catalog, quality=quality, labels=labels, sampler=sampler, sample_splits=("train", "val"))
    assert _per_class(selection, "val") == {"0": 5, "1": 5, "2": 0, "3": 0, "4": 0}
    assert _per_class(selection, "test")["2"] > 100


def test_new_split_is_patient_grouped_and_keeps_its_fractions(demo_tables):
    catalog, quality, labels = demo_tables
    splits = make_split(catalog, fractions="0.7,0.1,0.2", seed=4)
    selection = select(catalog, split=splits, quality=quality, labels=labels, sampler=BalancedSampler(n=100))
    assert selection["split"].value_counts(normalize=True).round(2).to_dict() == {"train": 0.7, "test": 0.2, "val": 0.1}
    fractions = {"train": 0.7, "val": 0.1, "test": 0.2}
    assert selection.attrs["selection"]["split"] == {"method": "new", "seed": 4, "fractions": fractions}
    assert selection.attrs["selection"]["split_check"]["violations"] == []


def test_official_split_leak_excludes_the_train_side():
    rng = np.random.default_rng(0)
    catalog = random_catalog(rng, patients=30, official=True)
    catalog.loc[0, "official_split"], catalog.loc[1, "official_split"] = "train", "test"
    catalog.loc[1, "patient_id"] = catalog.loc[0, "patient_id"]
    selection = select(catalog, sampler="full")
    patient = catalog.loc[0, "patient_id"]
    assert selection.loc[0, "exclusion_reason"] == f"patient_in_other_split (patient {patient} is also in test)"
    assert not selection.loc[0, "selected"] and selection.loc[1, "selected"]


def test_official_split_is_required_when_asked():
    catalog = random_catalog(np.random.default_rng(0), patients=10)
    with pytest.raises(CurateError, match="no official split.*--split new"):
        select(catalog)


def test_a_split_breaking_the_patient_rule_is_refused():
    catalog = random_catalog(np.random.default_rng(1), patients=40)
    splits = make_split(catalog, seed=0)
    patient = splits["patient_id"].value_counts().index[0]  # a patient with several samples
    rows = splits.index[splits["patient_id"] == patient]
    splits.loc[rows[0], "split"] = "test" if splits.loc[rows[1], "split"] != "test" else "train"
    with pytest.raises(SplitError, match=f"patient {patient}"):
        select(catalog, split=splits)


def test_bad_parameters_are_refused_by_name():
    catalog = random_catalog(np.random.default_rng(2), patients=20, official=True)
    with pytest.raises(CurateError, match="seed"):
        select(catalog, seed=-1)
    with pytest.raises(CurateError, match="unknown split.*holdout"):
        select(catalog, sample_splits=("holdout",))
    with pytest.raises(CurateError, match="strategy 'quality' needs a quality table or a labels table"):
        select(catalog, sampler=BalancedSampler(n=10, strategy="quality"))
    with pytest.raises(CurateError, match="needs features"):
        select(catalog, sampler=BalancedSampler(n=10, strategy="diverse"))
    with pytest.raises(CurateError, match="unknown sampler 'smote'"):
        select(catalog, sampler="smote")


def test_full_effective_weights_and_diverse_strategy_run_on_features():
    catalog = random_catalog(np.random.default_rng(3), patients=80, official=True)
    full = select(catalog, sampler=FullSampler(weighting="effective", beta=0.99))
    recorded = full.attrs["selection"]["class_weights"]["train"]["effective"]
    train = full[full["selected"] & (full["split"] == "train")]
    assert train.groupby(train["label"].astype(str))["weight"].first().to_dict() == pytest.approx(recorded)
    sampler = BalancedSampler(n=10, strategy="diverse", short="available")
    diverse = select(catalog, features=features_for(catalog), sampler=sampler)
    assert _per_class(diverse) == dict.fromkeys(GRADES, 2)


def test_samples_without_label_or_official_split_are_excluded_with_a_reason():
    catalog = random_catalog(np.random.default_rng(4), patients=40, official=True)
    catalog["label"] = catalog["label"].astype("Int64")
    catalog.loc[0, "label"] = pd.NA
    catalog.loc[1, "official_split"] = None
    selection = select(catalog, sampler="full")
    assert selection.loc[0, "exclusion_reason"] == "unlabelled" and not selection.loc[0, "selected"]
    assert selection.loc[1, "exclusion_reason"].startswith("no_split") and pd.isna(selection.loc[1, "split"])
    assert selection.loc[2:, "selected"].all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 120), short=st.sampled_from(["available", "oversample"]))
def test_any_balanced_selection_keeps_its_promises(seed, n, short):
    rng = np.random.default_rng(seed)
    catalog = random_catalog(rng, patients=int(rng.integers(8, 80)), official=True)
    quality = pd.DataFrame({"sample_id": catalog["sample_id"], "readable": True,
                            "flag_unreadable": rng.random(len(catalog)) < 0.05, "flag_blank": False})
    classes = sorted(catalog["label"].astype(str).unique())
    sampler = BalancedSampler(n=n, short=short)
    if n < len(classes):
        with pytest.raises(CurateError, match="fewer than the"):
            select(catalog, quality=quality, sampler=sampler, seed=seed)
        return
    train_kept = (catalog["official_split"] == "train") & ~quality["flag_unreadable"]
    available = catalog.loc[train_kept, "label"].astype(str).value_counts().to_dict()
    wanted = balanced_counts(n, classes, available)
    if short == "oversample" and any(available.get(c, 0) == 0 for c in classes):
        with pytest.raises(ShortClassError, match="no sample in train to repeat"):
            select(catalog, quality=quality, sampler=sampler, seed=seed)
        return
    selection = select(catalog, quality=quality, sampler=sampler, seed=seed)
    train = selection[selection["split"] == "train"]
    for label, want in wanted.items():
        rows = train[train["label"].astype(str) == label]
        taken = rows.loc[rows["selected"], "repeat"].sum()
        assert taken == (min(want, available.get(label, 0)) if short == "available" else want)
    assert not (selection["selected"] & selection["exclusion_reason"].notna()).any()
    others = selection[selection["split"] != "train"]
    assert (others["selected"] == others["exclusion_reason"].isna()).all()
    assert (selection.loc[~selection["selected"], ["repeat", "weight"]] == 0).all().all()
