"""The `oai` loader: KL tables joined to the OAI image archive or to a pattern-named image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curate.catalog import make_sample_id, parse_crop
from curate.errors import LoaderError
from curate.imaging import read_image
from curate.loaders.oai import OAILoader
from tests.conftest import write_dicom, write_png
from tests.loaders._odd import make_odd_entries

KNEE_SERIES = "Bilateral PA Fixed Flexion Knee"
MISSING = ".: Missing Form/Incomplete Workbook"

# Baseline table: duplicate readings across projects 15/37/42, a same-project
# disagreement (9000003 R: 37 says 2, 42 says 3), a missing cell (9000003 L) and a
# graded knee that has no image (9000004 R).
BU00 = f"""ID|SIDE|READPRJ|VERSION|V00XRKL|V00XRJSM
9000001|1|15|1.2|2|1
9000001|2|15|1.2|1|0
9000001|1|37|2.0|3|1
9000002|1|15|1.2|0|0
9000002|2|15|1.2|1|0
9000002|2|42|2.1|4|2
9000003|1|37|2.0|2|1
9000003|1|42|2.1|3|1
9000003|2|15|1.2|{MISSING}|
9000004|1|15|1.2|1|0
"""
# 12-month table, lower-case header: 9000002 R has a grade outside 0-4.
BU01 = """id|side|readprj|v01xrkl
9000001|1|15|2
9000001|2|15|2
9000002|1|15|7
9000002|2|15|1
"""


def write_tables(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kxr_sq_bu00.txt").write_text(BU00)
    (folder / "kxr_sq_bu01.txt").write_text(BU01)


def bilateral(rows: int = 64, columns: int = 128) -> np.ndarray:
    """A 'radiograph' whose left half is bright and right half dark, so each knee's crop is recognizable."""
    pixels = np.full((rows, columns), 100, dtype=np.uint16)
    pixels[:, : columns // 2] = 4000
    return pixels


def contents_row(folder: str, participant: str, series: str) -> str:
    return f"{folder},{participant},20040909,0160{participant[-2:]},OAI^Knee,{series}"


def write_visit(root: Path, visit_folder: str, series: list[tuple[str, str, str]]) -> None:
    """A visit folder of the archive: ``series`` is (participant, SeriesDescription, kind) with
    kind "image" (a DICOM without extension in the folder), "missing" (no folder) or "empty"."""
    lines = ["Folder,ParticipantID,StudyDate,Barcode,StudyDescription,SeriesDescription"]
    for n, (participant, description, kind) in enumerate(series):
        folder = f"1.C.2/{participant}/20040909/{10000 + n}"
        lines.append(contents_row(folder, participant, description))
        if kind == "image":
            write_dicom(root / visit_folder / folder / "001", bilateral(), patient_id=participant,
                        sop_uid=f"1.2.3.{n}.{participant}")
        elif kind == "empty":
            (root / visit_folder / folder).mkdir(parents=True)
    (root / visit_folder).mkdir(parents=True, exist_ok=True)
    (root / visit_folder / "contents.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def archive(tmp_path) -> Path:
    root = tmp_path / "oai"
    write_tables(root / "tables")
    write_visit(root, "OAI_00m", [
        ("9000001", KNEE_SERIES, "image"),
        ("9000001", "PA Right Hand", "image"),
        ("9000002", KNEE_SERIES, "image"),
        ("9000002", "AP Pelvis", "image"),
        ("9000003", KNEE_SERIES, "image"),
        ("9000005", KNEE_SERIES, "missing"),
        ("9000006", KNEE_SERIES, "empty"),
    ])
    write_visit(root, "OAI_12m", [
        ("9000001", KNEE_SERIES, "image"),
        ("9000002", KNEE_SERIES, "image"),
    ])
    return root


def labels(catalog: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    return {(r.patient_id, r.side, r.visit): int(r.label) for r in catalog.itertuples()}


def kinds(problems: pd.DataFrame) -> dict[str, int]:
    return problems["kind"].value_counts().to_dict()


def problem_rows(problems: pd.DataFrame, kind: str) -> pd.DataFrame:
    return problems[problems["kind"] == kind]


# --------------------------------------------------------------------------- image archive


def test_archive_gives_one_row_per_graded_knee_with_the_newest_project_grade(archive):
    result = OAILoader().load(archive)
    assert labels(result.catalog) == {
        ("9000001", "R", "00"): 3,  # project 37 re-read the 15 reading of 2
        ("9000001", "L", "00"): 1,
        ("9000002", "R", "00"): 0,
        ("9000002", "L", "00"): 4,  # project 42 counts as 37, newer than 15
        ("9000001", "R", "01"): 2,
        ("9000001", "L", "01"): 2,
        ("9000002", "L", "01"): 1,
    }
    catalog = result.catalog
    assert set(catalog["source"]) == {"oai"}
    assert catalog["label"].dtype == "Int64"
    assert result.data_root == archive.resolve()


def test_other_series_of_the_archive_are_ignored(archive):
    result = OAILoader().load(archive)
    knee_folders = {p.rsplit("/", 1)[0] for p in result.catalog["path"]}
    assert len(knee_folders) == 4  # 9000001 and 9000002 at 00m and 12m: no hand, no pelvis
    hand, pelvis = "OAI_00m/1.C.2/9000001/20040909/10001", "OAI_00m/1.C.2/9000002/20040909/10003"
    assert (archive / hand / "001").is_file() and (archive / pelvis / "001").is_file()
    everything = " ".join(result.problems["where"]) + " ".join(result.problems["detail"])
    assert hand not in everything and pelvis not in everything


def test_each_knee_is_cropped_from_the_correct_half_of_the_bilateral_image(archive):
    catalog = OAILoader().load(archive).catalog
    for row in catalog.itertuples():
        pixels = read_image(archive / row.path, crop=parse_crop(row.crop)).pixels
        assert pixels.shape == (64, 64)
        # PA view: the right knee (SIDE 1) is on the image's LEFT half, the bright one here.
        if row.side == "R":
            assert row.crop == "0,0,64,64" and pixels.mean() > 0.9
        else:
            assert row.crop == "64,0,128,64" and pixels.mean() < 0.1


def test_archive_rows_carry_paths_ids_and_header_fields(archive):
    catalog = OAILoader().load(archive).catalog
    row = catalog.set_index(["patient_id", "side", "visit"]).loc[("9000001", "R", "00")]
    assert row["path"] == "OAI_00m/1.C.2/9000001/20040909/10000/001"
    assert row["sample_id"] == make_sample_id("oai", row["path"], part="R")
    assert (row["rows"], row["columns"], row["bits_stored"]) == (64, 128, 12)
    assert (row["modality"], row["body_part"], row["photometric"]) == ("DX", "KNEE", "MONOCHROME2")
    assert pd.isna(row["laterality"])
    assert "official_split" not in catalog.columns
    # The two knees of one file are two samples with their own ids.
    assert catalog["sample_id"].is_unique
    assert catalog["path"].value_counts().max() == 2
    assert catalog[catalog["visit"] == "00"]["path"].value_counts().eq(2).all()


def test_sample_ids_are_the_same_on_every_run(archive):
    first = OAILoader().load(archive).catalog
    second = OAILoader().load(archive).catalog
    assert first["sample_id"].tolist() == second["sample_id"].tolist()


def test_knees_without_image_or_grade_and_bad_series_folders_are_reported(archive):
    problems = OAILoader().load(archive).problems
    where = {kind: set(problem_rows(problems, kind)["where"]) for kind in kinds(problems)}
    assert where["grade_without_image"] == {"participant 9000004 R knee visit 00"}
    assert where["image_without_grade"] == {
        "OAI_00m/1.C.2/9000003/20040909/10004/001",  # 9000003 L: the cell says "Missing Form"
        "OAI_12m/1.C.2/9000002/20040909/10001/001",  # 9000002 R at 12 m: grade 7 is not a KL grade
    }
    assert where["missing_series_folder"] == {"OAI_00m/1.C.2/9000005/20040909/10005"}
    assert where["empty_series_folder"] == {"OAI_00m/1.C.2/9000006/20040909/10006"}
    assert where["grade_out_of_range"] == {"tables/kxr_sq_bu01.txt line 4"}


def test_same_project_disagreement_is_reported_and_the_knee_left_out(archive):
    result = OAILoader().load(archive)
    conflicts = problem_rows(result.problems, "conflicting_readings")
    assert conflicts["where"].tolist() == ["participant 9000003 R knee visit 00"]
    detail = conflicts["detail"].iloc[0]
    assert "KL 2" in detail and "KL 3" in detail and "left out" in detail
    assert ("9000003", "R", "00") not in labels(result.catalog)
    # Reported once, not again as an image without grade.
    assert not problem_rows(result.problems, "image_without_grade")["detail"].str.contains("9000003 R").any()


def test_missing_grade_codes_are_no_grade_not_a_problem_of_their_own(archive):
    problems = OAILoader().load(archive).problems
    assert "unreadable_grade" not in kinds(problems)


def test_visits_option_restricts_the_catalog(archive):
    result = OAILoader().load(archive, visits=["12m"])
    assert set(result.catalog["visit"]) == {"01"}
    assert len(result.catalog) == 3
    assert "grade_without_image" not in kinds(result.problems)  # visit 00 was not asked for


def test_visits_without_any_image_is_refused(archive):
    with pytest.raises(LoaderError, match="no knee has both an image and a KL grade.*visits 03"):
        OAILoader().load(archive, visits=["24m"])


def test_visit_graded_but_without_images_is_summarized_once(archive):
    shutil.rmtree(archive / "OAI_12m")
    result = OAILoader().load(archive)
    summary = problem_rows(result.problems, "visit_without_images")
    assert summary["where"].tolist() == ["visit 01"]
    assert summary["detail"].iloc[0].startswith("3 graded knees")  # 9000002 R's 7 is no grade
    assert set(result.catalog["visit"]) == {"00"}


def test_newest_project_with_a_grade_wins_when_the_newest_has_none(tmp_path):
    root = tmp_path / "oai"
    root.mkdir()
    (root / "kxr_sq_bu00.txt").write_text(
        f"ID|SIDE|READPRJ|V00XRKL\n9000001|1|15|2\n9000001|1|37|{MISSING}\n9000001|2|42|1\n9000001|2|37|1\n"
    )
    write_visit(root, "00m", [("9000001", KNEE_SERIES, "image")])
    result = OAILoader().load(root)
    assert labels(result.catalog) == {("9000001", "R", "00"): 2, ("9000001", "L", "00"): 1}
    assert result.problems.empty  # agreeing 37/42 readings are merged silently


def test_series_option_selects_another_series(archive):
    result = OAILoader().load(archive, series="PA Right Hand", visits=["00"])
    assert labels(result.catalog) == {("9000001", "R", "00"): 3, ("9000001", "L", "00"): 1}


def test_archive_folder_without_a_visit_in_its_name_is_reported_or_takes_the_visit_option(archive):
    (archive / "OAI_12m").rename(archive / "extra_batch")
    result = OAILoader().load(archive)
    unknown = problem_rows(result.problems, "unknown_visit_folder")
    assert unknown["where"].tolist() == ["extra_batch/contents.csv"]
    assert set(result.catalog["visit"]) == {"00"}
    # With the option, the folder's images are that visit (the OAI_00m folder keeps its own).
    result = OAILoader().load(archive, visit="12m")
    assert set(result.catalog["visit"]) == {"00", "01"}


# --------------------------------------------------------------------------- crops CSV


def test_crops_csv_overrides_the_halves(archive):
    path_r = "OAI_00m/1.C.2/9000001/20040909/10000/001"
    (archive / "crops.csv").write_text(
        "path,id,visit,side,x0,y0,x1,y1\n"
        f"{path_r},,,R,4,8,36,40\n"  # by path
        ",9000001,V00,L,70,8,102,40\n"  # by participant and visit
        ",9000002,00m,L,100,0,200,64\n"  # outside the 128x64 image: the half stays
        ",9999999,00,R,0,0,10,10\n"  # no such knee
    )
    result = OAILoader().load(archive, crops="crops.csv", visits=["00"])
    crops = {(r.patient_id, r.side): r.crop for r in result.catalog.itertuples()}
    assert crops == {
        ("9000001", "R"): "4,8,36,40",
        ("9000001", "L"): "70,8,102,40",
        ("9000002", "R"): "0,0,64,64",
        ("9000002", "L"): "64,0,128,64",
    }
    # The user's box is what read_image crops.
    assert read_image(archive / path_r, crop=parse_crop(crops[("9000001", "R")])).pixels.shape == (32, 32)
    found = kinds(result.problems)
    assert found["bad_crop"] == 1 and found["unused_crop"] == 1
    no_box = set(problem_rows(result.problems, "no_crop_for_knee")["where"])
    assert no_box == {"OAI_00m/1.C.2/9000002/20040909/10002/001 (R knee)"}


def test_crops_csv_without_its_columns_is_refused(archive):
    (archive / "crops.csv").write_text("file,knee,box\na,R,1\n")
    with pytest.raises(LoaderError, match=r"crops\.csv.*'side'.*'x0'"):
        OAILoader().load(archive, crops=archive / "crops.csv")


# --------------------------------------------------------------------------- image folder


def test_pattern_mode_with_one_image_per_knee(tmp_path):
    root = tmp_path / "knees"
    write_tables(root)
    knee = np.full((32, 24), 128, dtype=np.uint8)
    for name in ("9000001_V00_R.png", "9000001_00_L.png", "9000002_12m_L.png", "9000002_24m_R.png"):
        write_png(root / "png" / name, knee)
    write_png(root / "png" / "thumbnail.png", knee)
    result = OAILoader().load(root, pattern="png/{id}_{visit}_{side}.png")
    assert labels(result.catalog) == {
        ("9000001", "R", "00"): 3,
        ("9000001", "L", "00"): 1,
        ("9000002", "L", "01"): 1,
    }
    catalog = result.catalog
    assert catalog["crop"].isna().all()  # the whole image is the knee
    assert set(catalog["columns"]) == {24} and set(catalog["rows"]) == {32}
    row = catalog[catalog["path"] == "png/9000001_V00_R.png"].iloc[0]
    assert row["sample_id"] == make_sample_id("oai", "png/9000001_V00_R.png", part="R")
    found = kinds(result.problems)
    assert set(problem_rows(result.problems, "unmatched_file")["where"]) == {"png/thumbnail.png"}
    assert set(problem_rows(result.problems, "image_without_grade")["where"]) == {"png/9000002_24m_R.png"}
    assert found["grade_without_image"] == 5  # the other graded knees of visits 00 and 01
    assert "visit_without_images" not in found  # every graded visit has images here


def test_second_image_of_a_knee_is_reported_not_cataloged_twice(tmp_path):
    root = tmp_path / "knees"
    write_tables(root)
    for name in ("9000001_00_R.png", "9000001_V00_R.png", "9000001_07_R.png"):
        write_png(root / name, np.zeros((8, 8), dtype=np.uint8))
    result = OAILoader().load(root, pattern="{id}_{visit}_{side}.png")
    assert result.catalog["path"].tolist() == ["9000001_00_R.png"]
    assert set(problem_rows(result.problems, "duplicate_image")["where"]) == {"9000001_V00_R.png"}
    assert set(problem_rows(result.problems, "unmatched_file")["where"]) == {"9000001_07_R.png"}  # no visit 07


def test_pattern_mode_with_bilateral_images_splits_them_into_halves(tmp_path):
    root = tmp_path / "bilateral"
    write_tables(root / "tables")
    pixels = np.zeros((40, 80), dtype=np.uint8)
    pixels[:, :40] = 255  # left half bright
    for participant in ("9000001", "9000002"):
        write_png(root / "images" / f"{participant}.png", pixels)
    result = OAILoader().load(root, pattern="images/{id}.png")
    assert labels(result.catalog) == {
        ("9000001", "R", "00"): 3,
        ("9000001", "L", "00"): 1,
        ("9000002", "R", "00"): 0,
        ("9000002", "L", "00"): 4,
    }
    for row in result.catalog.itertuples():
        crop = read_image(root / row.path, crop=parse_crop(row.crop)).pixels
        assert crop.shape == (40, 40)
        assert crop.mean() == (1.0 if row.side == "R" else 0.0)
    # Only the images' visit is compared with the tables; visit 01 is summarized.
    assert problem_rows(result.problems, "visit_without_images")["where"].tolist() == ["visit 01"]


def test_visit_option_names_the_visit_of_a_pattern_without_visit(tmp_path):
    root = tmp_path / "bilateral12"
    write_tables(root)
    write_png(root / "9000001.png", np.zeros((10, 20), dtype=np.uint8))
    result = OAILoader().load(root, pattern="{id}.png", visit="12m")
    assert labels(result.catalog) == {("9000001", "R", "01"): 2, ("9000001", "L", "01"): 2}


def test_pattern_mode_reads_bilateral_dicoms_and_id_side_names(tmp_path):
    root = tmp_path / "mixed"
    write_tables(root)
    write_dicom(root / "dicom" / "9000002_00.dcm", bilateral())
    write_png(root / "knees" / "9000001R.png", np.zeros((8, 8), dtype=np.uint8))
    bilateral_result = OAILoader().load(root, pattern="dicom/{id}_{visit}.dcm")
    crops = {r.side: r.crop for r in bilateral_result.catalog.itertuples()}
    assert crops == {"R": "0,0,64,64", "L": "64,0,128,64"}
    single = OAILoader().load(root, pattern="knees/{id}{side}.png")
    assert labels(single.catalog) == {("9000001", "R", "00"): 3}


def test_real_public_knee_images_join_a_table_of_their_grades(shared_data, tmp_path):
    """The public Chen (2018) sample, named <id><L|R>.png under split/grade folders, read with a
    wildcard pattern and joined to a KL table written from its own grade folders."""
    sample = shared_data / "knee_kl_sample"
    images = sorted(sample.glob("*/[0-4]/*.png"))
    table = tmp_path / "kxr_sq_bu00.txt"
    lines = ["ID|SIDE|READPRJ|V00XRKL"]
    lines += [f"{p.stem[:-1]}|{1 if p.stem[-1] == 'R' else 2}|15|{p.parent.name}" for p in images]
    table.write_text("\n".join(lines) + "\n")
    result = OAILoader().load(sample, pattern="*/*/{id}{side}.png", kl_tables=[table])
    catalog = result.catalog
    assert len(catalog) == len(images)
    assert (catalog["label"].astype(str) == catalog["path"].str.split("/").str[1]).all()
    assert set(catalog["visit"]) == {"00"} and catalog["crop"].isna().all()
    assert set(catalog["columns"]) == {224}
    assert result.problems.empty


# --------------------------------------------------------------------------- bad input


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(LoaderError, match="no such file or folder"):
        OAILoader().load(tmp_path / "nowhere")


def test_table_without_required_column_names_the_file_and_column(archive):
    (archive / "tables" / "kxr_sq_bu00.txt").write_text("ID|SIDE|V00XRKL\n9000001|1|2\n")
    with pytest.raises(LoaderError, match=r"kxr_sq_bu00\.txt.*'READPRJ'") as info:
        OAILoader().load(archive)
    assert "\n" not in str(info.value)


def test_no_kl_table_is_refused(tmp_path):
    root = tmp_path / "oai"
    write_visit(root, "OAI_00m", [("9000001", KNEE_SERIES, "image")])
    with pytest.raises(LoaderError, match="no KL table"):
        OAILoader().load(root)


def test_kl_tables_option_names_tables_outside_source(archive, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (archive / "tables").rename(elsewhere)
    result = OAILoader().load(archive, kl_tables=[elsewhere / "kxr_sq_bu00.txt"])
    assert set(result.catalog["visit"]) == {"00"}


def test_pattern_matching_nothing_names_pattern_and_folder(tmp_path):
    root = tmp_path / "knees"
    write_tables(root)
    write_png(root / "a.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(LoaderError, match=r"'\{id\}_\{side\}\.jpg' matches no file under .*knees"):
        OAILoader().load(root, pattern="{id}_{side}.jpg")


def test_folder_without_archive_or_pattern_is_refused(tmp_path):
    root = tmp_path / "knees"
    write_tables(root)
    with pytest.raises(LoaderError, match="contents.csv.*'pattern'"):
        OAILoader().load(root)


def test_unknown_visit_value_is_refused(archive):
    with pytest.raises(LoaderError, match="'visits'.*'18'"):
        OAILoader().load(archive, visits=["18"])


def test_sas_tables_read_like_text_tables(archive, monkeypatch):
    """SAS numbers arrive as floats: ids and grades must read the same as in the text files."""
    sas = archive / "tables" / "kxr_sq_bu00.sas7bdat"
    sas.write_bytes(b"not really SAS")
    (archive / "tables" / "kxr_sq_bu00.txt").unlink()
    (archive / "tables" / "kxr_sq_bu01.txt").unlink()
    frame = pd.DataFrame(
        {"ID": [9000001.0, 9000001.0], "SIDE": [1.0, 2.0], "READPRJ": [15.0, 15.0], "V00XRKL": [2.0, np.nan]}
    )
    monkeypatch.setattr(pd, "read_sas", lambda *args, **kwargs: frame)
    result = OAILoader().load(archive, visits=["00"])
    assert labels(result.catalog) == {("9000001", "R", "00"): 2}


# --------------------------------------------------------------------------- entries that are no files


def test_pipes_sockets_and_broken_links_matching_the_pattern_are_problems_never_opened(tmp_path, deadline):
    root = tmp_path / "knees"
    write_tables(root)
    write_png(root / "png/9000001_00_R.png", np.zeros((8, 8), dtype=np.uint8))
    odd = {f"png/{name}": kind for name, kind in make_odd_entries(root / "png", "900010{n}_00_R.png").items()}
    result = OAILoader().load(root, pattern="png/{id}_{visit}_{side}.png")
    assert result.catalog["path"].tolist() == ["png/9000001_00_R.png"]
    assert {w: k for k, w in zip(result.problems["kind"], result.problems["where"]) if w in odd} == odd


def test_pipes_and_broken_links_in_an_archive_series_folder_are_problems(archive, deadline):
    series = "OAI_00m/1.C.2/9000001/20040909/10000"  # the knee series of 9000001 (archive files lack extensions)
    odd = {f"{series}/{name}": kind for name, kind in make_odd_entries(archive / series, "{kind}").items()}
    result = OAILoader().load(archive)
    assert {w: k for k, w in zip(result.problems["kind"], result.problems["where"]) if w in odd} == odd
    assert ("9000001", "R", "00") in labels(result.catalog)  # its real image is still read
