"""hf-imagefolder: what ``datasets.load_dataset`` gives back, and the README dataset card."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from curate.export import export_manifest
from curate.manifest import build_manifest
from tests.manifest._data import hand_selection, tiny_dataset

RECIPE = {
    "name": "kl",
    "description": "Knee radiographs, one KL grade each.",
    "license": "cc-by-4.0",
    "citation": "@article{kl2026, title={Knees}}",
}


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    """The real ``datasets``, offline, writing its cache under tmp_path only."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return pytest.importorskip("datasets")


def _manifest(tmp_path, *, recipe=None, drop_label=None, classes=None):
    catalog = tiny_dataset(tmp_path / "data", n_patients=10)
    selection = hand_selection(catalog)
    selection["repeat"] = [3, 2] + [1] * (len(selection) - 2)
    selection["weight"] = 0.5 + selection["label"].astype(float) / 10
    if drop_label is not None:
        selection["selected"] = selection["label"] != drop_label
    if classes is not None:
        selection.attrs["selection"]["classes"] = classes
    return build_manifest(catalog, selection, name="kl", recipe=recipe or {})


def _load(datasets, path, tmp_path, **kwargs):
    return datasets.load_dataset(*path, cache_dir=str(tmp_path / "hf-cache"), **kwargs)


def _front_matter(readme: str) -> dict:
    _, front, _ = readme.split("---\n", 2)
    return yaml.safe_load(front)


def test_labels_load_as_class_labels_with_the_manifest_rows(datasets, tmp_path):
    manifest = _manifest(tmp_path)
    out = tmp_path / "hf"
    record = export_manifest(manifest, "hf-imagefolder", out, link="copy")
    loaded = _load(datasets, ["imagefolder"], tmp_path, data_dir=str(out))

    rows = manifest.rows.set_index("sample_id")
    assert set(loaded) == {"train", "validation", "test"}
    for split, name in {"train": "train", "val": "validation", "test": "test"}.items():
        assert len(loaded[name]) == rows.loc[rows["split"] == split, "repeat"].sum()
    names = loaded["train"].features["label"].names
    assert names == ["0", "1", "2", "3", "4"]
    assert record["class_to_idx"] == {n: i for i, n in enumerate(names)}

    seen = pd.Series(0, index=rows.index)
    for split in loaded.values():
        label = split.features["label"]
        for example in split:
            row = rows.loc[example["sample_id"]]
            assert label.int2str(example["label"]) == str(row["label"])
            assert example["label"] == row["label"]  # integer grades keep their value
            assert example["weight"] == pytest.approx(row["weight"])
            assert example["patient_id"] == row["patient_id"]
            assert example["image"].size == (32, 32)
            seen[example["sample_id"]] += 1
    assert (seen == rows["repeat"]).all()  # a sample repeated n times comes n times


def test_readme_card_describes_the_manifest_and_loads(datasets, tmp_path):
    manifest = _manifest(tmp_path, recipe=RECIPE)
    out = tmp_path / "hf"
    export_manifest(manifest, "hf-imagefolder", out)
    readme = (out / "README.md").read_text()
    front = _front_matter(readme)
    assert front["license"] == "cc-by-4.0"
    assert front["configs"][0]["data_files"] == [
        {"split": s, "path": f"{s}/*"} for s in ("train", "validation", "test")
    ]
    label = next(f for f in front["dataset_info"]["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {str(i): str(i) for i in range(5)}

    card = manifest.card
    for text in (manifest.ref, card["recipe_sha256"], card["catalog_fingerprint"], RECIPE["citation"],
                 RECIPE["description"], "| validation | 3 |"):
        assert text in readme
    assert str(card["data_root"]) not in readme  # a local path has no place in a shared card

    # The README's configs are what `load_dataset(folder)` reads; the class names survive it.
    for args, kwargs in ((["imagefolder"], {"data_dir": str(out)}), ([str(out)], {})):
        loaded = _load(datasets, args, tmp_path, **kwargs)
        assert loaded["validation"].features["label"].names == ["0", "1", "2", "3", "4"]
        assert sum(map(len, loaded.values())) == manifest.rows["repeat"].sum()


def test_classes_follow_the_catalog_when_a_class_is_missing(datasets, tmp_path):
    manifest = _manifest(tmp_path, drop_label=2, classes=["0", "1", "2", "3", "4"])
    out = tmp_path / "hf"
    record = export_manifest(manifest, "hf-imagefolder", out)
    loaded = _load(datasets, ["imagefolder"], tmp_path, data_dir=str(out))
    assert loaded["train"].features["label"].names == ["0", "1", "2", "3", "4"]
    assert record["class_to_idx"]["4"] == 4
    assert sorted({v for split in loaded.values() for v in split["label"]}) == [0, 1, 3, 4]


def test_text_labels_a_missing_label_and_no_license(datasets, tmp_path):
    catalog = tiny_dataset(tmp_path / "data", n_patients=5)
    catalog["label"] = catalog["label"].map({0: "normal", 1: "normal", 2: "severe"}).astype("string")
    selection = hand_selection(catalog)
    manifest = build_manifest(catalog, selection, name="text", recipe={})
    unlabelled = manifest.rows["sample_id"][0]
    manifest.rows.loc[0, "label"] = pd.NA  # the manifest allows it; the export must not invent a class

    out = tmp_path / "hf"
    record = export_manifest(manifest, "hf-imagefolder", out)
    assert record["class_to_idx"] == {"normal": 0, "severe": 1}
    loaded = _load(datasets, ["imagefolder"], tmp_path, data_dir=str(out))
    label = loaded["train"].features["label"]
    by_id = dict(zip(manifest.rows["sample_id"], manifest.rows["label"]))
    for example in loaded["train"]:
        expected = by_id[example["sample_id"]]
        assert (example["label"] is None) if pd.isna(expected) else label.int2str(example["label"]) == expected
    assert unlabelled in loaded["train"]["sample_id"]

    readme = (out / "README.md").read_text()
    assert _front_matter(readme)["license"] == "unknown"
    assert "## Citation" not in readme
