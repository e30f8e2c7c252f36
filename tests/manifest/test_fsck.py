"""The store check: oversampled manifests verify, a broken card is reported (not a traceback)."""

from __future__ import annotations

from curate.manifest import build_manifest, latest_version, verify_manifest, write_manifest
from curate.manifest.fsck import check_store
from tests.manifest._data import hand_selection, tiny_dataset


def _stored(tmp_path, repeat: int = 1):
    catalog = tiny_dataset(tmp_path / "data", n_patients=8)
    selection = hand_selection(catalog)
    selection.loc[0, "repeat"] = repeat
    return write_manifest(build_manifest(catalog, selection, name="kl"), tmp_path / "store")


def test_an_oversampled_manifest_verifies_and_passes_the_store_check(tmp_path):
    manifest = _stored(tmp_path, repeat=3)
    assert manifest.card["rows"] == manifest.card["samples"] + 2
    assert verify_manifest(manifest)["ok"]
    assert check_store(tmp_path / "store") == []


def test_rows_that_do_not_match_their_card_are_reported(tmp_path):
    manifest = _stored(tmp_path)
    manifest.rows.iloc[:-1].to_parquet(manifest.folder / "rows.parquet")
    result = verify_manifest(manifest.__class__(rows=manifest.rows.iloc[:-1], card=manifest.card))
    assert not result["ok"] and "samples where the card says" in result["rows"]
    assert [p["problem"] for p in check_store(tmp_path / "store")] == ["rows_mismatch"]


def test_a_broken_card_is_reported_and_latest_repaired_to_a_readable_version(tmp_path):
    first = _stored(tmp_path)
    catalog = tiny_dataset(tmp_path / "data2", n_patients=9)
    second = write_manifest(build_manifest(catalog, hand_selection(catalog), name="kl"), tmp_path / "store")
    assert latest_version("kl", tmp_path / "store") == second.version
    (second.folder / "card.json").write_text("{truncated")
    found = check_store(tmp_path / "store", repair=True)
    assert {p["problem"] for p in found} == {"unreadable_version", "latest_dangling"}
    assert latest_version("kl", tmp_path / "store") == first.version
