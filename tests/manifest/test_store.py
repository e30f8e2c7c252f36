"""Building manifests, content-addressed versions, the store and load_manifest."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import curate
from curate.errors import CurateError
from curate.manifest import (
    ROW_COLUMNS,
    build_manifest,
    latest_version,
    list_manifests,
    load_manifest,
    versions,
    write_manifest,
)
from curate.select import select
from tests.manifest._data import hand_selection, tiny_dataset


@pytest.fixture
def data(tmp_path):
    catalog = tiny_dataset(tmp_path / "data")
    return catalog, hand_selection(catalog), tmp_path / "store"


def test_rows_hold_what_a_trainer_needs(data):
    catalog, selection, _ = data
    selection.loc[0, "repeat"] = 3
    selection.loc[1, ["selected", "repeat", "weight"]] = [False, 0, 0.0]
    selection.loc[1, "exclusion_reason"] = "blank; label_issue (given 0, suggested 3)"
    manifest = build_manifest(catalog, selection, name="kl", recipe={"sampler": "full"})
    rows = manifest.rows
    assert list(rows.columns[: len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
    assert len(rows) == len(catalog) - 1 and catalog["sample_id"][1] not in set(rows["sample_id"])
    assert rows.loc[0, "repeat"] == 3
    assert manifest.card["rows"] == len(rows) + 2
    assert manifest.card["exclusions"] == {"blank": 1, "label_issue": 1}
    assert rows["sha256"].str.len().eq(64).all()
    counts = manifest.card["counts"]
    assert set(counts) == {"train", "val", "test"}
    assert sum(c["samples"] for by in counts.values() for c in by.values()) == len(rows)


def test_hashes_come_from_the_quality_table_and_flags_and_label_quality_are_kept(data):
    catalog, selection, _ = data
    quality = pd.DataFrame(
        {"sample_id": catalog["sample_id"], "file_sha256": ["f" * 64] * len(catalog), "flags": "dark"}
    )
    labels = pd.DataFrame({"sample_id": catalog["sample_id"], "label_quality": 0.5, "is_label_issue": False})
    rows = build_manifest(catalog, selection, name="kl", quality=quality, labels=labels).rows
    assert (rows["sha256"] == "f" * 64).all()
    assert (rows["flags"] == "dark").all() and (rows["label_quality"] == 0.5).all()
    assert not rows["is_label_issue"].any()


def test_same_inputs_give_the_same_version_and_write_nothing_new(data):
    catalog, selection, store = data
    first = build_manifest(catalog, selection, name="kl", recipe={"seed": 0}, created_at="2026-01-01T00:00:00+00:00")
    second = build_manifest(catalog, selection, name="kl", recipe={"seed": 0}, created_at="2027-01-01T00:00:00+00:00")
    assert first.version == second.version
    write_manifest(first, store)
    card_before = (store / "kl" / first.version / "card.json").read_bytes()
    stored = write_manifest(second, store)
    assert stored.card["created_at"] == "2026-01-01T00:00:00+00:00"  # the stored one, not overwritten
    assert (store / "kl" / first.version / "card.json").read_bytes() == card_before
    assert versions("kl", store) == [first.version]
    assert sorted(p.name for p in (store / "kl").iterdir()) == sorted(["LATEST", first.version])


def test_same_selection_call_twice_gives_the_same_version(data):
    catalog, _, _ = data
    ids = {build_manifest(catalog, select(catalog, split="new", sampler="full"), name="kl").version for _ in range(2)}
    assert len(ids) == 1


def test_a_changed_parameter_makes_a_new_version_naming_its_parent(data):
    catalog, selection, store = data
    first = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"n": 1}), store)
    second = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"n": 2}), store)
    assert second.version != first.version
    assert second.card["parent"] == f"kl@{first.version}"
    assert first.card["parent"] is None
    from curate.manifest import card_schema

    _check_top_level(second.card, card_schema())
    assert latest_version("kl", store) == second.version
    assert (store / "kl" / "LATEST").read_text().strip() == second.version
    assert not (store / "kl" / "LATEST").is_symlink()
    assert [e["version"] for e in list_manifests(store)] == versions("kl", store)


def test_changed_rows_change_the_version(data):
    catalog, selection, _ = data
    before = build_manifest(catalog, selection, name="kl").version
    selection.loc[0, "split"] = "test"
    assert build_manifest(catalog, selection, name="kl").version != before


def test_load_manifest_by_name_name_at_version_and_path(data):
    catalog, selection, store = data
    old = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"n": 1}), store)
    new = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"n": 2}), store)
    by_name = load_manifest("kl", store=store)
    assert by_name.attrs["card"]["version"] == new.version
    by_version = curate.load_manifest(f"kl@{old.version}", store=store)
    assert by_version.attrs["card"]["version"] == old.version
    by_prefix = load_manifest(f"kl@{old.version[:6]}", store=store)
    assert by_prefix.attrs["card"]["version"] == old.version
    by_path = load_manifest(store / "kl" / old.version)
    pd.testing.assert_frame_equal(by_path, by_version)
    pd.testing.assert_frame_equal(by_version.reset_index(drop=True), old.rows, check_dtype=False)


@pytest.mark.parametrize("ref", ["nope", "kl@0000000000000000", "a/b/c"])
def test_unknown_manifest_is_one_line(data, ref):
    catalog, selection, store = data
    write_manifest(build_manifest(catalog, selection, name="kl"), store)
    with pytest.raises(CurateError) as err:
        load_manifest(ref, store=store)
    assert "\n" not in str(err.value)


def test_a_bad_name_is_refused(data):
    catalog, selection, store = data
    with pytest.raises(CurateError, match="manifest name"):
        write_manifest(build_manifest(catalog, selection, name="a@b"), store)


def test_a_missing_file_is_named_when_hashing(data):
    catalog, selection, _ = data
    (catalog.attrs["data_root"] and __import__("pathlib").Path(catalog.attrs["data_root"], catalog["path"][0])).unlink()
    with pytest.raises(CurateError, match="not found"):
        build_manifest(catalog, selection, name="kl")


def test_card_files_and_schema(data):
    catalog, selection, store = data
    manifest = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"a": [1, 2]}), store)
    folder = store / "kl" / manifest.version
    card = json.loads((folder / "card.json").read_text())
    assert card == manifest.card
    assert "# kl @" in (folder / "card.md").read_text()
    from curate.manifest import card_schema

    schema = card_schema()
    assert set(schema["required"]) <= set(card)
    _check_top_level(card, schema)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(card, schema)


def test_the_shipped_schema_matches_the_documented_copy():
    from pathlib import Path

    from curate.manifest.card import SCHEMA_FILE

    documented = Path(__file__).resolve().parents[2] / "manifests" / "card.schema.json"
    assert json.loads(documented.read_text()) == json.loads(SCHEMA_FILE.read_text())


def test_same_inputs_give_byte_identical_rows_files(data, tmp_path):
    catalog, selection, _ = data
    a = write_manifest(build_manifest(catalog, selection, name="kl", created_at="2026-01-01T00:00"), tmp_path / "a")
    b = write_manifest(build_manifest(catalog, selection, name="kl", created_at="2027-01-01T00:00"), tmp_path / "b")
    assert a.version == b.version
    rows = "kl/{}/rows.parquet".format(a.version)
    assert (tmp_path / "a" / rows).read_bytes() == (tmp_path / "b" / rows).read_bytes()


def test_recipe_with_paths_and_nan_is_recorded_as_json(data):
    from pathlib import Path

    catalog, selection, _ = data
    recipe = {"catalog": Path("c.parquet"), "beta": float("nan")}
    card = build_manifest(catalog, selection, name="kl", recipe=recipe).card
    assert card["recipe"] == {"catalog": "c.parquet", "beta": None}
    json.dumps(card, allow_nan=False)


def _check_top_level(card: dict, schema: dict) -> None:
    """The schema's top-level types and patterns, checked without jsonschema."""
    import re

    types = {"string": str, "integer": int, "object": dict, "array": list, "null": type(None)}
    for key, rule in schema["properties"].items():
        if key not in card:
            continue
        value = card[key]
        if "const" in rule:
            assert value == rule["const"], key
        allowed = rule.get("type")
        if allowed:
            names = allowed if isinstance(allowed, list) else [allowed]
            assert isinstance(value, tuple(types[n] for n in names)), key
        if "pattern" in rule and isinstance(value, str):
            assert re.match(rule["pattern"], value), key
