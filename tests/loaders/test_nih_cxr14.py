from __future__ import annotations

import csv
from collections import Counter

import pytest

from curate.catalog import make_sample_id
from curate.errors import CurateError, LoaderError
from curate.loaders.nih_cxr14 import NIHChestXray14Loader
from curate.tasks import Task, apply_task
from tests.conftest import knee_like, write_png
from tests.loaders._odd import make_odd_entries

# The published header: 9 names, 11 columns (two bracketed names hold two columns each).
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
ROWS = [
    "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143",
    "00000001_001.png,Emphysema|Cardiomegaly,1,1,58,M,PA,2894,2729,0.143,0.143",
    "00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.171,0.171",
    "00000003_000.png,Hernia,0,3,74,F,PA,2500,2048,0.168,0.168",
    "00000003_001.png,No Finding,1,3,75,F,PA,2048,2500,0.168,0.168",
]


def _dataset(root, rows=ROWS, header=HEADER, images=True):
    root.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017.csv").write_text("\n".join([header, *rows]) + "\n")
    if images:
        # The official release split over numbered folders, as extracted from its archives.
        for i, row in enumerate(rows):
            name = row.split(",")[0]
            folder = "images_001" if i < 3 else "images_002"
            write_png(root / folder / "images" / name, knee_like(i, 16))
    return root


def test_table_with_quirky_header_gives_findings_patients_views_and_sizes(tmp_path):
    root = _dataset(tmp_path / "nih")
    write_png(root / "images_002/images/00000009_000.png", knee_like(9, 16))  # not in the table
    result = NIHChestXray14Loader().load(root)
    cat = result.catalog.set_index("path")
    assert len(cat) == 5
    row = cat.loc["images_001/images/00000001_001.png"]
    assert (row.label, row.findings, row.patient_id, row.visit, row.view) == (
        "Cardiomegaly|Emphysema",
        "Cardiomegaly|Emphysema",
        "1",
        "1",
        "PA",
    )
    assert (row.columns, row.rows, row.age, row.sex, row.pixel_spacing_y) == (2894, 2729, 58, "M", 0.143)
    assert row.sample_id == make_sample_id("nih-cxr14", "images_001/images/00000001_001.png")
    assert cat["view"].value_counts().to_dict() == {"PA": 4, "AP": 1}
    assert cat.groupby("patient_id").size().to_dict() == {"1": 2, "2": 1, "3": 2}
    assert cat["label"].value_counts().to_dict() == {"No Finding": 2, "Cardiomegaly": 1, "Cardiomegaly|Emphysema": 1, "Hernia": 1}
    assert list(result.problems.itertuples(index=False, name=None)) == [
        ("image_without_row", "images_002/images/00000009_000.png", "not listed in Data_Entry_2017.csv")
    ]


def test_single_images_folder_and_official_lists_give_the_split(tmp_path):
    root = tmp_path / "nih"
    _dataset(root, images=False)
    for i, row in enumerate(ROWS):
        write_png(root / "images" / row.split(",")[0], knee_like(i, 16))
    (root / "train_val_list.txt").write_text("00000001_000.png\n00000001_001.png\n00000003_000.png\n")
    (root / "test_list.txt").write_text("00000002_000.png\n00000099_000.png\n")
    result = NIHChestXray14Loader().load(root / "Data_Entry_2017.csv")
    split = result.catalog.set_index("path")["official_split"]
    assert split.fillna("none").to_dict() == {
        "images/00000001_000.png": "train",
        "images/00000001_001.png": "train",
        "images/00000002_000.png": "test",
        "images/00000003_000.png": "train",
        "images/00000003_001.png": "none",
    }
    kinds = dict(zip(result.problems["kind"], result.problems["where"]))
    assert kinds == {"no_official_split": "images/00000003_001.png", "split_list_without_row": "test_list.txt"}


def test_missing_images_are_refused_in_one_line_unless_allowed(tmp_path):
    root = _dataset(tmp_path / "nih")
    (root / "images_002/images/00000003_001.png").unlink()
    with pytest.raises(LoaderError, match=r"1 of 5 images listed in Data_Entry_2017.csv are not under .* \(first: images/00000003_001.png\); pass allow_missing_images") as err:
        NIHChestXray14Loader().load(root)
    assert "\n" not in str(err.value)
    result = NIHChestXray14Loader().load(root, allow_missing_images=True)
    assert len(result.catalog) == 5
    assert list(result.problems["kind"]) == ["missing_images"]
    assert "1 of 5 images" in result.problems["detail"][0]


def test_trailing_comma_variant_and_no_finding_beside_findings(tmp_path):
    rows = [r + "," for r in ROWS]
    rows[2] = "00000002_000.png,No Finding|Mass,0,2,81,M,AP,2500,2048,0.171,0.171,"
    root = _dataset(tmp_path / "nih", rows=rows, header=HEADER + ",")
    result = NIHChestXray14Loader().load(root)
    cat = result.catalog.set_index("path")
    assert cat.loc["images_001/images/00000002_000.png", "findings"] == "Mass"
    assert not any(c.startswith("_unnamed") for c in cat.columns)
    assert list(result.problems["kind"]) == ["conflicting_findings"]


def test_patient_id_that_disagrees_with_the_file_name_is_reported(tmp_path):
    rows = list(ROWS)
    rows[2] = rows[2].replace(",0,2,81,", ",0,7,81,")
    result = NIHChestXray14Loader().load(_dataset(tmp_path / "nih", rows=rows))
    assert result.catalog.set_index("path").loc["images_001/images/00000002_000.png", "patient_id"] == "7"
    assert list(result.problems["kind"]) == ["patient_id_mismatch"]


def test_missing_column_names_column_and_file(tmp_path):
    header = HEADER.replace("View Position", "Projection")
    root = _dataset(tmp_path / "nih", header=header)
    with pytest.raises(CurateError, match=r"Data_Entry_2017.csv: no column 'View Position'; its columns are 'Image Index'"):
        NIHChestXray14Loader().load(root)


def test_binary_task_counts_per_label_and_view(tmp_path):
    catalog = NIHChestXray14Loader().load(_dataset(tmp_path / "nih")).catalog
    task = Task.from_dict({"target": "binary", "findings": ["Cardiomegaly"], "negative": "No Finding", "views": ["PA"]})
    labeled, problems = apply_task(catalog, task)
    assert labeled["label"].value_counts().to_dict() == {1: 2, 0: 1}
    assert sorted(problems["kind"]) == ["excluded_view", "other_finding"]


def test_real_first_40k_rows(shared_data):
    table = shared_data / "nih_cxr14_labels" / "Data_Entry_2017_first40k.csv"
    # Independent count from the raw CSV: the quirky columns come after the ones read here.
    with open(table, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    image, labels, patient = header.index("Image Index"), header.index("Finding Labels"), header.index("Patient ID")
    patients = {int(r[patient]) for r in rows}
    counts = Counter(name for r in rows for name in r[labels].split("|"))

    result = NIHChestXray14Loader().load(table, allow_missing_images=True)
    cat = result.catalog
    assert len(cat) == len(rows) == 40_000
    assert cat["patient_id"].nunique() == len(patients)
    assert set(cat["patient_id"]) == {str(p) for p in patients}
    found = Counter(name for text in cat["findings"] for name in text.split("|"))
    assert found == counts
    assert list(cat["path"]) == ["images/" + r[image] for r in rows]
    assert list(result.problems["kind"]) == ["missing_images"]
    assert result.problems["detail"][0].startswith("40,000 of 40,000 images")



def test_pipes_sockets_and_broken_links_among_the_images_are_problems_never_opened(tmp_path, deadline):
    root = _dataset(tmp_path / "nih")
    folder = "images_002/images"
    odd = {f"{folder}/{name}": kind for name, kind in make_odd_entries(root / folder, "0000009{n}_000.png").items()}
    result = NIHChestXray14Loader().load(root)
    assert len(result.catalog) == 5
    assert dict(zip(result.problems["where"], result.problems["kind"])) == odd
