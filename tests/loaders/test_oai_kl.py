from __future__ import annotations

import pytest

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.loaders import load
from tests.conftest import knee_like, write_dicom, write_png
from tests.loaders._odd import make_odd_entries, problems_of


def _layout(root, files):
    for i, rel in enumerate(files):
        write_png(root / rel, knee_like(i))
    return root


def test_split_grade_layout_gives_grade_patient_side_and_split(tmp_path):
    root = _layout(tmp_path, ["train/0/9000001L.png", "train/3/9000001R.png", "test/4/9000002L.png", "val/valid_is_not_here/x.png"])
    result = load("oai-kl", root)
    cat = result.catalog.set_index("path")
    assert len(cat) == 3
    row = cat.loc["train/3/9000001R.png"]
    assert (row.label, row.patient_id, row.side, row.official_split) == (3, "9000001", "R", "train")
    assert row.sample_id == make_sample_id("oai-kl", "train/3/9000001R.png")
    assert cat.loc["test/4/9000002L.png"].official_split == "test"
    assert list(result.problems["kind"]) == ["unexpected_entry"]


def test_grade_folders_without_split_level(tmp_path):
    root = _layout(tmp_path, ["0/9000001L.png", "2/9000001R.png", "2/9000003R.png"])
    cat = load("oai-kl", root).catalog
    assert sorted(cat["label"]) == [0, 2, 2]
    assert cat["official_split"].isna().all()


def test_bad_names_and_extensions_are_reported_not_dropped_silently(tmp_path):
    root = _layout(tmp_path, ["train/1/9000001L.png", "train/1/scan_0001.png"])
    (root / "train/1/notes.txt").write_text("reader notes")
    result = load("oai-kl", root)
    assert len(result.catalog) == 1
    kinds = dict(zip(result.problems["where"], result.problems["kind"]))
    assert kinds == {"train/1/scan_0001.png": "unparsed_name", "train/1/notes.txt": "not_an_image_name"}


def test_dicom_files_in_the_layout_carry_their_header_fields(tmp_path):
    write_dicom(tmp_path / "train/2/9000001L.dcm", knee_like(0), laterality="R", photometric="MONOCHROME1", modality="CR")
    row = load("oai-kl", tmp_path).catalog.iloc[0]
    assert (row.side, row.laterality, row.photometric, row.modality, row.body_part) == ("L", "R", "MONOCHROME1", "CR", "KNEE")
    assert (row.rows, row.columns) == (32, 32)


def test_folder_without_the_layout_is_refused(tmp_path):
    _layout(tmp_path, ["images/a.png"])
    with pytest.raises(LoaderError, match="expected split folders .* or grade folders"):
        load("oai-kl", tmp_path)


def test_real_sample_gives_587_rows_with_correct_fields(shared_data):
    root = shared_data / "knee_kl_sample"
    result = load("oai-kl", root)
    cat = result.catalog
    assert len(cat) == 587 and result.problems.empty
    files = sorted(root.glob("*/*/*.png"))
    expected = {f.relative_to(root).as_posix(): f for f in files}
    assert set(cat["path"]) == set(expected)
    for row in cat.itertuples():
        split, grade, name = row.path.split("/")
        assert (row.official_split, row.label) == (split, int(grade))
        assert row.patient_id + row.side == name.removesuffix(".png")
    by_split = cat.groupby("official_split").size().to_dict()
    assert by_split == {"train": 200, "val": 187, "test": 200}
    # the published split is patient-level: no participant in two splits
    assert cat.groupby("patient_id")["official_split"].nunique().max() == 1


def test_pipes_sockets_and_broken_links_are_problems_never_opened(tmp_path, deadline):
    root = _layout(tmp_path, ["train/1/9000001L.png"])
    # named as knees, so only their being no file keeps them out of the catalog
    odd = {f"train/1/{name}": kind for name, kind in make_odd_entries(root / "train/1", "900010{n}L.png").items()}
    odd |= {f"train/{name}": kind for name, kind in make_odd_entries(root / "train", "{kind}").items()}
    odd |= make_odd_entries(root, "top_{kind}.png")
    result = load("oai-kl", root)
    assert list(result.catalog["path"]) == ["train/1/9000001L.png"]
    assert problems_of(result) == odd
