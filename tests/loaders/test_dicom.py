from __future__ import annotations

import shutil

import pandas as pd
import pytest

from curate.errors import LoaderError
from curate.imaging import read_image
from curate.loaders import load
from tests.conftest import knee_like, write_dicom, write_png
from tests.loaders._odd import make_odd_entries, problems_of


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


def _write_bare_dicom(path, pixels, **tags):
    """A DICOM data set without preamble, file meta or extension, as old CR exports are (CR-MONO1-10-chest)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset

    full = write_dicom(path.with_name(path.name + ".tmp.dcm"), pixels, **tags)
    ds = pydicom.dcmread(full)
    full.unlink()
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x08\x00" and b"DICM" not in path.read_bytes()[:200]
    return path


def test_pipes_sockets_and_broken_links_are_problems_never_opened(tmp_path, deadline):
    write_dicom(tmp_path / "s1/IM0001.dcm", knee_like(0), sop_uid="1.2.3.1")
    odd = make_odd_entries(tmp_path / "s1", "{kind}.dcm")
    odd |= {f"bare/{name}": kind for name, kind in make_odd_entries(tmp_path / "s1/bare", "{kind}").items()}
    result = load("dicom", tmp_path)
    assert list(result.catalog["path"]) == ["s1/IM0001.dcm"]
    assert problems_of(result, "s1") == odd
    details = dict(zip(result.problems["where"], result.problems["detail"]))
    assert details["s1/pipe.dcm"] == "a named pipe (FIFO); not cataloged"
    assert details["s1/dangling.dcm"].startswith("a symbolic link to 'does-not-exist.dcm', which does not exist")


def test_a_folder_of_nothing_but_odd_entries_is_refused_naming_one(tmp_path, deadline):
    make_odd_entries(tmp_path / "series", "{kind}.dcm")
    with pytest.raises(LoaderError, match="no DICOM files found.*first of 6 other entries: series/"):
        load("dicom", tmp_path)


def test_dicom_without_preamble_or_extension_is_listed_and_other_files_are_reported(tmp_path):
    _write_bare_dicom(tmp_path / "CR-MONO1-10-chest", knee_like(0), patient_id="P9", modality="CR", sop_uid="1.2.9")
    _write_bare_dicom(tmp_path / "1.2.840.113619.2.55.1", knee_like(1), patient_id="P8", sop_uid="1.2.8")
    write_png(tmp_path / "IMG0002.png", knee_like(2)).rename(tmp_path / "IMG0002")  # a PNG without extension
    (tmp_path / "README").write_text("exported by PACS")
    (tmp_path / "notes.txt").write_text("reader notes")
    result = load("dicom", tmp_path)
    cat = result.catalog.set_index("path")
    assert set(cat.index) == {"CR-MONO1-10-chest", "1.2.840.113619.2.55.1"}
    assert (cat.loc["CR-MONO1-10-chest", "patient_id"], cat.loc["CR-MONO1-10-chest", "modality"]) == ("P9", "CR")
    details = {w: (k, d) for k, w, d in result.problems.itertuples(index=False, name=None)}
    assert details["IMG0002"] == ("not_dicom", "a PNG image, not DICOM; not cataloged")
    assert details["README"][0] == "not_dicom" and "does not start like a DICOM data set" in details["README"][1]
    assert details["notes.txt"][0] == "not_dicom" and "extension '.txt'" in details["notes.txt"][1]
    # what the loader lists, the decoder reads
    assert read_image(tmp_path / "CR-MONO1-10-chest").shape == (32, 32)


def test_real_preamble_less_file_without_extension_is_reported_with_a_reason(shared_data, tmp_path):
    write_dicom(tmp_path / "ok.dcm", knee_like(0))
    shutil.copy(shared_data / "dicom_samples/broken/no_meta.dcm", tmp_path / "no_meta")
    result = load("dicom", tmp_path)
    assert list(result.catalog["path"]) == ["ok.dcm"]
    row = result.problems.set_index("where").loc["no_meta"]
    assert row["kind"] == "not_dicom" and "DICOM" in row["detail"]


@pytest.fixture
def two_series(tmp_path):
    """Two series that both hold IM0001.dcm, as DICOM exports do."""
    root = tmp_path / "export"
    write_dicom(root / "S1/IM0001.dcm", knee_like(0), patient_id="P1", sop_uid="1.2.3.1")
    write_dicom(root / "S1/IM0002.dcm", knee_like(1), patient_id="P1", sop_uid="1.2.3.2")
    write_dicom(root / "S2/IM0001.dcm", knee_like(2), patient_id="P2", sop_uid="1.2.3.3")
    return root


def test_a_file_name_held_by_two_series_is_refused_naming_the_name_and_the_files(two_series, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"filename": ["IM0001.dcm", "IM0002.dcm"], "label": ["a", "b"]}).to_csv(labels, index=False)
    with pytest.raises(LoaderError) as err:
        load("dicom", two_series, labels=labels)
    message = str(err.value)
    assert "\n" not in message and "'IM0001.dcm'" in message
    assert "S1/IM0001.dcm" in message and "S2/IM0001.dcm" in message and "'path'" in message


def test_a_name_two_series_share_is_fine_when_no_label_row_uses_it(two_series, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"filename": ["IM0002.dcm"], "label": ["b"]}).to_csv(labels, index=False)
    cat = load("dicom", two_series, labels=labels).catalog.set_index("path")
    assert cat.loc["S1/IM0002.dcm", "label"] == "b" and cat["label"].isna().sum() == 2


def test_the_path_key_is_unique(two_series, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"path": ["S1/IM0001.dcm", "S2/IM0001.dcm"], "label": ["a", "c"]}).to_csv(labels, index=False)
    result = load("dicom", two_series, labels=labels, key="path")
    cat = result.catalog.set_index("path")
    assert (cat.loc["S1/IM0001.dcm", "label"], cat.loc["S2/IM0001.dcm", "label"]) == ("a", "c")
    assert list(result.problems["kind"]) == ["image_without_label"]


def test_a_sop_uid_held_by_two_files_is_refused(two_series, tmp_path):
    write_dicom(two_series / "copy/IM0009.dcm", knee_like(3), patient_id="P1", sop_uid="1.2.3.2")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"sop_uid": ["1.2.3.2"], "label": ["b"]}).to_csv(labels, index=False)
    with pytest.raises(LoaderError, match=r"'1\.2\.3\.2' names 2 files \(S1/IM0002\.dcm, copy/IM0009\.dcm\).*'path'"):
        load("dicom", two_series, labels=labels, key="sop_uid")


def test_labels_by_patient_id_label_every_file_of_the_patient(two_series, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"patient_id": ["P1", "P7"], "label": ["fracture", "normal"]}).to_csv(labels, index=False)
    result = load("dicom", two_series, labels=labels, key="patient_id")
    cat = result.catalog.set_index("path")
    assert list(cat.loc[["S1/IM0001.dcm", "S1/IM0002.dcm"], "label"]) == ["fracture", "fracture"]
    assert pd.isna(cat.loc["S2/IM0001.dcm", "label"])
    assert set(zip(result.problems["kind"], result.problems["where"])) == {
        ("image_without_label", "S2/IM0001.dcm"),
        ("label_without_image", "labels.csv: P7"),
    }
