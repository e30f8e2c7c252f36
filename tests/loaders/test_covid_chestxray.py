from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate.errors import CurateError, LoaderError
from curate.imaging import read_image
from curate.loaders.covid_chestxray import CovidChestXrayLoader
from curate.tasks import Task, TaskError, apply_task
from tests.conftest import knee_like, write_png
from tests.loaders._odd import make_odd_entries

COLUMNS = [
    "patientid", "offset", "sex", "age", "finding", "RT_PCR_positive", "survival", "intubated", "view",
    "modality", "date", "location", "folder", "filename", "doi", "url", "license", "clinical_notes", "other_notes",
]
# patientid, offset, finding, view, modality, folder, filename
ROWS = [
    ("2", "0", "Pneumonia/Viral/COVID-19", "PA", "X-ray", "images", "a.jpeg"),
    ("2", "3", "Pneumonia/Viral/COVID-19", "AP Supine", "X-ray", "images", "b.jpeg"),
    ("183a", "", "Pneumonia/Bacterial/Streptococcus", "L", "X-ray", "images", "c.png"),
    ("17", "9", "Pneumonia/Viral/COVID-19", "Axial", "CT", "images", "d.jpg"),
    ("40", "", "No Finding", "PA", "X-ray", "images", "e.png"),
    ("41", "", "todo", "AP", "X-ray", "images", "f.png"),
    ("42", "", "Tuberculosis", "PA", "X-ray", "images", "gone.png"),
    ("43", "1", "Pneumonia/Viral/SARS", "AP", "X-ray", "images", "g.jpg"),
]


def _dataset(root, rows=ROWS, columns=COLUMNS):
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for pid, offset, finding, view, modality, folder, filename in rows:
        record = dict.fromkeys(columns, "")
        record.update(patientid=pid, offset=offset, finding=finding, view=view, modality=modality, folder=folder,
                      filename=filename, sex="M", RT_PCR_positive="Y")
        records.append(record)
        if filename != "gone.png":
            write_png(root / folder / filename, knee_like(len(records), 16))
    write_png(root / "images" / "unlisted.png", knee_like(99, 16))
    # The published header ends with a comma: an empty last column.
    text = pd.DataFrame(records, columns=[c for c in columns if c in COLUMNS]).to_csv(index=False)
    lines = text.splitlines()
    (root / "metadata.csv").write_text("\n".join(line + "," for line in lines) + "\n")
    return root


def test_metadata_gives_xray_rows_with_views_patients_and_problems(tmp_path):
    result = CovidChestXrayLoader().load(_dataset(tmp_path / "covid"))
    cat = result.catalog.set_index("path")
    assert sorted(cat.index) == ["images/a.jpeg", "images/b.jpeg", "images/c.png", "images/e.png", "images/f.png", "images/g.jpg"]
    row = cat.loc["images/b.jpeg"]
    assert (row.patient_id, row.visit, row.view, row.view_raw, row.modality_raw) == ("2", "3", "AP", "AP Supine", "X-ray")
    assert pd.isna(row.modality)  # X-ray may be CR or DX: no DICOM code to check it against
    assert (row.label, row.findings, row.rt_pcr_positive, row.sex) == ("Pneumonia/Viral/COVID-19",) * 2 + ("Y", "M")
    assert cat.loc["images/c.png", "patient_id"] == "183a" and cat.loc["images/c.png", "view"] == "LATERAL"
    assert pd.isna(cat.loc["images/f.png", "label"])
    assert cat["patient_id"].nunique() == 5
    assert not any(c.startswith("unnamed") for c in cat.columns)
    assert sorted(zip(result.problems["kind"], result.problems["where"])) == [
        ("excluded_modality", "images/d.jpg"),
        ("image_without_row", "images/unlisted.png"),
        ("missing_file", "images/gone.png"),
        ("no_finding_label", "images/f.png"),
    ]


def test_modalities_option_keeps_ct(tmp_path):
    result = CovidChestXrayLoader().load(_dataset(tmp_path / "covid"), modalities=("X-ray", "ct"))
    cat = result.catalog.set_index("path")
    assert cat.loc["images/d.jpg", "modality"] == "CT" and cat.loc["images/d.jpg", "view"] == "AXIAL"
    assert "excluded_modality" not in set(result.problems["kind"])


def test_wrong_folder_and_missing_column_are_refused(tmp_path):
    root = _dataset(tmp_path / "covid")
    for path in (root / "images").iterdir():
        path.unlink()
    with pytest.raises(LoaderError, match=r"none of the 7 files it lists exists"):
        CovidChestXrayLoader().load(root)
    other = _dataset(tmp_path / "other", columns=[c for c in COLUMNS if c != "modality"])
    with pytest.raises(CurateError, match=r"metadata.csv: no column 'modality'; its columns are 'patientid'"):
        CovidChestXrayLoader().load(other / "metadata.csv")


def test_tasks_match_sub_findings_of_the_hierarchy(tmp_path):
    catalog = CovidChestXrayLoader().load(_dataset(tmp_path / "covid")).catalog
    viral = Task.from_dict({"target": "binary", "findings": "Pneumonia/Viral", "negative": "rest", "frontal_only": True})
    labeled, problems = apply_task(catalog, viral)
    assert labeled.set_index("path")["label"].to_dict() == {"images/a.jpeg": 1, "images/b.jpeg": 1, "images/e.png": 0, "images/g.jpg": 1}
    assert sorted(problems["kind"]) == ["excluded_view", "no_findings"]
    covid = Task.from_dict({"target": "multiclass", "findings": ["Pneumonia/Viral/COVID-19", "Pneumonia/Bacterial", "No Finding"]})
    labeled, problems = apply_task(catalog, covid)
    assert labeled["label"].value_counts().to_dict() == {"Pneumonia/Viral/COVID-19": 2, "Pneumonia/Bacterial": 1, "No Finding": 1}
    assert dict(zip(problems["where"], problems["kind"])) == {"images/f.png": "no_findings", "images/g.jpg": "no_target_finding"}
    with pytest.raises(TaskError, match=r"finding 'COVID-19' is not in the catalog; its findings are No Finding, Pneumonia, Pneumonia/Bacterial"):
        apply_task(catalog, Task.from_dict({"target": "binary", "findings": "COVID-19", "negative": "rest"}))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_rgb_chest_image_that_is_really_gray_is_read_as_gray(tmp_path, mode):
    # Chest-like: dark lungs either side of a bright mediastinum, saved as colour like many covid images.
    y, x = np.mgrid[0:64, 0:64]
    gray = (90 + 120 * np.exp(-((x - 32) ** 2) / 60.0) + 20 * np.sin(y / 6.0)).clip(0, 255).astype(np.uint8)
    channels = [gray] * 3 + ([np.full_like(gray, 255)] if mode == "RGBA" else [])
    path = tmp_path / "images" / f"chest_{mode}.png"
    path.parent.mkdir()
    Image.fromarray(np.stack(channels, axis=-1), mode=mode).save(path)
    image = read_image(path)
    assert image.facts.color == "gray-in-rgb" and image.pixels.ndim == 2
    np.testing.assert_allclose(image.pixels, gray / 255.0, atol=1e-6)


def test_pipes_sockets_and_broken_links_listed_or_not_are_problems_never_opened(tmp_path, deadline):
    listed = ("99", "", "No Finding", "PA", "X-ray", "images", "pipe.png")  # a row naming the pipe
    root = _dataset(tmp_path / "covid", rows=[*ROWS, listed])
    (root / "images/pipe.png").unlink()
    odd = {f"images/{name}": kind for name, kind in make_odd_entries(root / "images").items()}
    result = CovidChestXrayLoader().load(root)
    assert "images/pipe.png" not in set(result.catalog["path"])
    found = dict(zip(result.problems["where"], result.problems["kind"]))
    assert {where: found.get(where) for where in odd} == odd
    assert list(result.problems["where"]).count("images/pipe.png") == 1  # listed: reported once, as listed
