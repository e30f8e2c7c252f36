"""The split invariants, on random catalogs with random patient structures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.select import (
    apply_frozen_split,
    check_split,
    freeze_split,
    make_split,
    parse_fractions,
    proportion_tolerance,
    read_frozen_split,
)
from curate.select.splits import patient_groups

FRACTIONS = [(0.7, 0.1, 0.2), (0.8, 0.2), (0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.9, 0.05, 0.05), (0.34, 0.33, 0.33)]


@st.composite
def catalogs(draw):
    """1-4 samples per patient, 2-6 classes with skewed frequencies (some rare), knees of one
    patient often sharing a grade, and now and then a sample without patient id."""
    patients = draw(st.integers(3, 120))
    classes = draw(st.integers(2, 6))
    weights = draw(st.lists(st.floats(0.01, 1.0), min_size=classes, max_size=classes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = np.asarray(weights) / sum(weights)
    rows = []
    for i in range(patients):
        own = int(rng.choice(classes, p=p))
        for j in range(int(rng.integers(1, 5))):
            label = own if rng.random() < 0.6 else int(rng.choice(classes, p=p))
            patient = None if rng.random() < 0.03 else f"p{i}"
            rows.append({"sample_id": f"s{i}_{j}", "patient_id": patient, "label": label})
    catalog = pd.DataFrame(rows)
    catalog["patient_id"] = catalog["patient_id"].astype("string")
    return catalog


def _crossing_patients(table: pd.DataFrame) -> int:
    return int((table["split"].groupby(patient_groups(table)).nunique() > 1).sum())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=catalogs(), fractions=st.sampled_from(FRACTIONS), seed=st.integers(0, 10**6))
def test_new_split_keeps_every_invariant(catalog, fractions, seed):
    named = parse_fractions(fractions)
    table = make_split(catalog, fractions=fractions, seed=seed)
    assert table["split"].notna().all()
    # 1. no patient in two splits
    assert _crossing_patients(table) == 0
    check = check_split(table, fractions=named)
    assert check.ok, check.violations
    # 2. every class in every split when it has enough patients; a note when it has not
    groups = patient_groups(table)
    for label, rows in table.groupby("label"):
        holders = groups[rows.index].nunique()
        if holders >= len(named):
            assert set(rows["split"]) == set(named)
        elif set(rows["split"]) != set(named):
            assert any(note.startswith(f"class {label} has {holders} patient(s)") for note in check.notes)
    # 3. proportions within the stated tolerance
    shares = table["split"].value_counts(normalize=True)
    allowed = proportion_tolerance(table, splits=len(named))
    assert all(abs(shares.get(name, 0.0) - f) <= allowed for name, f in named.items())
    # deterministic
    pd.testing.assert_frame_equal(table, make_split(catalog, fractions=fractions, seed=seed))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(catalog=catalogs(), extra=st.integers(1, 30), seed=st.integers(0, 10**6))
def test_reused_frozen_split_never_moves_a_sample_and_keeps_patients_together(tmp_path, catalog, extra, seed):
    path = tmp_path / f"split-{seed}.parquet"
    table = make_split(catalog, seed=seed)
    freeze_split(table, path)
    rng = np.random.default_rng(seed)
    # new samples: some of known patients, some of new ones
    known = catalog["patient_id"].dropna().unique()
    new = pd.DataFrame(
        {
            "sample_id": [f"new{k}" for k in range(extra)],
            "patient_id": pd.array(
                [str(rng.choice(known)) if len(known) and rng.random() < 0.5 else f"q{k}" for k in range(extra)],
                dtype="string",
            ),
            "label": rng.integers(0, 3, extra),
        }
    )
    grown = pd.concat([catalog, new], ignore_index=True).sample(frac=1.0, random_state=seed)
    reused = apply_frozen_split(grown, read_frozen_split(path))
    by_id = reused.set_index("sample_id")["split"]
    assert (by_id.loc[table["sample_id"]].to_numpy() == table["split"].to_numpy()).all()
    assert _crossing_patients(reused) == 0
    assert reused.attrs["split"]["kept"] == len(catalog)
    assert reused.attrs["split"]["new_by_patient"] + reused.attrs["split"]["new_by_hash"] == extra
    again = apply_frozen_split(grown.sort_values("sample_id"), read_frozen_split(path))
    assert again.set_index("sample_id")["split"].loc[by_id.index].equals(by_id)


def test_check_split_reports_each_violation():
    table = pd.DataFrame(
        {
            "sample_id": list("abcdefgh"),
            "patient_id": ["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7"],
            "label": [0, 0, 0, 1, 1, 1, 0, 0],
            "split": ["train", "test", "train", "train", "train", "train", "test", "test"],
        }
    )
    check = check_split(table, fractions={"train": 0.5, "test": 0.5})
    assert check.violations == (
        "1 patient(s) in more than one split: patient p1 (train, test)",
        "class 1 is missing from test though 3 patients hold it",
    )
    official = check_split(table, require_every_class=False)
    assert official.violations == check.violations[:1]
    assert official.notes == ("class 1 is missing from test (it is in train)",)


def test_check_split_reports_proportions_beyond_the_tolerance():
    table = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(100)],
            "patient_id": [f"p{i}" for i in range(100)],
            "label": [i % 2 for i in range(100)],
            "split": ["train"] * 80 + ["test"] * 20,
        }
    )
    assert proportion_tolerance(table) == 0.02 + 2 * 1 / 100
    check = check_split(table, fractions={"train": 0.7, "test": 0.3})
    assert check.violations == (
        "split train holds 0.800 of the samples, 0.7 asked (tolerance 0.040)",
        "split test holds 0.200 of the samples, 0.3 asked (tolerance 0.040)",
    )
    assert check_split(table, fractions={"train": 0.77, "test": 0.23}).ok
