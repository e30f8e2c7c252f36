from __future__ import annotations

import json

import pandas as pd
import pydicom
import pytest

from curate.catalog import make_sample_id
from curate.errors import CurateError, LoaderError
from curate.loaders.rsna_pneumonia import RSNAPneumoniaLoader
from curate.tasks import Task, apply_task
from tests.conftest import knee_like, write_dicom
from tests.loaders._odd import make_odd_entries

BOXES = [  # patientId, x, y, width, height, Target: one row per box, several per image
    ("0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", "0"),
    ("00436515-870c-4b36-a041-de91049b9ab4", "264.0", "152.0", "213.0", "379.0", "1"),
    ("00436515-870c-4b36-a041-de91049b9ab4", "562.0", "152.0", "256.0", "453.5", "1"),
    ("00569f44-917d-4c86-a842-81832af98c30", "", "", "", "", "0"),
    ("006cec2e-6ce2-4549-bffa-eadfcd1e9970", "", "", "", "", "0"),
]
CLASSES = [  # repeated once per box, as published
    ("0004cfab-14fd-4e49-80ba-63a80b6bddd6", "No Lung Opacity / Not Normal"),
    ("00436515-870c-4b36-a041-de91049b9ab4", "Lung Opacity"),
    ("00436515-870c-4b36-a041-de91049b9ab4", "Lung Opacity"),
    ("00569f44-917d-4c86-a842-81832af98c30", "Normal"),
    ("006cec2e-6ce2-4549-bffa-eadfcd1e9970", "Normal"),
]
VIEWS = {"0004cfab": "PA", "00436515": "AP", "00569f44": "AP", "006cec2e": "PA"}


def _dicom(path, patient_id, view):
    write_dicom(path, knee_like(len(patient_id), 16), patient_id=patient_id, modality="CR", body_part="CHEST")
    ds = pydicom.dcmread(path)
    ds.ViewPosition = view  # write_dicom has no view: set it like the challenge's files
    ds.save_as(path)


def _dataset(root, boxes=BOXES, classes=CLASSES):
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(boxes, columns=["patientId", "x", "y", "width", "height", "Target"]).to_csv(
        root / "stage_2_train_labels.csv", index=False
    )
    if classes is not None:
        pd.DataFrame(classes, columns=["patientId", "class"]).to_csv(root / "stage_2_detailed_class_info.csv", index=False)
    for pid in dict.fromkeys(b[0] for b in boxes):
        _dicom(root / "stage_2_train_images" / f"{pid}.dcm", pid, VIEWS[pid[:8]])
    return root


def test_one_row_per_image_with_boxes_classes_and_header_fields(tmp_path):
    root = _dataset(tmp_path / "rsna")
    _dicom(root / "stage_2_train_images" / "ffffffff-test.dcm", "ffffffff-test", "PA")  # no row
    result = RSNAPneumoniaLoader().load(root)
    cat = result.catalog.set_index("patient_id")
    assert len(cat) == 4
    row = cat.loc["00436515-870c-4b36-a041-de91049b9ab4"]
    assert row.path == "stage_2_train_images/00436515-870c-4b36-a041-de91049b9ab4.dcm"
    assert row.sample_id == make_sample_id("rsna-pneumonia", row.path)
    assert (row.label, row.target, row.n_boxes, row.rsna_class) == ("Lung Opacity", 1, 2, "Lung Opacity")
    assert json.loads(row.boxes) == [[264, 152, 213, 379], [562, 152, 256, 453.5]]
    assert (row.view, row.rows, row.columns, row.modality) == ("AP", 16, 16, "CR")
    assert cat.loc["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "findings"] == "No Lung Opacity / Not Normal"
    assert json.loads(cat.loc["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "boxes"]) == []
    assert cat["label"].value_counts().to_dict() == {"No Finding": 2, "Lung Opacity": 1, "No Lung Opacity / Not Normal": 1}
    assert cat["view"].value_counts().to_dict() == {"PA": 2, "AP": 2}
    assert list(zip(result.problems["kind"], result.problems["where"])) == [
        ("image_without_row", "stage_2_train_images/ffffffff-test.dcm")
    ]


def test_without_class_table_negatives_are_only_no_opacity(tmp_path):
    root = _dataset(tmp_path / "rsna", classes=None)
    cat = RSNAPneumoniaLoader().load(root / "stage_2_train_labels.csv").catalog
    assert cat["findings"].value_counts().to_dict() == {"No Lung Opacity": 3, "Lung Opacity": 1}
    assert cat["rsna_class"].isna().all()


def test_inconsistent_rows_and_header_are_reported(tmp_path):
    boxes = BOXES + [("006cec2e-6ce2-4549-bffa-eadfcd1e9970", "1", "2", "", "4", "1")]
    classes = CLASSES + [("0004cfab-14fd-4e49-80ba-63a80b6bddd6", "Normal"), ("abc", "Normal")]
    root = _dataset(tmp_path / "rsna", boxes=boxes, classes=classes)
    _dicom(root / "stage_2_train_images/00569f44-917d-4c86-a842-81832af98c30.dcm", "someone-else", "AP")
    result = RSNAPneumoniaLoader().load(root)
    kinds = sorted(zip(result.problems["kind"], result.problems["where"]))
    assert kinds == [
        ("bad_box", "006cec2e-6ce2-4549-bffa-eadfcd1e9970"),
        ("class_target_mismatch", "006cec2e-6ce2-4549-bffa-eadfcd1e9970"),
        ("class_without_row", "abc"),
        ("conflicting_class", "0004cfab-14fd-4e49-80ba-63a80b6bddd6"),
        ("conflicting_target", "006cec2e-6ce2-4549-bffa-eadfcd1e9970"),
        ("patient_id_mismatch", "stage_2_train_images/00569f44-917d-4c86-a842-81832af98c30.dcm"),
    ]
    row = result.catalog.set_index("patient_id").loc["006cec2e-6ce2-4549-bffa-eadfcd1e9970"]
    assert (row.findings, row.n_boxes) == ("Lung Opacity", 0)


def test_missing_images_and_missing_column(tmp_path):
    root = _dataset(tmp_path / "rsna")
    (root / "stage_2_train_images/00569f44-917d-4c86-a842-81832af98c30.dcm").unlink()
    with pytest.raises(LoaderError, match=r"1 of 4 images listed in stage_2_train_labels.csv are not under"):
        RSNAPneumoniaLoader().load(root)
    result = RSNAPneumoniaLoader().load(root, allow_missing_images=True)
    assert len(result.catalog) == 4 and list(result.problems["kind"]) == ["missing_images"]
    pd.DataFrame(BOXES, columns=["patientId", "x", "y", "width", "height", "target"]).to_csv(
        root / "stage_2_train_labels.csv", index=False
    )
    with pytest.raises(CurateError, match=r"stage_2_train_labels.csv: no column 'Target'; its columns are 'patientId'"):
        RSNAPneumoniaLoader().load(root)


def test_opacity_versus_normal_leaves_out_not_normal(tmp_path):
    catalog = RSNAPneumoniaLoader().load(_dataset(tmp_path / "rsna")).catalog
    task = Task.from_dict({"target": "binary", "findings": "Lung Opacity", "negative": "No Finding"})
    labeled, problems = apply_task(catalog, task)
    assert labeled["label"].value_counts().to_dict() == {0: 2, 1: 1}
    assert list(problems["kind"]) == ["other_finding"]
    vs_rest = Task.from_dict({"target": "binary", "findings": "Lung Opacity", "negative": "rest", "views": ["PA"]})
    labeled, problems = apply_task(catalog, vs_rest)
    assert labeled["label"].value_counts().to_dict() == {0: 2}
    assert list(problems["kind"]) == ["excluded_view", "excluded_view"]


def test_pipes_sockets_and_broken_links_among_the_images_are_problems_never_opened(tmp_path, deadline):
    root = _dataset(tmp_path / "rsna")
    folder = "stage_2_train_images"
    odd = {f"{folder}/{name}": kind for name, kind in make_odd_entries(root / folder, "{kind}.dcm").items()}
    result = RSNAPneumoniaLoader().load(root)
    assert len(result.catalog) == 4
    assert {w: k for k, w in zip(result.problems["kind"], result.problems["where"]) if w in odd} == odd
