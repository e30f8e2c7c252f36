from __future__ import annotations

import json

import pytest

from curate.select import BalancedSampler, select, selection_report, selection_summary


@pytest.fixture(scope="module")
def selection(demo_tables):
    catalog, quality, labels = demo_tables
    return select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=250))


def test_summary_counts_per_split_and_class(selection):
    summary = selection_summary(selection)
    assert list(summary.index.get_level_values("split").unique()) == ["train", "val", "test"]
    assert list(summary.loc["train"].index) == ["0", "1", "2", "3", "4"]
    assert summary.columns[:5].tolist() == ["samples", "excluded", "available", "selected", "rows"]
    assert (summary["available"] == summary["samples"] - summary["excluded"]).all()
    assert summary.loc["train", "selected"].tolist() == [50] * 5
    assert summary.loc[("train", "4")].to_dict() | {} == {
        "samples": 52, "excluded": 2, "available": 50, "selected": 50, "rows": 50,
        "excluded:blank": 0, "excluded:exact_duplicate": 0, "excluded:label_issue": 1, "excluded:near_duplicate": 0,
        "excluded:unreadable": 0, "excluded:wrong_body_part": 1, "excluded:wrong_modality": 0,
    }
    reasons = summary.filter(like="excluded:")
    assert (reasons.sum(axis=1) >= summary["excluded"]).all()  # a sample may have two reasons
    assert summary["samples"].sum() == len(selection)


def test_report_is_plain_json_with_the_record(selection):
    report = json.loads(json.dumps(selection_report(selection)))
    assert report["by_split"]["train"]["4"]["excluded_by"] == {"label_issue": 1, "wrong_body_part": 1}
    assert report["totals"]["train"]["selected"] == 250
    assert report["sampler"] == {"sampler": "balanced", "n": 250, "short": "fail", "strategy": "random"}
    assert report["split"] == {"method": "official"}
    assert set(report["class_weights"]["train"]) == {"rows", "inverse", "effective", "beta"}
    assert report["excluded_by"]["unreadable"] == sum(
        c["excluded_by"].get("unreadable", 0) for split in report["by_split"].values() for c in split.values()
    )
