"""De-identification: nothing identifying in any written byte, stable keyed pseudonyms, the PHI check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image

from curate.catalog import make_sample_id
from curate.cli import main
from curate.deid import Deid, deidentify_catalog, find_phi, phi_values
from curate.errors import CurateError
from curate.export import FORMATS
from curate.loaders import load
from curate.manifest import load_manifest, open_manifest
from curate.recipe import load_recipe, run_recipe
from tests.conftest import write_dicom

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
OTHER_KEY = "a" * 40
#: The identifying values written into the headers: none may leave with deid.
PATIENTS = [
    {"PatientID": f"{100 + k}-45-{6789 + k}", "PatientName": f"DOE^JOHNATHAN{k:02d}", "PatientBirthDate": f"1961{k + 1:02d}15",
     "InstitutionName": "Saint Brigid Radiology", "AccessionNumber": f"ACC99887{k}", "ReferringPhysicianName": "SMITH^ALOYSIUS",
     "StudyInstanceUID": f"1.2.826.0.1.3680043.8.498.77{k}", "StudyDate": f"2011{k % 9 + 1:02d}0{k % 9 + 1}"}
    for k in range(12)
]

RECIPE = """\
name: deid-test
seed: 0
source:
  loader: dicom
  data_root: {root}
  options: {{label_tag: BodyPartExamined}}
split:
  method: new
  fractions: [0.5, 0.25, 0.25]
sampler:
  name: full
exports:
{exports}
"""


def _rich_dicom(path: Path, patient: dict, series: int, body_part: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((48, 40)) * 4000).astype(np.uint16)
    sop = f"{patient['StudyInstanceUID']}.{series}.1"
    write_dicom(path, pixels, patient_id=patient["PatientID"], body_part=body_part, sop_uid=sop)
    ds = pydicom.dcmread(path)
    for keyword, value in patient.items():
        setattr(ds, keyword, value)
    ds.SeriesInstanceUID = f"{patient['StudyInstanceUID']}.{series}"
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def hospital(tmp_path_factory) -> Path:
    """24 DICOMs in folders named by PatientID (as many exports are), every header full of identifiers."""
    root = tmp_path_factory.mktemp("hospital") / "dicoms"
    for k, patient in enumerate(PATIENTS):
        for series in (1, 2):
            _rich_dicom(root / patient["PatientID"] / f"series{series}" / "IM0001.dcm", patient, series,
                        "KNEE" if k % 2 else "CHEST", seed=10 * k + series)
    return root


def _run(tmp: Path, hospital: Path, *, key: str | None, store: str = "store") -> dict:
    exports = "\n".join(f"  - format: {fmt}\n    output: \"{tmp}/exports-{store}/{fmt}\"" for fmt in FORMATS)
    recipe = tmp / "deid.yaml"
    text = RECIPE.format(root=hospital, exports=exports)
    if key is not None:
        (tmp / f"{store}.key").write_text(key + "\n")
        text += f"deid:\n  enabled: true\n  key_file: {tmp / f'{store}.key'}\n"
    recipe.write_text(text)
    return run_recipe(load_recipe(recipe), store=tmp / store, work=tmp / f"work-{store}")


def _written(tmp: Path, store: str) -> list[Path]:
    """What leaves or is shared: the exports, the manifest store, the selection tables."""
    return [tmp / f"exports-{store}", tmp / store, tmp / f"work-{store}" / "runs"]


def test_with_deid_no_identifying_value_is_in_any_written_byte(hospital, tmp_path):
    values = phi_values(sorted(hospital.rglob("*.dcm")))
    assert {"PatientID", "PatientName", "PatientBirthDate", "InstitutionName", "AccessionNumber",
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "ReferringPhysicianName", "StudyDate"} <= set(values)
    summary = _run(tmp_path, hospital, key=KEY)
    for folder in _written(tmp_path, "store"):
        assert find_phi(folder, values) == [], folder
    # the same check from the command line, and the exports are complete and readable
    result = CliRunner().invoke(main, ["phi-check", *map(str, _written(tmp_path, "store")), "--source", str(hospital)])
    assert result.exit_code == 0, result.output
    manifest = open_manifest(summary["ref"], tmp_path / "store")
    assert manifest.card["data_root"] is None and manifest.card["deid"]["key_id"] == Deid(KEY.encode()).key_id
    for written in manifest.folder.iterdir():  # the card and the export log name no path of this machine
        assert str(tmp_path) not in written.read_bytes().decode("latin-1"), written.name
    assert all(p == f"{s}.dcm" for p, s in zip(manifest.rows["path"], manifest.rows["sample_id"]))
    exports = tmp_path / "exports-store"
    assert not [p for p in exports.rglob("*") if p.is_symlink()]  # a link's target names the source
    llava = json.loads((exports / "llava" / "train.json").read_text())
    with Image.open(exports / "llava" / "images" / llava[0]["image"]) as image:
        assert image.size == (40, 48) and image.mode == "L"
    table = pd.read_csv(exports / "csv" / "manifest.csv")
    assert "path" not in table.columns and "sha256" not in table.columns
    assert all(p.startswith("images/") for p in table["image"])
    # sample ids are keyed too: hashing guessed paths (PatientID folders) finds none of them
    guessed = {make_sample_id("dicom", str(p.relative_to(hospital))) for p in hospital.rglob("*.dcm")}
    assert guessed == set(load("dicom", hospital).catalog["sample_id"])  # what an unkeyed id would give away
    assert guessed.isdisjoint(set(table["sample_id"])) and table["sample_id"].str.fullmatch(r"s-[0-9a-f]{16}").all()
    assert (exports / "csv" / table["image"].iloc[0]).is_file()
    # verify finds the files through the private catalog in the work folder
    verify = CliRunner().invoke(main, ["manifest", "verify", summary["ref"], "--store", str(tmp_path / "store")],
                                env={"CURATE_WORK_DIR": str(tmp_path / "work-store")})
    assert verify.exit_code == 0, verify.output


def test_without_deid_the_phi_check_finds_the_identifiers_and_fails(hospital, tmp_path):
    _run(tmp_path, hospital, key=None, store="plain")
    result = CliRunner().invoke(main, ["phi-check", *map(str, _written(tmp_path, "plain")), "--source", str(hospital)])
    assert result.exit_code == 1
    assert "found: PatientID in" in result.output
    assert "123-45" not in result.output  # a hit names the attribute and the file, never the value


def test_pseudonyms_are_stable_for_a_key_and_differ_with_another(hospital, tmp_path):
    first = load_manifest(_run(tmp_path, hospital, key=KEY, store="a")["ref"], tmp_path / "a")
    again = load_manifest(_run(tmp_path, hospital, key=KEY, store="b")["ref"], tmp_path / "b")
    other = load_manifest(_run(tmp_path, hospital, key=OTHER_KEY, store="c")["ref"], tmp_path / "c")
    by_sample = lambda rows: dict(zip(rows["sample_id"], rows["patient_id"]))  # noqa: E731
    assert by_sample(first) == by_sample(again)
    assert set(first["patient_id"]).isdisjoint(set(other["patient_id"]))
    assert first["patient_id"].str.fullmatch(r"p-[0-9a-f]{16}").all()
    assert first["patient_id"].nunique() == len(PATIENTS)  # two series of one patient: one pseudonym


def test_dates_shift_by_one_amount_per_patient_and_unknown_columns_are_dropped():
    catalog = pd.DataFrame(
        {"sample_id": ["a", "b", "c"], "path": ["x/1", "x/2", "y/1"], "label": [0, 1, 0],
         "patient_id": ["P1", "P1", "P2"], "source": "t", "study_date": ["20110105", "20110305", "20120101"],
         "referring": ["DR X", "DR X", "DR Y"], "sop_instance_uid": ["1.2.3", "1.2.4", "1.2.5"],
         "finding_pneumonia": [1, 0, 1]}
    )
    deid = Deid(KEY.encode())
    out, report = deidentify_catalog(catalog, deid)
    assert "referring" not in out.columns and report["dropped"] == ["referring"]
    assert list(out["finding_pneumonia"]) == [1, 0, 1]  # chest X-ray findings are labels, kept
    days = pd.to_datetime(out["study_date"], format="%Y%m%d") - pd.to_datetime(catalog["study_date"], format="%Y%m%d")
    assert days.iloc[0] == days.iloc[1] and days.iloc[0] != pd.Timedelta(0)  # one shift per patient
    assert not set(out["sop_instance_uid"]) & set(catalog["sop_instance_uid"])
    dropped, _ = deidentify_catalog(catalog, Deid(KEY.encode(), dates="drop", keep=("referring",)))
    assert "study_date" not in dropped.columns and list(dropped["referring"]) == ["DR X", "DR X", "DR Y"]
    assert out.attrs["deid"]["key_id"] == deid.key_id and KEY not in json.dumps(out.attrs["deid"])


def test_a_short_key_or_a_missing_key_file_is_refused(tmp_path):
    with pytest.raises(CurateError, match="at least 16 bytes"):
        Deid(b"short")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(root=tmp_path, exports="  []").replace("exports:\n  []", "exports: []")
                      + f"deid:\n  enabled: true\n  key_file: {tmp_path / 'nowhere.key'}\n")
    with pytest.raises(CurateError, match=r"r\.yaml:\d+: de-identification key file .*nowhere\.key"):
        run_recipe(load_recipe(recipe), store=tmp_path / "s", work=tmp_path / "w")
