"""Acceptance: every image of every export of the demo's manifests, opened as trainers open it.

LLaVA's loader, torchvision's ``pil_loader`` and Hugging Face image processors all call
``Image.open(path).convert("RGB")``. A 16-bit PNG holding 12-bit values then comes out
white, and a DICOM does not open at all; the image policy renders such files. Each image
is compared with curate's own decoding of its source (the scan's normalization).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from curate.catalog import parse_crop
from curate.cli import main
from curate.export import FORMATS, export_manifest
from curate.imaging import read_image
from curate.manifest import open_manifest
from curate.recipe import load_recipe, run_recipe

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
IMAGE_FORMATS = [f for f in FORMATS if f != "croissant"] + (["croissant"] if "croissant" in FORMATS else [])


@pytest.fixture(scope="module")
def demo_store(default_demo, tmp_path_factory):
    """The README's two manifests (balanced 500 and full) built from the default demo."""
    base = tmp_path_factory.mktemp("readers")
    refs = {}
    for name in ("demo.yaml", "demo_full.yaml"):
        recipe = load_recipe(RECIPES / name, data_root=default_demo, overrides=["exports=[]"])
        refs[name] = run_recipe(recipe, store=base / "store", work=base / "work")["ref"]
    return base, refs


def _trainer_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:  # exactly the trainers' call
        return np.asarray(image.convert("RGB"))[..., 0]


def _referenced_images(fmt: str, out: Path) -> list[tuple[str, Path]]:
    """(sample_id, image path) for every image an export's trainer-facing files name."""
    found = []
    if fmt == "llava":
        for split_file in out.glob("*.json"):
            if split_file.name == "curate_export.json":
                continue
            for entry in json.loads(split_file.read_text()):
                found.append((entry["id"].split("-r")[0], out / "images" / entry["image"]))
    elif fmt == "hf-imagefolder":
        for metadata in [*out.rglob("metadata.jsonl"), *out.rglob("metadata.parquet")]:
            table = pd.read_parquet(metadata) if metadata.suffix == ".parquet" else pd.read_json(metadata, lines=True)
            found += [(s, metadata.parent / f) for s, f in zip(table["sample_id"].astype(str), table["file_name"])]
    elif fmt == "imagefolder":
        found = [(p.stem, p) for p in out.glob("*/*/*") if p.name != "curate_export.json"]
    elif fmt in ("csv", "jsonl"):
        table = pd.read_csv(out / "manifest.csv") if fmt == "csv" else pd.read_json(out / "manifest.jsonl", lines=True)
        found = list(zip(table["sample_id"].astype(str), map(Path, table["image"])))
    elif fmt == "croissant":
        found = [(p.stem, p) for p in (out / "images").iterdir()]
    return found


def _saturated(pixels: np.ndarray) -> float:
    return float(np.mean((pixels == 0) | (pixels == 255)))


@pytest.mark.parametrize("recipe", ["demo.yaml", "demo_full.yaml"])
def test_every_exported_image_looks_like_curates_decoding(demo_store, default_demo, recipe):
    base, refs = demo_store
    manifest = open_manifest(refs[recipe], base / "store")
    rows = manifest.rows.set_index("sample_id")
    decoded: dict[str, np.ndarray] = {}
    rendered_why: dict[str, int] = {}
    for fmt in IMAGE_FORMATS:
        out = base / f"{manifest.name}-{fmt}"
        record = export_manifest(manifest, fmt, out)
        for reason, count in record["images"]["why_rendered"].items():
            rendered_why[reason] = max(rendered_why.get(reason, 0), count)
        images = _referenced_images(fmt, out)
        assert {sample for sample, _ in images} == set(rows.index), fmt
        for sample_id, path in images:
            if sample_id not in decoded:
                row = rows.loc[sample_id]
                crop = row.get("crop") if "crop" in rows.columns else None
                box = parse_crop(crop) if isinstance(crop, str) and crop else None
                decoded[sample_id] = read_image(Path(default_demo) / row["path"], box).as_uint8()
            truth = decoded[sample_id]
            seen = _trainer_pixels(path)
            assert seen.shape == truth.shape, (fmt, path)
            # no white (or black) squares unless curate's own decoding is one
            assert _saturated(seen) <= max(0.5, _saturated(truth) + 0.01), (fmt, path)
            assert np.abs(seen.astype(int) - truth).max() <= 1, (fmt, path)
    # the demo's hard cases were among them
    assert rendered_why.get("DICOM", 0) >= 10 and rendered_why.get("mode I;16", 0) >= 9
    assert rows["flags"].astype(str).str.contains("monochrome1").sum() >= 1


def test_preprocessing_gives_every_image_the_size_and_the_log_tells_exports_apart(demo_store):
    base, refs = demo_store
    store = base / "store"
    ref = refs["demo.yaml"]
    out = base / "pad336"
    result = CliRunner().invoke(
        main, ["export", ref, "--format", "llava", "-o", str(out), "--store", str(store), "--size", "336",
               "--fit", "pad", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((out / "curate_export.json").read_text())
    assert record["preprocessing"]["size"] == 336 and record["preprocessing"]["fit"] == "pad"
    images = _referenced_images("llava", out)
    assert len(images) == len(open_manifest(ref, store).rows)
    for _, path in images:
        with Image.open(path) as image:
            assert image.size == (336, 336) and image.mode == "L"
    # a second export with other preprocessing: `manifest show` lists both, with different pixel ids
    other = base / "crop224clahe"
    result = CliRunner().invoke(
        main, ["export", ref, "--format", "imagefolder", "-o", str(other), "--store", str(store), "--size", "224",
               "--fit", "crop", "--clahe", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(main, ["manifest", "show", ref, "--store", str(store), "--json"])
    exports = {e["output"]: e for e in json.loads(shown.output)["exports"]}
    assert exports[str(out.resolve())]["pixels_id"] != exports[str(other.resolve())]["pixels_id"]
    assert exports[str(other.resolve())]["preprocessing"]["clahe"] is True
    text = CliRunner().invoke(main, ["manifest", "show", ref, "--store", str(store)]).output
    assert "size 336, fit pad" in text and "size 224, fit crop, clahe" in text
