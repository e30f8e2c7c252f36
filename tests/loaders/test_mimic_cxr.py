from __future__ import annotations

import pandas as pd
import pytest

from curate.catalog import make_sample_id
from curate.errors import CurateError, LoaderError
from curate.loaders._multilabel import CHEXPERT_OBSERVATIONS
from curate.loaders.mimic_cxr import MimicCXRLoader
from curate.tasks import Task, apply_task
from tests.conftest import knee_like, write_png

# dicom_id, subject_id, study_id, ViewPosition, StudyDate, StudyTime, split
IMAGES = [
    ("d1", "10000032", "50414267", "PA", "21800506", "213014.531", "train"),
    ("d2", "10000032", "50414267", "LATERAL", "21800506", "213014.531", "train"),
    ("d3", "10000032", "53189527", "AP", "21800626", "165500.312", "train"),
    ("d4", "10000764", "57375967", "AP", "21320108", "91030.0", "validate"),
    ("d5", "11000011", "51000000", "", "21500101", "80000", "test"),
]
LABELS = [  # subject, study, observations
    ("10000032", "50414267", {"No Finding": "1.0"}),
    ("10000032", "53189527", {"Edema": "1.0", "Pleural Effusion": "-1.0"}),
    ("10000764", "57375967", {"Pneumonia": "1.0", "Edema": "0.0"}),
    ("19999999", "59999999", {"Fracture": "1.0"}),  # a study without image
]


def _dataset(root, images=IMAGES, labels=LABELS, gz=True, files=True):
    root.mkdir(parents=True, exist_ok=True)
    meta = pd.DataFrame(
        [
            {"dicom_id": d, "subject_id": s, "study_id": st, "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
             "ViewPosition": v, "Rows": 3056, "Columns": 2544, "StudyDate": date, "StudyTime": time}
            for d, s, st, v, date, time, _ in images
        ]
    )
    suffix = ".csv.gz" if gz else ".csv"  # the published tables are gzipped
    meta.to_csv(root / f"mimic-cxr-2.0.0-metadata{suffix}", index=False)
    rows = [{"subject_id": s, "study_id": st, **{n: obs.get(n, "") for n in CHEXPERT_OBSERVATIONS}} for s, st, obs in labels]
    pd.DataFrame(rows).to_csv(root / f"mimic-cxr-2.0.0-chexpert{suffix}", index=False)
    split = pd.DataFrame([{"dicom_id": d, "study_id": st, "subject_id": s, "split": sp} for d, s, st, *_, sp in images])
    split.to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    if files:
        for i, (d, s, st, *_) in enumerate(images):
            write_png(root / f"files/p{s[:2]}/p{s}/s{st}/{d}.jpg", knee_like(i, 16))
    return root


def test_tables_are_joined_per_image_with_paths_splits_views_and_findings(tmp_path):
    result = MimicCXRLoader().load(_dataset(tmp_path / "mimic"))
    cat = result.catalog.set_index("dicom_id")
    assert len(cat) == 5
    row = cat.loc["d3"]
    assert row.path == "files/p10/p10000032/s53189527/d3.jpg"
    assert row.sample_id == make_sample_id("mimic-cxr", row.path)
    assert (row.patient_id, row.study_id, row.view, row.official_split) == ("10000032", "53189527", "AP", "train")
    assert (row.findings, row.findings_uncertain, row.label, row.finding_pleural_effusion) == ("Edema", "Pleural Effusion", "Edema", -1)
    assert (row.rows, row.columns, row.visit) == (3056, 2544, "21800626T165500")
    # Labels are per study: both images of the first study share them.
    assert list(cat.loc[["d1", "d2"], "findings"]) == ["No Finding", "No Finding"]
    assert cat.loc["d4", "visit"] == "21320108T091030" and cat.loc["d4", "official_split"] == "val"
    assert cat["view"].fillna("none").value_counts().to_dict() == {"AP": 2, "PA": 1, "LATERAL": 1, "none": 1}
    assert cat["official_split"].value_counts().to_dict() == {"train": 3, "val": 1, "test": 1}
    assert cat.groupby("patient_id").size().to_dict() == {"10000032": 3, "10000764": 1, "11000011": 1}
    assert pd.isna(cat.loc["d5", "label"])
    assert sorted(zip(result.problems["kind"], result.problems["where"])) == [
        ("image_without_labels", "files/p11/p11000011/s51000000/d5.jpg"),
        ("labels_without_image", "mimic-cxr-2.0.0-chexpert.csv.gz: p19999999/s59999999"),
    ]


def test_plain_csv_tables_and_missing_images(tmp_path):
    root = _dataset(tmp_path / "mimic", gz=False, files=False)
    with pytest.raises(LoaderError, match=r"5 of 5 images listed in mimic-cxr-2.0.0-metadata.csv are not under .*first: files/p10/p10000032/s50414267/d1.jpg"):
        MimicCXRLoader().load(root)
    result = MimicCXRLoader().load(root, allow_missing_images=True)
    assert len(result.catalog) == 5 and "missing_images" in set(result.problems["kind"])


def test_missing_column_names_column_and_file(tmp_path):
    root = _dataset(tmp_path / "mimic")
    meta = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str).drop(columns="ViewPosition")
    meta.to_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    with pytest.raises(CurateError, match=r"mimic-cxr-2.0.0-metadata.csv.gz: no column 'ViewPosition'; its columns are 'dicom_id'"):
        MimicCXRLoader().load(root)


def test_missing_label_table_is_named(tmp_path):
    root = _dataset(tmp_path / "mimic")
    with pytest.raises(LoaderError, match=r"no mimic-cxr-2.0.0-negbio.csv \(or .csv.gz\)"):
        MimicCXRLoader().load(root, labeler="negbio")


def test_frontal_one_per_patient_keeps_the_earliest_study(tmp_path):
    catalog = MimicCXRLoader().load(_dataset(tmp_path / "mimic")).catalog
    task = Task.from_dict(
        {"target": "multiclass", "findings": ["No Finding", "Edema", "Pneumonia"], "frontal_only": True, "one_per_patient": True}
    )
    labeled, problems = apply_task(catalog, task)
    assert labeled.set_index("patient_id")["dicom_id"].to_dict() == {"10000032": "d1", "10000764": "d4"}
    assert labeled.set_index("dicom_id")["label"].to_dict() == {"d1": "No Finding", "d4": "Pneumonia"}
    kinds = dict(zip(_dicom_ids(problems), problems["kind"]))
    assert kinds == {"d2": "excluded_view", "d3": "other_image_of_patient", "d5": "excluded_view"}


def _dicom_ids(problems):
    return [p.rsplit("/", 1)[1].removesuffix(".jpg") for p in problems["where"]]
