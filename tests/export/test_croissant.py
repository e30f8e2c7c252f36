"""croissant: the JSON-LD validates with mlcroissant, lists every file with its sha256, and reads back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate.catalog import make_sample_id, validate_catalog
from curate.errors import CurateError
from curate.export import FORMATS, export_manifest
from curate.export._files import ImagePlacer
from curate.export.croissant import finish_croissant, write_croissant
from curate.manifest import build_manifest
from tests.manifest._data import hand_selection, tiny_dataset

RECIPE = {"name": "kl", "license": "cc-by-4.0", "citation": "@article{kl2026, title={Knees}}"}


@pytest.fixture
def mlc():
    return pytest.importorskip("mlcroissant")


def _manifest(tmp_path, recipe=None):
    catalog = tiny_dataset(tmp_path / "data", n_patients=5)
    selection = hand_selection(catalog)
    selection["repeat"] = [3] + [1] * (len(selection) - 1)
    selection["weight"] = 0.5 + selection["label"].astype(float) / 10
    return build_manifest(catalog, selection, name="kl", recipe=recipe or {})


def _export(manifest, out: Path, link: str = "symlink") -> dict:
    """The two steps export_manifest runs: the writer, then (every image written) the finisher."""
    out.mkdir()
    placer = ImagePlacer(manifest.card["data_root"], link)
    details = write_croissant(manifest, out, placer)
    placer.flush()  # renderings (crops here) are written now, before the finisher hashes them
    return finish_croissant(manifest, out, details)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text(value) -> str:
    """mlcroissant gives text read from CSV or inline data as bytes, from Parquet as str."""
    return value.decode() if isinstance(value, bytes) else value


def _file_objects(out: Path) -> dict[str, dict]:
    document = json.loads((out / "croissant.json").read_text())
    return {d["contentUrl"]: d for d in document["distribution"] if d["@type"] == "cr:FileObject"}


def test_validates_and_lists_every_file_with_its_sha256(mlc, tmp_path):
    manifest = _manifest(tmp_path, RECIPE)
    out = tmp_path / "cr"
    record = _export(manifest, out)
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))  # raises on any error
    assert not dataset.metadata.ctx.issues.warnings
    assert dataset.metadata.license == ["cc-by-4.0"] and dataset.metadata.cite_as == RECIPE["citation"]
    assert dataset.metadata.version == f"0.0.0+{manifest.version}"

    listed = _file_objects(out)
    images = sorted(p.relative_to(out).as_posix() for p in (out / "images").iterdir())
    assert len(images) == len(manifest.rows)  # one file per sample, repeats not copied
    assert sorted(set(listed) - {"samples.parquet"}) == images
    for path, entry in listed.items():
        assert entry["sha256"] == _sha256(out / path)
    assert listed["images/" + images[0].split("/")[1]]["encodingFormat"] == "image/png"
    assert record["files_hashed"] == len(images) + 1


def test_records_read_back_the_manifest(mlc, tmp_path):
    manifest = _manifest(tmp_path, RECIPE)
    out = tmp_path / "cr"
    record = _export(manifest, out, link="copy")
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))

    classes = {_text(r["classes/name"]): r["classes/index"] for r in dataset.records("classes")}
    assert classes == record["class_to_idx"] == {str(g): g for g in range(5)}

    rows = manifest.rows.set_index("sample_id")
    seen = []
    for r in dataset.records("samples"):
        sample_id = _text(r["samples/sample_id"])
        row = rows.loc[sample_id]
        assert _text(r["samples/label"]) == str(row["label"])
        assert _text(r["samples/split"]) == row["split"]
        assert _text(r["samples/patient_id"]) == row["patient_id"]
        assert r["samples/weight"] == pytest.approx(row["weight"])
        assert r["samples/repeat"] == row["repeat"]
        assert r["samples/image"].size == (32, 32)
        seen.append(sample_id)
    assert sorted(seen) == sorted(rows.index)


def test_without_license_or_citation(mlc, tmp_path):
    out = tmp_path / "cr"
    _export(_manifest(tmp_path), out)
    document = json.loads((out / "croissant.json").read_text())
    assert document["license"] == "unknown" and "citeAs" not in document
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    assert [w for w in dataset.metadata.ctx.issues.warnings if "citeAs" not in w] == []


def test_converted_and_jpeg_images(mlc, tmp_path):
    """A crop becomes a PNG written by the placer: its listed sha256 is of that PNG; a JPEG stays a JPEG."""
    root = tmp_path / "mixed"
    root.mkdir()
    Image.fromarray(np.full((40, 60), 200, dtype=np.uint8)).save(root / "bilateral.png")
    Image.fromarray(np.full((20, 24), 90, dtype=np.uint8)).save(root / "knee.jpg")
    rows = [("bilateral.png", 1, "P1", "0,0,30,40", "train"), ("knee.jpg", 0, "P2", None, "test")]
    catalog = validate_catalog(pd.DataFrame([
        {"sample_id": make_sample_id("t", p, crop), "path": p, "label": lab, "patient_id": pid, "source": "t",
         "crop": crop}
        for p, lab, pid, crop, _ in rows
    ]))
    catalog.attrs["data_root"] = str(root)
    selection = pd.DataFrame({
        "sample_id": catalog["sample_id"], "patient_id": catalog["patient_id"], "label": catalog["label"],
        "split": pd.array([r[4] for r in rows], dtype="string"), "selected": True, "weight": 1.0, "repeat": 1,
    })
    manifest = build_manifest(catalog, selection, name="mixed")
    out = tmp_path / "cr"
    _export(manifest, out)

    listed = _file_objects(out)
    ids = dict(zip(manifest.rows["path"], manifest.rows["sample_id"]))
    crop, jpeg = f"images/{ids['bilateral.png']}.png", f"images/{ids['knee.jpg']}.jpg"
    assert listed[crop]["sha256"] == _sha256(out / crop) != _sha256(root / "bilateral.png")
    assert listed[jpeg]["encodingFormat"] == "image/jpeg"
    sizes = {_text(r["samples/file_name"]): r["samples/image"].size
             for r in mlc.Dataset(jsonld=str(out / "croissant.json")).records("samples")}
    assert sizes == {Path(crop).name: (30, 40), Path(jpeg).name: (24, 20)}


def test_a_missing_image_is_one_line_error(tmp_path):
    manifest = _manifest(tmp_path)
    out = tmp_path / "cr"
    out.mkdir()
    placer = ImagePlacer(manifest.card["data_root"])
    details = write_croissant(manifest, out, placer)
    placer.flush()
    next((out / "images").iterdir()).unlink()  # as if a rendering had not been written
    with pytest.raises(CurateError, match=r"^1 image\(s\) of the Croissant export were not written") as error:
        finish_croissant(manifest, out, details)
    assert "\n" not in str(error.value)
    assert not (out / "croissant.json").exists()


@pytest.mark.skipif("croissant" not in FORMATS, reason="croissant is not registered in curate.export.FORMATS yet")
def test_export_manifest_writes_croissant(mlc, tmp_path):
    manifest = _manifest(tmp_path, RECIPE)
    record = export_manifest(manifest, "croissant", tmp_path / "cr")
    assert record["format"] == "croissant" and record["files_hashed"] == len(manifest.rows) + 1
    mlc.Dataset(jsonld=str(tmp_path / "cr" / "croissant.json"))
