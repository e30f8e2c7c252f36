"""Build a FiftyOne dataset from a manifest with the real FiftyOne and mongod, reload it elsewhere, review it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from curate.browse.context import Context
from curate.browse.dataset import GENERATED_TAGS_KEY, build_dataset, dataset_name
from curate.imaging import read_image
from curate.manifest import load_manifest
from tests.browse._data import SIXTEEN_BIT, tiny_store

_RELOAD = """
import json, sys
import fiftyone as fo
from fiftyone import ViewField as F
ds = fo.load_dataset(sys.argv[1])
kept = ds.match(F("excluded") == False)
counts = {}
for split, label in zip(*kept.values(["split", "ground_truth.label"])):
    counts.setdefault(split, {}).setdefault(label, 0)
    counts[split][label] += 1
print(json.dumps({
    "n": len(ds), "counts": counts, "fields": sorted(ds.get_field_schema()),
    "tags": ds.count_sample_tags(), "views": sorted(ds.list_saved_views()),
    "persistent": ds.persistent, "info": ds.info,
    "suggested": [s for s in ds.values("suggested.confidence") if s is not None],
    "metadata": ds.count("metadata.width"), "active": ds.app_config.active_fields.paths,
    "flag_labels": ds.count_values("flags.classifications.label"),
}))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("browse")
    store, tables = tiny_store(root)
    return load_manifest("browse-tiny", store), store, tables


@pytest.fixture(scope="module")
def built(fo, tiny, tmp_path_factory):
    rows, store, tables = tiny
    media = tmp_path_factory.mktemp("media")
    calls = []

    def progress(description, total):
        calls.append((description, total))
        return lambda n=1: calls.append(n)

    dataset = build_dataset(rows, context=Context(**tables), media_dir=media, progress=progress)
    return dataset, media, calls


def _reload(name: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _RELOAD, name], capture_output=True, text=True, env=os.environ.copy(),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dataset_reloads_in_another_process_with_the_manifest_counts(built, tiny):
    rows, _, _ = tiny
    dataset, _, calls = built
    card = rows.attrs["card"]
    assert dataset.name == dataset_name(card) == f"browse-tiny@{card['version']}"
    seen = _reload(dataset.name)
    expected = {split: {label: c["samples"] for label, c in by_label.items()} for split, by_label in card["counts"].items()}
    assert seen["counts"] == expected
    assert seen["n"] == len(rows) + 2  # the two excluded samples are shown too
    assert seen["persistent"]
    for field in ("filepath", "ground_truth", "suggested", "split", "patient_id", "side", "dup_group",
                  "label_quality", "sample_id", "sha256", "excluded", "exclusion_reason", "tags"):
        assert field in seen["fields"]
    assert seen["tags"]["excluded"] == 2
    assert seen["tags"]["near_duplicate"] == 2 and seen["tags"]["blurred"] == 1 and seen["tags"]["blank"] == 1
    assert seen["tags"]["label_issue"] == 1
    assert seen["views"] == sorted(["label issues", "near duplicates", "excluded", "train", "val", "test"])
    assert seen["info"]["manifest"] == f"browse-tiny@{card['version']}"
    assert 0.79 < max(seen["suggested"]) < 0.81
    assert seen["metadata"] == seen["n"]
    assert {"flags", "ground_truth", "suggested"} <= set(seen["active"])  # flags drawn on the tiles
    assert seen["flag_labels"] == {k: v for k, v in seen["tags"].items()}  # the same names as the tags
    assert calls[0] == ("adding samples", len(rows) + 2) and sum(calls[1:]) == len(rows) + 2


def test_saved_views_select_what_they_say(built):
    dataset, _, _ = built
    assert len(dataset.load_saved_view("near duplicates")) == 2
    assert set(dataset.load_saved_view("near duplicates").values("dup_group")) == {"g1"}
    assert len(dataset.load_saved_view("label issues")) == 1
    assert set(dataset.load_saved_view("excluded").values("exclusion_reason")) == {"blank"}
    assert set(dataset.load_saved_view("train").values("split")) == {"train"}
    assert not any(dataset.load_saved_view("train").values("excluded"))
    assert set(dataset.values("ground_truth.label")) == {"0", "1", "2", "3", "4"}


def test_dicom_16_bit_and_crops_are_shown_through_cached_png_renderings(built, tiny):
    from PIL import Image

    rows, _, _ = tiny
    dataset, media, _ = built
    paths = dict(zip(*dataset.values(["sample_id", "filepath"])))
    by_id = rows.set_index("sample_id")
    root = Path(rows.attrs["card"]["data_root"])
    dicom = [i for i in by_id.index if by_id.at[i, "path"].endswith(".dcm")]
    cropped = [i for i in by_id.index if isinstance(by_id.at[i, "crop"], str)]
    patient, side = SIXTEEN_BIT
    sixteen = [i for i in by_id.index if by_id.at[i, "path"].endswith(f"/{9000000 + patient}{side}.png")]
    assert len(dicom) == 2 and len(cropped) == 1 and len(sixteen) == 1
    for i in dicom + cropped + sixteen:
        assert Path(paths[i]).is_relative_to(media) and paths[i].endswith(".png")
        assert by_id.at[i, "sha256"] in Path(paths[i]).name
    assert Image.open(paths[cropped[0]]).size == (28, 28)
    assert Image.open(paths[dicom[0]]).size == (32, 32)
    shown = np.asarray(Image.open(paths[sixteen[0]]))
    np.testing.assert_array_equal(shown, read_image(root / by_id.at[sixteen[0], "path"]).as_uint8())
    assert shown.mean() > 64  # not the near-black image a browser makes of the raw file
    plain = next(i for i in by_id.index if i not in dicom + cropped + sixteen)
    assert paths[plain] == str(root / by_id.at[plain, "path"])


def test_samples_carry_the_metadata_of_what_the_app_shows(built, tiny):
    rows, _, _ = tiny
    dataset, _, _ = built
    assert dataset.count("metadata") == len(dataset)
    by_id = rows.set_index("sample_id")
    for sample in dataset.select_by("sample_id", list(by_id.index[:4])):
        assert (sample.metadata.width, sample.metadata.height) == ((28, 28) if sample.crop else (32, 32))
        assert sample.metadata.mime_type == "image/png"
        assert sample.metadata.size_bytes == Path(sample.filepath).stat().st_size


def test_reviewer_tags_are_pulled_to_csv_and_survive_a_rebuild(fo, built, tiny, tmp_path):
    from curate.cli import main

    rows, store, tables = tiny
    dataset, media, _ = built
    ids = list(rows["sample_id"])
    # What a reviewer does in the App, through the Python API.
    dataset.select_by("sample_id", [ids[0]]).tag_samples("exclude")
    dataset.select_by("sample_id", [ids[1]]).tag_samples("relabel:KL2")
    dataset.select_by("sample_id", [ids[2]]).tag_labels("relabel:3", label_fields="ground_truth")
    dataset.select_by("sample_id", [ids[3]]).tag_samples("looks odd")

    out = tmp_path / "review.csv"
    result = CliRunner().invoke(main, ["review", "pull", "browse-tiny", "--store", str(store), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 exclude, 2 relabel" in result.output
    review = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(review.columns) == ["sample_id", "action", "new_label", "tag"]
    got = {(r.sample_id, r.action, r.new_label, r.tag) for r in review.itertuples()}
    assert got == {(ids[0], "exclude", "", "exclude"), (ids[1], "relabel", "2", "relabel:KL2"),
                   (ids[2], "relabel", "3", "relabel:3")}

    rebuilt = build_dataset(rows, context=Context(**tables), media_dir=media)
    tags = dict(zip(*rebuilt.values(["sample_id", "tags"])))
    assert "exclude" in tags[ids[0]] and "relabel:KL2" in tags[ids[1]] and "looks odd" in tags[ids[3]]
    assert "blurred" in tags[ids[0]]  # generated tags are rebuilt, not duplicated
    assert tags[ids[0]].count("blurred") == 1
    assert "exclude" not in rebuilt.info[GENERATED_TAGS_KEY]


def test_cli_builds_without_launching(fo, tiny):
    from curate.cli import main

    rows, store, _ = tiny
    result = CliRunner().invoke(main, ["browse", "browse-tiny", "--store", str(store), "--no-launch", "--quiet",
                                       "--dataset-name", "browse-tiny-cli"])
    assert result.exit_code == 0, result.output
    assert f"dataset browse-tiny-cli: {len(rows)} samples" in result.output
    dataset = fo.load_dataset("browse-tiny-cli")
    assert dataset.count("ground_truth") == len(rows)
    assert "excluded" not in dataset.list_saved_views()  # no selection table found: only the manifest's rows
