"""Exports: llava, hf-imagefolder, imagefolder, csv and jsonl, and the CLI around them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from curate.catalog import make_sample_id, validate_catalog
from curate.cli import main
from curate.errors import CurateError
from curate.export import export_manifest
from curate.manifest import build_manifest, write_manifest
from tests.conftest import write_dicom
from tests.manifest._data import hand_selection, tiny_dataset

# torchvision.datasets.folder.IMG_EXTENSIONS
TORCHVISION_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@pytest.fixture
def manifest(tmp_path):
    catalog = tiny_dataset(tmp_path / "data", n_patients=10)
    selection = hand_selection(catalog)
    selection.loc[0, "repeat"] = 3
    return write_manifest(build_manifest(catalog, selection, name="kl"), tmp_path / "store")


@pytest.fixture
def mixed(tmp_path):
    """A PNG, a cropped PNG half and a DICOM (no extension); every one a different split."""
    root = tmp_path / "mixed"
    pixels = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) % 4096
    write_dicom(root / "dicom" / "IM0001", pixels)
    Image.fromarray(np.full((40, 60), 200, dtype=np.uint8)).save(root / "bilateral.png")
    Image.fromarray(np.full((20, 20), 50, dtype=np.uint8)).save(root / "plain.PNG")
    rows = [
        ("dicom/IM0001", 2, "P1", None, "train"),
        ("bilateral.png", 1, "P2", "0,0,30,40", "val"),
        ("plain.PNG", 0, "P3", None, "test"),
    ]
    catalog = validate_catalog(
        pd.DataFrame(
            [
                {"sample_id": make_sample_id("t", p, crop), "path": p, "label": lab, "patient_id": pid, "source": "t",
                 "crop": crop}
                for p, lab, pid, crop, _ in rows
            ]
        )
    )
    catalog.attrs["data_root"] = str(root)
    selection = pd.DataFrame(
        {
            "sample_id": catalog["sample_id"],
            "patient_id": catalog["patient_id"],
            "label": catalog["label"],
            "split": pd.array([r[4] for r in rows], dtype="string"),
            "selected": True,
            "weight": 1.0,
            "repeat": 1,
        }
    )
    return write_manifest(build_manifest(catalog, selection, name="mixed"), tmp_path / "store")


def _no_temp_left(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_llava_follows_the_documented_structure(manifest, tmp_path):
    out = tmp_path / "llava"
    record = export_manifest(manifest, "llava", out, answer="KL grade {label} ({split})")
    assert json.loads((out / "curate_export.json").read_text())["version"] == manifest.version
    assert record["ref"] == manifest.ref
    total = 0
    for split in ("train", "val", "test"):
        entries = json.loads((out / f"{split}.json").read_text())
        assert isinstance(entries, list)
        total += len(entries)
        for entry in entries:
            assert set(entry) == {"id", "image", "conversations"}
            assert [c["from"] for c in entry["conversations"]] == ["human", "gpt"]
            human, gpt = (c["value"] for c in entry["conversations"])
            assert human == "<image>\nWhat is the Kellgren-Lawrence grade of this knee radiograph?"
            assert gpt.startswith("KL grade ") and gpt.endswith(f"({split})")
            assert entry["image"].startswith(entry["id"].split("-r")[0])
            assert (out / "images" / entry["image"]).is_file()
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids))
    assert total == manifest.rows["repeat"].sum() == len(manifest.rows) + 2
    first = manifest.rows["sample_id"][0]
    train_ids = [e["id"] for e in json.loads((out / "train.json").read_text())]
    assert [i for i in train_ids if i.startswith(first)] == [first, f"{first}-r2", f"{first}-r3"]
    label = manifest.rows["label"][0]
    entry = json.loads((out / "train.json").read_text())[0]
    assert entry["conversations"][1]["value"] == f"KL grade {label} (train)"
    assert _no_temp_left(tmp_path)


def test_hf_imagefolder_metadata_rules(manifest, tmp_path):
    out = tmp_path / "hf"
    export_manifest(manifest, "hf-imagefolder", out, link="copy")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "curate_export.json", "test", "train", "validation"]
    lines_total = 0
    for split in ("train", "validation", "test"):
        table = pd.read_parquet(out / split / "metadata.parquet")
        lines_total += len(table)
        for line in table.to_dict("records"):
            assert {"file_name", "label", "sample_id"} <= set(line)
            assert "/" not in line["file_name"] and line["sample_id"] in line["file_name"]
            assert (out / split / line["file_name"]).is_file()
            assert isinstance(line["label"], int)
        images = {p.name for p in (out / split).iterdir()} - {"metadata.parquet"}
        assert images == set(table["file_name"])
    assert lines_total == manifest.rows["repeat"].sum()


def _torchvision_rules(root: Path) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """torchvision's find_classes + make_dataset: class folders sorted, files kept by extension."""
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    class_to_idx = {c: i for i, c in enumerate(classes)}
    samples = []
    for c in classes:
        for dirpath, _, names in sorted(os.walk(root / c, followlinks=True)):
            for name in sorted(names):
                if name.lower().endswith(TORCHVISION_EXTENSIONS):
                    samples.append((os.path.join(dirpath, name), class_to_idx[c]))
    return class_to_idx, samples


@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_imagefolder_follows_torchvision_rules(manifest, tmp_path, link):
    out = tmp_path / "if"
    record = export_manifest(manifest, "imagefolder", out, link=link)
    rows = manifest.rows
    for split in ("train", "val", "test"):
        class_to_idx, samples = _torchvision_rules(out / split)
        part = rows[rows["split"] == split]
        assert class_to_idx == record["splits"][split]["class_to_idx"]
        assert len(samples) == len(part)  # one file per sample, repeats not copied
        by_id = dict(zip(part["sample_id"], part["label"].astype(str)))
        for path, idx in samples:
            sample_id = Path(path).stem
            assert {v: k for k, v in class_to_idx.items()}[idx] == by_id[sample_id]
            assert Image.open(path).size == (32, 32)
        first = next(p for p in (out / split).rglob("*.png"))
        assert first.is_symlink() == (link == "symlink")


def test_imagefolder_loads_with_torchvision(manifest, tmp_path):
    tv = pytest.importorskip("torchvision")
    export_manifest(manifest, "imagefolder", tmp_path / "if")
    rows = manifest.rows
    assert len(tv.datasets.ImageFolder(str(tmp_path / "if" / "train"))) == (rows["split"] == "train").sum()


def test_dicom_and_crops_become_8bit_png(mixed, tmp_path):
    out = tmp_path / "if"
    record = export_manifest(mixed, "imagefolder", out)
    assert record["images"]["rendered"] == 2
    assert record["images"]["why_rendered"] == {"DICOM": 1, "crop": 1}
    ids = dict(zip(mixed.rows["path"], mixed.rows["sample_id"]))
    dicom = out / "train" / "2" / f"{ids['dicom/IM0001']}.png"
    crop = out / "val" / "1" / f"{ids['bilateral.png']}.png"
    plain = out / "test" / "0" / f"{ids['plain.PNG']}.png"
    for path in (dicom, crop):
        assert not path.is_symlink()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "L"
    assert Image.open(dicom).size == (80, 64)
    assert Image.open(crop).size == (30, 40)
    assert plain.is_symlink()  # a PNG without a crop is linked, its extension lower-cased
    hf = tmp_path / "hf"
    export_manifest(mixed, "hf-imagefolder", hf)
    line = pd.read_parquet(hf / "train" / "metadata.parquet").iloc[0]
    assert line["file_name"] == f"{ids['dicom/IM0001']}.png"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_tables(manifest, tmp_path, fmt):
    out = tmp_path / fmt
    export_manifest(manifest, fmt, out)
    path = out / f"manifest.{fmt}"
    table = pd.read_csv(path) if fmt == "csv" else pd.read_json(path, lines=True)
    assert len(table) == len(manifest.rows)
    assert table["image"].map(lambda p: Path(p).is_file()).all()
    assert list(table["repeat"]) == list(manifest.rows["repeat"])


def test_export_command_and_bad_targets(manifest, tmp_path):
    store = tmp_path / "store"
    out = tmp_path / "cli"
    args = ["export", "kl", "--format", "llava", "-o", str(out), "--store", str(store), "--json"]
    ok = CliRunner().invoke(main, args)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["version"] == manifest.version

    for args in (["export", "nope", "--format", "csv", "-o", str(tmp_path / "x")],
                 ["export", "kl", "--format", "csv", "-o", str(out)],
                 ["export", "kl", "--format", "csv", "-o", str(tmp_path / "y"), "--question", "Q?"]):
        before = sorted(p.name for p in tmp_path.iterdir())
        bad = CliRunner().invoke(main, [*args, "--store", str(store)])
        assert bad.exit_code == 2, bad.output
        assert bad.stderr.startswith("curate: error:") and bad.stderr.count("\n") == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    written = sorted(p.name for p in out.iterdir())
    assert written == ["curate_export.json", "images", "test.json", "train.json", "val.json"]


def test_an_empty_output_folder_is_accepted(manifest, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    export_manifest(manifest, "csv", out)
    assert (out / "manifest.csv").is_file()


def test_a_failing_export_leaves_nothing(manifest, tmp_path):
    Path(manifest.card["data_root"], manifest.rows["path"][3]).unlink()
    with pytest.raises(CurateError, match="not found"):
        export_manifest(manifest, "llava", tmp_path / "broken")
    assert not (tmp_path / "broken").exists() and _no_temp_left(tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fit", "squash"], "Invalid value for '--fit'"),
        (["--size", "0"], "Invalid value for '--size'"),
        (["--percentiles", "99,1"], "percentiles"),
        (["--data-root", "nowhere"], "data root"),
        (["--format", "csv", "--bit-depth", "16", "--image-format", "jpeg"], "JPEG files are 8-bit"),
    ],
)
def test_bad_export_options_are_one_line_and_write_nothing(manifest, tmp_path, extra, message):
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["export", "kl", "--format", "llava", "-o", str(tmp_path / "out"), "--store", str(tmp_path / "store")]
    bad = CliRunner().invoke(main, [*args, *extra])
    assert bad.exit_code == 2, bad.output
    assert bad.stderr.startswith("curate: error:") and bad.stderr.count("\n") == 1 and message in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_tables_honour_the_data_root_and_refuse_missing_files(manifest, tmp_path, fmt):
    moved = tmp_path / "moved"
    Path(manifest.card["data_root"]).rename(moved)
    out = tmp_path / fmt
    with pytest.raises(CurateError, match="data root"):  # the recorded root is gone
        export_manifest(manifest, fmt, out)
    export_manifest(manifest, fmt, out, data_root=moved)
    table = pd.read_csv(out / "manifest.csv") if fmt == "csv" else pd.read_json(out / "manifest.jsonl", lines=True)
    assert all(Path(p).is_file() and Path(p).is_relative_to(moved) for p in table["image"])
    Path(moved, manifest.rows["path"][2]).unlink()
    with pytest.raises(CurateError, match="not found"):
        export_manifest(manifest, fmt, tmp_path / "again", data_root=moved)
    assert not (tmp_path / "again").exists()


def test_tables_point_at_renderings_of_files_readers_get_wrong(mixed, tmp_path):
    export_manifest(mixed, "csv", tmp_path / "csv")
    table = pd.read_csv(tmp_path / "csv" / "manifest.csv").set_index("path")
    assert Path(table.loc["plain.PNG", "image"]).parent == Path(mixed.card["data_root"]).resolve()
    for path in ("dicom/IM0001", "bilateral.png"):
        image = Path(table.loc[path, "image"])
        assert image.parent == (tmp_path / "csv" / "images").resolve()
        with Image.open(image) as opened:
            assert opened.mode == "L"


def test_exports_and_versions_are_readable_by_others_when_the_umask_says_so(manifest, tmp_path):
    old = os.umask(0o022)
    try:
        export_manifest(manifest, "llava", tmp_path / "shared")
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "shared" / "train.json").stat().st_mode & 0o777 == 0o644
    from curate._io import current_umask

    mask = current_umask()  # the manifest fixture was stored under the process's umask
    assert manifest.folder.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (manifest.folder / "rows.parquet").stat().st_mode & 0o777 == 0o666 & ~mask
