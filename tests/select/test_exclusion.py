from __future__ import annotations

import pandas as pd
import pytest

from curate.errors import CurateError
from curate.select import DEFAULT_EXCLUDE, exclusion_reasons, resolve_exclusions
from curate.select.exclusion import reason_names


def _tables():
    catalog = pd.DataFrame(
        {
            "sample_id": list("abcdef"),
            "path": [f"{x}.png" for x in "abcdef"],
            "label": [0, 1, 2, 3, 4, 0],
            "patient_id": list("ppqqrs"),
            "source": "t",
        }
    )
    quality = pd.DataFrame(
        {
            "sample_id": list("fedcba"),  # any order
            "flag_unreadable": [False, False, False, False, False, True],
            "flag_exact_duplicate": [True, False, False, False, False, False],
            "flag_near_duplicate": [False, True, False, False, False, False],
            "flag_dark": [False, False, True, False, False, False],
            "flag_blank": False,
            "flag_wrong_modality": False,
        }
    )
    labels = pd.DataFrame(
        {
            "sample_id": list("abcdf"),  # e is not covered
            "given_label": [0, 1, 2, 3, 0],
            "suggested_label": [0, 2, 2, 0, 3],
            "is_label_issue": [False, True, False, True, True],
            "grade_distance": pd.array([0, 1, 0, 3, 3], dtype="Int64"),
        }
    )
    return catalog, quality, labels


def test_default_rules_exclude_with_readable_reasons():
    catalog, quality, labels = _tables()
    reasons = exclusion_reasons(catalog, quality=quality, labels=labels)
    assert reasons.tolist() == [
        "unreadable",
        pd.NA,  # an adjacent-grade label issue stays
        pd.NA,  # dark is not excluded by default
        "label_issue (given 3, suggested 0)",
        "near_duplicate",
        "exact_duplicate; label_issue (given 0, suggested 3)",
    ]
    assert reasons.attrs["not_checked"] == {"wrong_body_part": "not checked by this scan"}
    assert reason_names(reasons).iloc[5] == ["exact_duplicate", "label_issue"]


def test_rules_are_a_parameter():
    catalog, quality, labels = _tables()
    reasons = exclusion_reasons(
        catalog, quality=quality, labels=labels, exclude=resolve_exclusions(add=["dark"], keep=["exact_duplicate"])
    )
    assert reasons.iloc[3] == "label_issue (given 3, suggested 0); dark"  # in the order of the rules
    assert reasons.iloc[5] == "label_issue (given 0, suggested 3)"
    every_issue = exclusion_reasons(catalog, labels=labels, exclude=["label_issue"], min_grade_distance=None)
    assert every_issue.notna().tolist() == [False, True, False, True, False, True]
    assert exclusion_reasons(catalog, quality=quality, exclude=[]).isna().all()


def test_missing_tables_leave_rules_unchecked_but_named_flags_need_them():
    catalog, quality, labels = _tables()
    reasons = exclusion_reasons(catalog)
    assert reasons.isna().all()
    assert set(reasons.attrs["not_checked"]) == set(DEFAULT_EXCLUDE)
    with pytest.raises(CurateError, match="excluding by flag 'dark' needs a quality table"):
        exclusion_reasons(catalog, exclude=["dark"])
    with pytest.raises(CurateError, match="unknown flag name 'drak'; the quality table has: blank, dark"):
        exclusion_reasons(catalog, quality=quality, exclude=["drak"])
    with pytest.raises(CurateError, match="cannot keep 'dark': it is not excluded"):
        resolve_exclusions(keep=["dark"])


def test_quality_must_cover_the_catalog_and_label_rows_may_be_missing():
    catalog, quality, labels = _tables()
    with pytest.raises(CurateError, match="no row for 1 catalog sample\\(s\\) \\(a\\): scan this catalog again"):
        exclusion_reasons(catalog, quality=quality[quality["sample_id"] != "a"])
    assert pd.isna(exclusion_reasons(catalog, labels=labels).iloc[4])


def test_label_issue_without_distance_counts_and_text_labels_work():
    catalog, _, _ = _tables()
    catalog["label"] = ["cat", "dog", "cat", "dog", "cat", "dog"]
    labels = pd.DataFrame(
        {"sample_id": ["b"], "given_label": ["dog"], "suggested_label": ["cat"], "is_label_issue": [True],
         "grade_distance": pd.array([pd.NA], dtype="Int64")}
    )
    assert exclusion_reasons(catalog, labels=labels).iloc[1] == "label_issue (given dog, suggested cat)"
