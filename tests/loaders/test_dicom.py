from __future__ import annotations

import pandas as pd
import pytest

from curate.errors import LoaderError
from curate.loaders import load
from tests.conftest import knee_like, write_dicom


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    write_dicom(root / "p1/0001", knee_like(0), patient_id="P1", sop_uid="1.2.3.1", laterality="L")
    write_dicom(root / "p2/a.dcm", knee_like(1), patient_id="P2", sop_uid="1.2.3.2", modality="CR")
    (root / "p2/readme.txt").write_text("not dicom")
    (root / "p3").mkdir()
    (root / "p3/broken.dcm").write_bytes(b"")
    return root


def test_headers_become_catalog_fields_and_unreadable_files_are_kept_and_reported(archive):
    result = load("dicom", archive)
    cat = result.catalog.set_index("path")
    assert set(cat.index) == {"p1/0001", "p2/a.dcm", "p3/broken.dcm"}
    assert cat.loc["p1/0001", "patient_id"] == "P1" and cat.loc["p1/0001", "laterality"] == "L"
    assert cat.loc["p2/a.dcm", "modality"] == "CR" and cat["label"].isna().all()
    kinds = set(zip(result.problems["kind"], result.problems["where"]))
    assert ("unreadable_header", "p3/broken.dcm") in kinds and ("missing_patient_id", "p3/broken.dcm") in kinds


def test_labels_joined_by_sop_uid_with_unmatched_rows_reported(archive, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"uid": ["1.2.3.1", "1.2.3.9"], "finding": ["normal", "fracture"]}).to_csv(labels, index=False)
    result = load("dicom", archive, labels=labels, key="sop_uid", key_col="uid", label_col="finding")
    cat = result.catalog.set_index("path")
    assert cat.loc["p1/0001", "label"] == "normal" and pd.isna(cat.loc["p2/a.dcm", "label"])
    kinds = result.problems.groupby("kind").size().to_dict()
    assert kinds["label_without_image"] == 1 and kinds["image_without_label"] == 2


def test_label_from_a_tag(archive):
    cat = load("dicom", archive, label_tag="Modality").catalog.set_index("path")
    assert cat.loc["p2/a.dcm", "label"] == "CR" and cat.loc["p1/0001", "label"] == "DX"


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(LoaderError, match="no DICOM files found"):
        load("dicom", tmp_path)


def test_real_dicom_samples_ingest(shared_data):
    result = load("dicom", shared_data / "dicom_samples")
    cat = result.catalog.set_index("path")
    assert len(cat) == 7
    assert cat.loc["radiographs/RG1_J2KI.dcm", "photometric"] == "MONOCHROME1"
    assert cat.loc["radiographs/nih_cxr_dx.dcm", "modality"] == "DX"
