"""A chest X-ray recipe: the task is applied to the catalog after ingest."""

from __future__ import annotations

from pathlib import Path

from curate.manifest import load_manifest
from curate.recipe import load_recipe, run_recipe
from tests.conftest import knee_like, write_png

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def _tiny_nih(root: Path) -> Path:
    lines = [_HEADER]
    for i in range(40):
        name = f"{i:08d}_000.png"
        label = "Pneumonia" if i % 3 == 0 else ("No Finding" if i % 3 == 1 else "Effusion")
        view = "AP" if i % 10 == 9 else "PA"
        lines.append(f"{name},{label},0,{i},50,M,{view},32,32,0.1,0.1")
        write_png(root / "images" / name, knee_like(i))
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    return root


def test_cxr_recipe_applies_task(tmp_path: Path) -> None:
    root = _tiny_nih(tmp_path / "nih")
    recipe = load_recipe(
        RECIPES / "cxr_pneumonia_balanced.yaml",
        data_root=root,
        overrides=["sampler.n=4", "split.method=new", "split.fractions=[0.5, 0.25, 0.25]", "scan.enabled=false"],
    )
    summary = run_recipe(recipe, store=tmp_path / "store", work=tmp_path / "work")
    ingest = summary["stages"][0]
    assert ingest["left_out_by_task"] > 0  # Effusion-only images and AP views
    rows = load_manifest(summary["ref"], tmp_path / "store")
    assert set(rows["label"].astype(int)) == {0, 1}
    assert (rows["split"] == "train").sum() == 4
