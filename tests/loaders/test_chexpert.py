from __future__ import annotations

import pandas as pd
import pytest

from curate.catalog import make_sample_id
from curate.errors import CurateError, LoaderError
from curate.loaders._multilabel import CHEXPERT_OBSERVATIONS
from curate.loaders.chexpert import CheXpertLoader
from curate.tasks import Task, apply_task
from tests.conftest import knee_like, write_png

DATASET = "CheXpert-v1.0-small"


def _row(path, view="Frontal", ap_pa="PA", sex="Male", age=60, **observations):
    row = {"Path": f"{DATASET}/{path}", "Sex": sex, "Age": age, "Frontal/Lateral": view, "AP/PA": ap_pa}
    row.update({name: observations.get(name.replace(" ", "_"), "") for name in CHEXPERT_OBSERVATIONS})
    return row


TRAIN = [
    _row("train/patient00001/study1/view1_frontal.jpg", No_Finding=1.0),
    _row("train/patient00002/study1/view1_frontal.jpg", ap_pa="AP", Edema=1.0, Pneumonia=-1.0, Support_Devices=1.0),
    _row("train/patient00002/study1/view2_lateral.jpg", view="Lateral", ap_pa="", Edema=1.0, Pneumonia=-1.0),
    _row("train/patient00002/study2/view1_frontal.jpg", ap_pa="", Pneumonia=1.0, Edema=0.0),
    _row("train/patient00003/study1/view1_frontal.jpg", Atelectasis=-1.0),
]
VALID = [
    _row("valid/patient64541/study1/view1_frontal.jpg", No_Finding=1.0, Cardiomegaly=0.0),
    _row("valid/patient64542/study1/view1_frontal.jpg", ap_pa="AP", Cardiomegaly=1.0),
]


def _dataset(folder, train=TRAIN, valid=VALID, images=True):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(train).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(valid).to_csv(folder / "valid.csv", index=False)
    if images:
        for i, row in enumerate(train + valid):
            write_png(folder / row["Path"].split("/", 1)[1], knee_like(i, 16))
    return folder


def test_dataset_folder_gives_paths_patients_splits_views_and_findings(tmp_path):
    root = _dataset(tmp_path / DATASET)
    result = CheXpertLoader().load(root)
    cat = result.catalog.set_index("path")
    assert len(cat) == 7 and result.problems.empty
    # The dataset folder's own name is dropped: paths are relative to the folder of the CSVs.
    row = cat.loc["train/patient00002/study1/view1_frontal.jpg"]
    assert (row.patient_id, row.visit, row.view, row.view_raw, row.official_split) == ("patient00002", "1", "AP", "AP", "train")
    assert (row.findings, row.findings_uncertain, row.label) == ("Edema|Support Devices", "Pneumonia", "Edema|Support Devices")
    assert (row.finding_edema, row.finding_pneumonia, row.finding_support_devices) == (1, -1, 1)
    assert pd.isna(row.finding_fracture) and row.sex == "Male" and row.age == 60
    assert row.sample_id == make_sample_id("chexpert", "train/patient00002/study1/view1_frontal.jpg")
    assert cat["official_split"].value_counts().to_dict() == {"train": 5, "val": 2}
    assert cat["view"].value_counts().to_dict() == {"PA": 3, "AP": 2, "LATERAL": 1, "FRONTAL": 1}
    assert cat["patient_id"].nunique() == 5
    assert cat.loc["train/patient00002/study2/view1_frontal.jpg", "visit"] == "2"
    assert cat.loc["train/patient00001/study1/view1_frontal.jpg", "findings"] == "No Finding"
    assert cat.loc["train/patient00003/study1/view1_frontal.jpg", "findings_uncertain"] == "Atelectasis"


def test_parent_folder_and_csvs_beside_the_dataset_folder(tmp_path):
    root = _dataset(tmp_path / DATASET)
    from_parent = CheXpertLoader().load(tmp_path)  # the CSVs are found one level down
    assert set(from_parent.catalog["path"]) == set(CheXpertLoader().load(root).catalog["path"])
    beside = tmp_path / "beside"
    (beside / DATASET).mkdir(parents=True)
    (root / "train").rename(beside / DATASET / "train")
    (root / "valid").rename(beside / DATASET / "valid")
    for name in ("train.csv", "valid.csv"):
        (root / name).rename(beside / name)
    cat = CheXpertLoader().load(beside).catalog
    assert cat["path"].str.startswith(f"{DATASET}/").all()


def test_one_csv_alone_gives_its_split(tmp_path):
    root = _dataset(tmp_path / DATASET)
    cat = CheXpertLoader().load(root / "valid.csv").catalog
    assert list(cat["official_split"]) == ["val", "val"]


def test_missing_images_refused_unless_allowed(tmp_path):
    root = _dataset(tmp_path / DATASET, images=False)
    with pytest.raises(LoaderError, match=r"7 of 7 images listed in train.csv and valid.csv are not under"):
        CheXpertLoader().load(root)
    result = CheXpertLoader().load(root, allow_missing_images=True)
    assert len(result.catalog) == 7 and list(result.problems["kind"]) == ["missing_images"]


def test_bad_values_and_unparsed_paths_are_reported(tmp_path):
    train = TRAIN + [_row("train/somebody/view1_frontal.jpg", Edema="yes")]
    result = CheXpertLoader().load(_dataset(tmp_path / DATASET, train=train))
    kinds = sorted(zip(result.problems["kind"], result.problems["where"]))
    assert kinds == [
        ("bad_observation_value", "train/somebody/view1_frontal.jpg"),
        ("unparsed_path", "train/somebody/view1_frontal.jpg"),
    ]
    assert pd.isna(result.catalog.set_index("path").loc["train/somebody/view1_frontal.jpg", "patient_id"])


def test_missing_column_names_column_and_file(tmp_path):
    root = _dataset(tmp_path / DATASET)
    pd.DataFrame(TRAIN).drop(columns="Edema").to_csv(root / "train.csv", index=False)
    with pytest.raises(CurateError, match=r"train.csv: no column 'Edema'; its columns are 'Path'"):
        CheXpertLoader().load(root)


@pytest.mark.parametrize(
    ("uncertain", "labels", "excluded"),
    [
        # Frontal rows: p1 No Finding; p2/study1 Edema (+ neutral Support Devices), uncertain Pneumonia;
        # p2/study2 Pneumonia (view FRONTAL); p3 uncertain Atelectasis; val: No Finding, Cardiomegaly.
        ("ignore", {0: 3, 1: 1}, {"other_finding": 2, "excluded_view": 1}),
        ("negative", {0: 3, 1: 1}, {"other_finding": 2, "excluded_view": 1}),
        ("positive", {0: 2, 1: 2}, {"other_finding": 2, "excluded_view": 1}),
        ("drop", {0: 2, 1: 1}, {"uncertain_label": 2, "other_finding": 1, "excluded_view": 1}),
    ],
)
def test_uncertain_policies_on_a_frontal_binary_task(tmp_path, uncertain, labels, excluded):
    catalog = CheXpertLoader().load(_dataset(tmp_path / DATASET)).catalog
    task = Task.from_dict(
        {
            "target": "binary",
            "findings": "Pneumonia",
            "negative": "No Finding",
            "uncertain": uncertain,
            "frontal_only": True,
            "neutral_findings": ["Support Devices"],
        }
    )
    labeled, problems = apply_task(catalog, task)
    assert labeled["label"].value_counts().to_dict() == labels
    assert problems["kind"].value_counts().to_dict() == excluded


def test_one_vs_rest_masks_ignored_uncertain_labels(tmp_path):
    catalog = CheXpertLoader().load(_dataset(tmp_path / DATASET)).catalog
    task = Task.from_dict({"target": "one_vs_rest", "findings": ["Edema", "Pneumonia"], "negative": "rest"})
    labeled, problems = apply_task(catalog, task)
    row = labeled.set_index("path").loc["train/patient00002/study1/view1_frontal.jpg"]
    assert (row.label, row.task_edema) == ("Edema", 1) and pd.isna(row.task_pneumonia)
    assert labeled.groupby("official_split")["label"].value_counts().to_dict() == {
        ("train", "Edema"): 2,
        ("train", "Pneumonia"): 1,
        ("train", "rest"): 2,
        ("val", "rest"): 2,
    }
    assert problems.empty
