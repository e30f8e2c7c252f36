from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.catalog import make_sample_id
from curate.tasks import Task, TaskError, apply_task, catalog_findings

FINDINGS = ["Edema", "Effusion", "Pneumonia", "Support Devices"]


def _catalog(rows):
    """rows: (patient, visit, view, findings, uncertain)."""
    paths = [f"img/{i}.png" for i in range(len(rows))]
    return pd.DataFrame(
        {
            "sample_id": [make_sample_id("t", p) for p in paths],
            "path": paths,
            "label": [r[3] for r in rows],
            "patient_id": [r[0] for r in rows],
            "source": "t",
            "visit": [r[1] for r in rows],
            "view": [r[2] for r in rows],
            "findings": [r[3] for r in rows],
            "findings_uncertain": [r[4] for r in rows],
        }
    )


CATALOG = _catalog(
    [
        ("1", "2", "PA", "No Finding", ""),
        ("1", "10", "PA", "Pneumonia", ""),
        ("1", "1", "LATERAL", "Pneumonia", ""),
        ("2", "0", "AP", "Edema|Pneumonia", ""),
        ("3", "0", "AP", "Edema", "Pneumonia"),
        ("4", "0", None, "No Finding", "Effusion"),
        ("5", "0", "PA", "Support Devices", ""),
        ("6", "0", "PA", None, None),
    ]
)


def _labels(spec, catalog=CATALOG):
    labeled, problems = apply_task(catalog, Task.from_dict(spec))
    return dict(zip(labeled["path"], labeled["label"])), dict(zip(problems["where"], problems["kind"]))


def test_binary_against_no_finding_and_against_rest():
    labels, excluded = _labels({"target": "binary", "findings": ["Pneumonia"], "negative": "No Finding"})
    assert labels == {"img/0.png": 0, "img/1.png": 1, "img/2.png": 1, "img/3.png": 1, "img/5.png": 0}
    assert excluded == {"img/4.png": "other_finding", "img/6.png": "other_finding", "img/7.png": "no_findings"}
    labels, _ = _labels({"target": "binary", "findings": "Pneumonia", "negative": "rest"})
    assert labels == {"img/0.png": 0, "img/1.png": 1, "img/2.png": 1, "img/3.png": 1, "img/4.png": 0, "img/5.png": 0, "img/6.png": 0}


def test_neutral_findings_do_not_count_against_no_finding():
    spec = {"target": "binary", "findings": "Pneumonia", "negative": "No Finding", "neutral_findings": ["Support Devices"]}
    labels, excluded = _labels(spec)
    assert labels["img/6.png"] == 0 and "img/6.png" not in excluded


def test_uncertain_policies_for_one_vs_rest_columns():
    spec = {"target": "one_vs_rest", "findings": ["Pneumonia", "Effusion"], "negative": "No Finding"}
    results = {}
    for policy in ("ignore", "negative", "positive", "drop"):
        labeled, problems = apply_task(CATALOG, Task.from_dict({**spec, "uncertain": policy}))
        rows = labeled.set_index("path")
        results[policy] = {
            p: (rows.at[p, "label"], rows.at[p, "task_pneumonia"], rows.at[p, "task_effusion"]) for p in rows.index
        }
        results[policy + "-excluded"] = dict(zip(problems["where"], problems["kind"]))
    # ignore: the label treats uncertain Effusion as absent, its own column is unknown (NA).
    assert results["ignore"]["img/5.png"][:2] == ("No Finding", 0) and pd.isna(results["ignore"]["img/5.png"][2])
    assert results["negative"]["img/5.png"] == ("No Finding", 0, 0)
    assert results["positive"]["img/5.png"] == ("Effusion", 0, 1)
    assert results["positive"]["img/4.png"] == ("Pneumonia", 1, 0)
    assert "img/4.png" in results["ignore-excluded"]  # Edema alone: neither target nor No Finding
    assert results["drop-excluded"]["img/4.png"] == "uncertain_label"
    assert results["drop-excluded"]["img/5.png"] == "uncertain_label"


def test_multiclass_excludes_images_with_several_classes_or_none():
    labels, excluded = _labels({"target": "multiclass", "findings": ["Edema", "Pneumonia", "No Finding"]})
    assert labels == {"img/0.png": "No Finding", "img/1.png": "Pneumonia", "img/2.png": "Pneumonia", "img/4.png": "Edema", "img/5.png": "No Finding"}
    assert excluded == {"img/3.png": "several_target_findings", "img/6.png": "no_target_finding", "img/7.png": "no_findings"}


def test_views_and_one_image_per_patient_choose_the_earliest_visit():
    spec = {"target": "binary", "findings": "Pneumonia", "negative": "rest", "frontal_only": True, "one_per_patient": True}
    labels, excluded = _labels(spec)
    # Patient 1: visits "2" and "10" are compared as numbers, so "2" (img/0) is kept.
    assert labels == {"img/0.png": 0, "img/3.png": 1, "img/4.png": 0, "img/6.png": 0}
    assert excluded == {
        "img/1.png": "other_image_of_patient",
        "img/2.png": "excluded_view",
        "img/5.png": "excluded_view",
        "img/7.png": "no_findings",
    }
    lateral, _ = _labels({"target": "binary", "findings": "Pneumonia", "negative": "rest", "views": ["L"]})
    assert lateral == {"img/2.png": 1}


def test_unknown_finding_lists_the_catalog_findings():
    task = Task.from_dict({"target": "binary", "findings": "Pneumothorax", "negative": "rest"})
    with pytest.raises(TaskError) as err:
        apply_task(CATALOG, task)
    assert str(err.value) == (
        "task: finding 'Pneumothorax' is not in the catalog; its findings are "
        "Edema, Effusion, No Finding, Pneumonia, Support Devices"
    )


def test_catalog_without_findings_is_refused():
    with pytest.raises(TaskError, match="the catalog has no 'findings' column"):
        apply_task(CATALOG.drop(columns="findings"), Task.from_dict({"target": "binary", "findings": "Edema", "negative": "rest"}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"findings": ["Edema"]}, "task: missing key 'target'"),
        ({"target": "binary", "findings": "Edema", "negative": "rest", "finding": "x"}, "task: unknown key 'finding'; the keys are target, findings"),
        ({"target": "binary_", "findings": "Edema"}, "task: 'target' is 'binary_', expected one of binary, one_vs_rest, multiclass"),
        ({"target": "binary", "findings": "Edema"}, "task: a binary task needs 'negative': 'No Finding' or 'rest'"),
        ({"target": "binary", "findings": ["Edema", "Mass"], "negative": "rest"}, "task: a binary task has one finding, got 2: Edema, Mass"),
        ({"target": "binary", "findings": "Edema", "negative": "normal"}, "task: 'negative' is 'normal', expected 'No Finding' or 'rest'"),
        ({"target": "multiclass", "findings": ["Edema", "Mass"], "negative": "rest"}, "task: a multiclass task takes no 'negative'"),
        ({"target": "multiclass", "findings": ["Pneumonia", "Pneumonia/Viral"]}, "task: classes 'Pneumonia' and 'Pneumonia/Viral' overlap"),
        ({"target": "binary", "findings": "Edema", "negative": "rest", "uncertain": "maybe"}, "task: 'uncertain' is 'maybe', expected one of ignore, positive, negative, drop"),
        ({"target": "binary", "findings": "Edema", "negative": "rest", "frontal_only": "yes"}, "task: 'frontal_only' must be true or false, got 'yes'"),
        ({"target": "binary", "findings": "Edema", "negative": "rest", "views": ["PA"], "frontal_only": True}, "task: give 'views' or 'frontal_only', not both"),
        ({"target": "one_vs_rest", "findings": ["Edema", "Edema"], "negative": "rest"}, "task: 'findings' lists 'Edema' more than once"),
        ({"target": "binary", "findings": [3], "negative": "rest", "name": "t1"}, "task 't1': 'findings' must be a list of names, got (3,)"),
        ({"target": "binary", "findings": "Edema", "negative": "rest", "neutral_findings": "Edema"}, "task: 'Edema' is both a target and a neutral finding"),
    ],
)
def test_bad_definitions_give_one_line_errors(spec, message):
    with pytest.raises(TaskError) as err:
        Task.from_dict(spec)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_definition_round_trips_through_a_dict():
    task = Task.from_dict({"target": "One_vs_Rest", "findings": ["Edema"], "negative": "no finding", "views": ["ap", "L"]})
    assert (task.target, task.negative, task.views) == ("one_vs_rest", "No Finding", ("AP", "LATERAL"))
    assert Task.from_dict(task.to_dict()) == task
    assert Task.from_dict({"target": "binary", "findings": "Edema", "negative": "rest", "views": None}).views == ()
    assert catalog_findings(_catalog([("1", "0", "PA", "Pneumonia/Viral/COVID-19", "")])) == [
        "No Finding",
        "Pneumonia",
        "Pneumonia/Viral",
        "Pneumonia/Viral/COVID-19",
    ]


_row = st.tuples(
    st.sampled_from(["1", "2", "3", None]),
    st.sampled_from(["0", "1", "12", None]),
    st.sampled_from(["PA", "AP", "LATERAL", None]),
    st.one_of(st.none(), st.sets(st.sampled_from(FINDINGS), max_size=3).map(lambda s: "|".join(sorted(s)) or "No Finding")),
    st.sets(st.sampled_from(FINDINGS), max_size=2).map("|".join),
)
_task = st.fixed_dictionaries(
    {
        "target": st.sampled_from(["binary", "one_vs_rest", "multiclass"]),
        "uncertain": st.sampled_from(["ignore", "positive", "negative", "drop"]),
        "frontal_only": st.booleans(),
        "one_per_patient": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=12), spec=_task)
def test_every_image_is_kept_or_reported_exactly_once(rows, spec):
    catalog = _catalog(rows)
    if spec["target"] == "multiclass":
        spec = {**spec, "findings": ["Edema", "Pneumonia", "No Finding"]}
    else:
        spec = {**spec, "findings": ["Edema"] if spec["target"] == "binary" else ["Edema", "Effusion"], "negative": "No Finding"}
    known = catalog_findings(catalog)
    if not set(spec["findings"]) <= set(known):
        with pytest.raises(TaskError, match="is not in the catalog"):
            apply_task(catalog, Task.from_dict(spec))
        return
    labeled, problems = apply_task(catalog, Task.from_dict(spec))
    assert sorted([*labeled["path"], *problems["where"]]) == sorted(catalog["path"])
    assert labeled["label"].notna().all()
    if spec["one_per_patient"]:
        assert labeled["patient_id"].is_unique
