from __future__ import annotations

import os

import pytest

from curate.errors import LoaderError
from curate.loaders import load
from tests.conftest import knee_like, write_png
from tests.loaders._odd import make_odd_entries, problems_of


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


def test_pipes_sockets_and_broken_links_are_problems_never_opened(tmp_path, deadline):
    for i, rel in enumerate(["train/normal/a.png", "train/pneumonia/b.png"]):
        write_png(tmp_path / rel, knee_like(i))
    odd = {f"train/normal/{name}": kind for name, kind in make_odd_entries(tmp_path / "train/normal").items()}
    odd |= {f"train/{name}": kind for name, kind in make_odd_entries(tmp_path / "train", "stray_{kind}.png").items()}
    odd |= {name: kind for name, kind in make_odd_entries(tmp_path, "top_{kind}").items()}
    os.symlink(tmp_path / "train", tmp_path / "train/normal/back_up")  # a folder link leading back up
    result = load("imagefolder", tmp_path)
    assert sorted(result.catalog["path"]) == ["train/normal/a.png", "train/pneumonia/b.png"]
    found = problems_of(result)
    assert found.pop("train/normal/back_up") == "linked_folder"
    assert found.pop(str(tmp_path)) == "one_patient_per_image"
    assert found == odd


def test_a_broken_image_link_is_named_with_its_target(tmp_path, deadline):
    write_png(tmp_path / "normal/a.png", knee_like(0))
    os.symlink("/mnt/gone/b.png", tmp_path / "normal/b.png")
    result = load("imagefolder", tmp_path)
    row = result.problems.set_index("where").loc["normal/b.png"]
    assert row["kind"] == "broken_link"
    assert row["detail"] == "a symbolic link to '/mnt/gone/b.png', which does not exist; not cataloged"
