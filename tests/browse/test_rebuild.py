"""Running `curate browse` again: what reviewers made stays, moved images and other media folders are followed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.browse.context import Context
from curate.browse.dataset import SAVED_VIEWS_KEY, build_dataset
from curate.browse.db import media_folder
from curate.browse.review import pull_review
from curate.errors import CurateError
from curate.manifest import load_manifest
from tests.browse._data import SIXTEEN_BIT, tiny_store


@pytest.fixture
def tiny(tmp_path):
    store, tables = tiny_store(tmp_path)
    return load_manifest("browse-tiny", store), store, tables


def _browse(*args: object):
    from curate.cli import main

    return CliRunner().invoke(main, ["browse", *map(str, args), "--no-launch", "--quiet"])


def test_a_rebuild_keeps_reviewers_views_workspaces_and_label_tags(fo, tiny, tmp_path):
    from fiftyone import ViewField as F

    rows, _, tables = tiny
    name = "rebuild-keeps"
    dataset = build_dataset(rows, name=name, context=Context(**tables), media_dir=tmp_path / "media")
    ids = dict(zip(*dataset.values(["sample_id", "id"])))
    # What a reviewer does in the App: a filter and a selection saved as views, a workspace,
    # a decision tagged on a label, a field of their own.
    n_left = len(dataset.match((F("side") == "L") & (F("excluded") == False)))  # noqa: E712
    dataset.save_view("left knees", dataset.match(F("side") == "L"), description="mine")
    picked = list(ids.values())[:3]
    dataset.save_view("picked", dataset.select(picked))  # the App saves selections by sample id
    workspace = fo.Space(children=[fo.Panel(type="Samples")])
    dataset.save_workspace("grid only", workspace, description="mine")
    reviewed = list(ids)[6]
    dataset.select_by("sample_id", [reviewed]).tag_labels("relabel:3", label_fields="ground_truth")
    dataset.set_values("note", {ids[reviewed]: "check the joint space"}, key_field="id")
    assert "excluded" in dataset.list_saved_views() and dataset.count_sample_tags()["excluded"] == 2

    # Rebuilt without the selection table: the excluded samples and curate's view of them go.
    context = Context(**{k: v for k, v in tables.items() if k != "selection"})
    rebuilt = build_dataset(rows, name=name, context=context, media_dir=tmp_path / "media")

    views = set(rebuilt.list_saved_views())
    assert {"left knees", "picked", "train", "label issues"} <= views and "excluded" not in views
    assert len(rebuilt.load_saved_view("left knees")) == n_left
    assert sorted(rebuilt.load_saved_view("picked").values("id")) == sorted(picked)
    assert rebuilt.get_saved_view_info("left knees")["description"] == "mine"
    assert "left knees" not in rebuilt.info[SAVED_VIEWS_KEY] and "train" in rebuilt.info[SAVED_VIEWS_KEY]
    assert rebuilt.list_workspaces() == ["grid only"] and rebuilt.load_workspace("grid only") == workspace
    kept = dict(zip(*rebuilt.values(["sample_id", "id"])))
    assert kept == {i: ids[i] for i in rows["sample_id"]}  # updated in place, not recreated
    assert "excluded" not in rebuilt.count_sample_tags()
    one = rebuilt.select_by("sample_id", [reviewed]).first()
    assert one.ground_truth.tags == ["relabel:3"] and one.note == "check the joint space"
    review = pull_review(rebuilt)
    assert (review["sample_id"] == reviewed).sum() == 1 and set(review["new_label"]) == {"3"}


def test_a_reviewers_view_named_like_one_of_curates_wins(fo, tiny, tmp_path):
    rows, _, tables = tiny
    name = "rebuild-names"
    without_selection = Context(**{k: v for k, v in tables.items() if k != "selection"})
    dataset = build_dataset(rows, name=name, context=without_selection, media_dir=tmp_path / "media")
    assert "excluded" not in dataset.list_saved_views()
    dataset.save_view("excluded", dataset.match_tags("exclude"), description="mine")

    rebuilt = build_dataset(rows, name=name, context=Context(**tables), media_dir=tmp_path / "media")

    assert rebuilt.get_saved_view_info("excluded")["description"] == "mine"
    assert "excluded" not in rebuilt.info[SAVED_VIEWS_KEY]


def test_a_dataset_curate_did_not_make_is_left_alone(fo, tiny, tmp_path):
    rows, _, _ = tiny
    other = fo.Dataset("someone-elses", persistent=True)
    other.add_sample(fo.Sample(filepath=str(tmp_path / "x.png")))
    with pytest.raises(CurateError, match="'someone-elses' was not made by `curate browse`"):
        build_dataset(rows, name="someone-elses", media_dir=tmp_path / "media")
    assert len(fo.load_dataset("someone-elses")) == 1


def test_data_root_follows_images_that_moved(fo, tiny, tmp_path):
    rows, store, _ = tiny
    recorded = Path(rows.attrs["card"]["data_root"])
    moved = tmp_path / "moved"
    shutil.move(recorded, moved)

    refused = _browse("browse-tiny", "--store", store, "--dataset-name", "moved-root")
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert f"data root {recorded} (recorded in the manifest) is not a folder (give --data-root" in refused.output

    done = _browse("browse-tiny", "--store", store, "--dataset-name", "moved-root", "--data-root", moved)
    assert done.exit_code == 0, done.output
    assert "missing or unreadable" not in done.output
    dataset = fo.load_dataset("moved-root")
    assert dataset.info["data_root"] == str(moved)
    paths = dict(zip(*dataset.values(["source_path", "filepath"])))
    patient, side = SIXTEEN_BIT  # rendered: its rendering is in the media folder
    sixteen = rows["path"].str.endswith(f"/{9000000 + patient}{side}.png")
    plain = rows["crop"].isna() & rows["path"].str.endswith(".png") & ~sixteen
    assert plain.sum() > 10 and all(paths[p] == str(moved / p) for p in rows.loc[plain, "path"])
    assert dataset.count("metadata") == len(dataset)


def test_media_folder_is_beside_the_database_unless_given(monkeypatch, tmp_path):
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(tmp_path / "fo" / "database"))
    assert media_folder() == tmp_path / "fo" / "media"
    assert media_folder(tmp_path / "mine") == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CurateError, match="cannot create the media folder .*a-file.*--media-dir"):
        media_folder(tmp_path / "a-file" / "media")


def test_cli_puts_renderings_beside_the_database_or_in_media_dir(fo, tiny, tmp_path, monkeypatch):
    rows, store, _ = tiny
    monkeypatch.delenv("CURATE_FIFTYONE_DIR", raising=False)  # the user's own FIFTYONE_DATABASE_DIR is then used
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(tmp_path / "fo" / "database"))
    dicom = rows.loc[rows["path"].str.endswith(".dcm"), "path"].iloc[0]

    def shown(*options) -> Path:
        result = _browse("browse-tiny", "--store", store, "--dataset-name", "media-dirs", *options)
        assert result.exit_code == 0, result.output
        return Path(dict(zip(*fo.load_dataset("media-dirs").values(["source_path", "filepath"])))[dicom])

    assert shown().is_relative_to(tmp_path / "fo" / "media")
    assert shown("--media-dir", tmp_path / "mine").is_relative_to(tmp_path / "mine")
    assert shown("--db-dir", tmp_path / "db", "--media-dir", tmp_path / "mine2").is_relative_to(tmp_path / "mine2")
    assert shown("--db-dir", tmp_path / "db").is_relative_to(tmp_path / "db" / "media")
