"""``curate manifest list|show|diff|verify|lineage`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.manifest import build_manifest, diff_manifests, write_manifest
from tests.conftest import knee_like, write_png
from tests.manifest._data import hand_selection, tiny_dataset


@pytest.fixture
def store(tmp_path):
    catalog = tiny_dataset(tmp_path / "data")
    selection = hand_selection(catalog)
    store = tmp_path / "store"
    first = write_manifest(build_manifest(catalog, selection, name="kl", recipe={"n": 1}), store)
    changed = selection.copy()
    changed.loc[0, "label"] = 4  # relabelled
    changed.loc[2, "split"] = "test"  # moved
    changed.loc[4, ["selected", "repeat"]] = [False, 0]  # removed
    second = write_manifest(build_manifest(catalog, changed, name="kl", recipe={"n": 2}), store)
    return {"path": store, "first": first, "second": second, "selection": selection, "catalog": catalog}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_diff_names_removed_relabelled_and_moved_samples(store):
    ids = store["selection"]["sample_id"]
    result = diff_manifests(store["first"], store["second"])
    assert result["removed"] == {"count": 1, "examples": [ids[4]]}
    assert result["added"]["count"] == 0
    assert result["relabelled"]["count"] == 1
    assert result["relabelled"]["examples"][0] == {"sample_id": ids[0], "from": "0", "to": "4"}
    assert result["split_changed"]["count"] == 1 and result["split_changed"]["examples"][0]["to"] == "test"
    assert result["recipe_changes"] == [{"key": "n", "from": 1, "to": 2}]
    back = diff_manifests(store["second"], store["first"])
    assert back["added"] == {"count": 1, "examples": [ids[4]]}


def test_diff_command_json_and_text(store):
    a, b = store["first"].ref, store["second"].ref
    out = run("manifest", "diff", a, b, "--store", store["path"], "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["relabelled"]["count"] == 1
    text = run("manifest", "diff", a, b, "--store", store["path"])
    assert "relabelled: 1" in text.output and "removed: 1" in text.output


def test_list_show_and_lineage(store):
    listed = json.loads(run("manifest", "list", "--store", store["path"], "--json").output)
    assert {e["version"] for e in listed} == {store["first"].version, store["second"].version}
    assert [e["latest"] for e in listed if e["version"] == store["second"].version] == [True]
    assert "kl" in run("manifest", "list", "--store", store["path"]).output
    shown = json.loads(run("manifest", "show", "kl", "--store", store["path"], "--json").output)
    assert shown["version"] == store["second"].version
    assert run("manifest", "show", "kl", "--store", store["path"]).exit_code == 0
    chain = json.loads(run("manifest", "lineage", "kl", "--store", store["path"], "--json").output)
    assert [e["ref"] for e in chain] == [store["second"].ref, store["first"].ref]
    assert chain[0]["changes"]["removed"] == 1 and chain[0]["changes"]["relabelled"] == 1
    assert "recipe n: 1 -> 2" in run("manifest", "lineage", "kl", "--store", store["path"]).output


def test_verify_passes_then_catches_a_modified_and_a_deleted_file(store):
    ok = run("manifest", "verify", "kl", "--store", store["path"])
    assert ok.exit_code == 0, ok.output
    root = Path(store["second"].card["data_root"])
    rows = store["second"].rows
    write_png(root / rows["path"][0], knee_like(999))
    (root / rows["path"][1]).unlink()
    bad = run("manifest", "verify", "kl", "--store", store["path"], "--json")
    assert bad.exit_code == 1
    result = json.loads(bad.output)
    assert [m["path"] for m in result["modified"]] == [rows["path"][0]]
    assert [m["path"] for m in result["missing"]] == [rows["path"][1]]
    assert "1 missing, 1 modified" in run("manifest", "verify", "kl", "--store", store["path"]).output


def test_verify_under_another_data_root(store, tmp_path):
    moved = tmp_path / "moved"
    Path(store["second"].card["data_root"]).rename(moved)
    assert run("manifest", "verify", "kl", "--store", store["path"]).exit_code == 1
    assert run("manifest", "verify", "kl", "--store", store["path"], "--data-root", moved).exit_code == 0


@pytest.mark.parametrize("args", [("show", "nope"), ("verify", "kl@ffffffffffffffff"), ("diff", "kl", "nope")])
def test_unknown_manifest_is_one_line_exit_2(store, args):
    out = CliRunner().invoke(main, ["manifest", *args, "--store", str(store["path"])])
    assert out.exit_code == 2
    assert out.stderr.startswith("curate: error:") and out.stderr.count("\n") == 1
