from __future__ import annotations

import pytest

from curate.errors import LoaderError
from curate.loaders import load
from tests.conftest import knee_like, write_png


def test_class_folders_give_labels_and_one_patient_per_image(tmp_path):
    for i, rel in enumerate(["normal/a.png", "normal/b.png", "pneumonia/c.png"]):
        write_png(tmp_path / rel, knee_like(i))
    result = load("imagefolder", tmp_path)
    assert sorted(result.catalog["label"]) == ["normal", "normal", "pneumonia"]
    assert result.catalog["patient_id"].nunique() == 3
    assert "one_patient_per_image" in set(result.problems["kind"])


def test_split_level_and_patient_pattern(tmp_path):
    for i, rel in enumerate(["train/0/p12_a.png", "train/1/p12_b.png", "test/0/p7_a.png", "test/0/odd.png"]):
        write_png(tmp_path / rel, knee_like(i))
    result = load("imagefolder", tmp_path, patient_pattern=r"p(?P<patient>\d+)_")
    cat = result.catalog.set_index("path")
    assert cat.loc["train/1/p12_b.png", "patient_id"] == "12"
    assert cat.loc["test/0/p7_a.png", "official_split"] == "test"
    assert list(result.problems["where"]) == ["test/0/odd.png"]


def test_pattern_without_group_is_refused(tmp_path):
    write_png(tmp_path / "a/x.png", knee_like(0))
    with pytest.raises(LoaderError, match="needs a group"):
        load("imagefolder", tmp_path, patient_pattern=r"\d+")
