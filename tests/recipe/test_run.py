"""`curate run`: a tiny demo run, reuse of cached stages, versions and parents, the shipped KL pair."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.demo import make_demo
from curate.manifest import load_manifest, open_manifest, versions
from curate.recipe import load_recipe, run_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

TINY = """\
name: tiny-balanced
seed: 0
source:
  loader: oai-kl
  data_root: {root}
scan:
  thresholds: {{dark_mean: 0.08}}
split:
  method: official
sampler:
  name: balanced
  n: 10
exports:
  - format: jsonl
    output: "{{work}}/exports/{{name}}@{{version}}"
"""


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo_data"
    make_demo(root, scale=0.05)
    return root


def _run(args: list[str]) -> dict:
    result = CliRunner().invoke(main, ["run", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_run_twice_same_version_reuses_scan(tiny_demo: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY.format(root=tiny_demo))
    store, work = tmp_path / "store", tmp_path / "work"
    args = [str(recipe), "--store", str(store), "--work", str(work)]

    first = _run(args)
    stages = {s["stage"]: s for s in first["stages"]}
    assert first["new_version"] and first["ref"] == f"tiny-balanced@{first['version']}"
    assert not stages["scan"]["reused"]
    assert stages["select"]["selected"]["train"] == 10
    rows = load_manifest(first["ref"], store)
    assert (rows["split"] == "train").sum() == 10
    card = open_manifest(first["ref"], store).card
    assert card["recipe"]["sampler"]["n"] == 10 and card["recipe"]["scan"]["thresholds"] == {"dark_mean": 0.08}
    assert card["data_root"] == str(tiny_demo.resolve())
    export = work / "exports" / first["ref"]
    assert json.loads((export / "curate_export.json").read_text())["ref"] == first["ref"]
    quality = Path(stages["scan"]["output"])
    stamp = quality.stat().st_mtime_ns

    second = _run(args)
    stages2 = {s["stage"]: s for s in second["stages"]}
    assert second["version"] == first["version"] and not second["new_version"]
    assert stages2["scan"]["reused"] and quality.stat().st_mtime_ns == stamp
    assert [s["reused"] for s in second["stages"] if s["stage"] == "export"] == [True]
    assert versions("tiny-balanced", store) == [first["version"]]
    assert len([p for p in (store / "tiny-balanced").iterdir() if p.is_dir()]) == 1

    # A changed parameter: a new version whose card names the first as its parent; the scan is reused.
    third = _run([*args, "--set", "sampler.n=5"])
    assert third["new_version"] and third["version"] != first["version"]
    assert third["parent"] == first["ref"]
    assert open_manifest(third["ref"], store).card["parent"] == first["ref"]
    assert {s["stage"]: s for s in third["stages"]}["scan"]["reused"]

    # A changed threshold scans again (a new cache key).
    fourth = _run([*args, "--set", "scan.thresholds.dark_mean=0.2"])
    assert not {s["stage"]: s for s in fourth["stages"]}["scan"]["reused"]


def test_plain_output_prints_ids(tiny_demo: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY.format(root=tiny_demo))
    full = tmp_path / "full.yaml"
    full.write_text(TINY.format(root=tiny_demo).replace("tiny-balanced", "tiny-full").replace("  n: 10\n", "")
                    .replace("name: balanced", "name: full"))
    result = CliRunner().invoke(
        main, ["run", str(recipe), str(full), "--store", str(tmp_path / "s"), "--work", str(tmp_path / "w")]
    )
    assert result.exit_code == 0, result.output
    tail = result.output.strip().splitlines()[-2:]
    assert tail[0].startswith("tiny-balanced@") and tail[1].startswith("tiny-full@")
    assert "[reused]" in result.output  # the second recipe reuses the first one's scan


def test_oai_kl_pair_share_test_split(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "knee_kl_sample"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    store, work = tmp_path / "store", tmp_path / "work"
    balanced = load_recipe(RECIPES / "oai_kl_balanced_500.yaml", data_root=root,
                           overrides=["sampler.n=25", "sampler.short=available", "exports=[]"])
    full = load_recipe(RECIPES / "oai_kl_full.yaml", data_root=root, overrides=["exports=[]"])
    a = run_recipe(balanced, store=store, work=work)
    b = run_recipe(full, store=store, work=work)
    assert {s["stage"]: s for s in b["stages"]}["scan"]["reused"]
    rows_a, rows_b = load_manifest(a["ref"], store), load_manifest(b["ref"], store)
    for split in ("test", "val"):
        ids_a = sorted(rows_a.loc[rows_a["split"] == split, "sample_id"])
        ids_b = sorted(rows_b.loc[rows_b["split"] == split, "sample_id"])
        assert ids_a and ids_a == ids_b
    assert (rows_a["split"] == "train").sum() < (rows_b["split"] == "train").sum()
    frozen = pd.read_parquet(work / "oai-kl-split.parquet")
    assert set(rows_a.loc[rows_a["split"] == "test", "sample_id"]) <= set(frozen.loc[frozen["split"] == "test", "sample_id"])


def test_a_rerun_replaces_its_export_at_a_fixed_path_and_survives_a_broken_record(tiny_demo: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "fixed.yaml"
    recipe.write_text(TINY.format(root=tiny_demo).replace('"{work}/exports/{name}@{version}"', f'"{tmp_path}/export"'))
    store, work = tmp_path / "store", tmp_path / "work"
    first = _run([str(recipe), "--store", str(store), "--work", str(work)])
    second = _run([str(recipe), "--store", str(store), "--work", str(work), "--set", "sampler.n=5"])
    assert second["version"] != first["version"]
    record = json.loads((tmp_path / "export" / "curate_export.json").read_text())
    assert record["ref"] == second["ref"]  # the fixed folder now holds the new version's export
    (tmp_path / "export" / "curate_export.json").write_text('{"manifest": "tiny-bal')  # cut by a crash
    result = CliRunner().invoke(main, ["run", str(recipe), "--store", str(store), "--work", str(work)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not an export of tiny-balanced" in result.output
