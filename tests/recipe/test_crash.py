"""Store integrity: runs killed before each rename recover, concurrent runs never mix.

Each run is a real ``curate run`` process. A crash is a SIGKILL the process sends itself
just before the ``os.replace`` that would put one file in place (``LATEST``, the version
folder, the export folder, a work table), so nothing of Python's clean-up runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.demo import make_demo
from curate.manifest import latest_version, open_manifest, verify_manifest, versions
from curate.manifest.fsck import check_store

pytestmark = pytest.mark.slow

NAME = "crash-tiny"
RECIPE = """\
name: {name}
seed: 0
source:
  loader: oai-kl
  data_root: {root}
split:
  method: official
sampler:
  name: balanced
  n: 10
exports:
  - format: jsonl
    output: "{{work}}/../exports/{{name}}@{{version}}"
"""

# Runs curate's CLI with os.replace wrapped: a destination matching $KILL_BEFORE kills the process.
KILLER = """
import os, re, signal, sys
pattern = re.compile(os.environ["KILL_BEFORE"])
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if pattern.search(str(dst)):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from curate.cli import main
sys.argv = ["curate", *sys.argv[1:]]
main()
"""

RENAMES = {
    "LATEST": rf"/{NAME}/LATEST$",
    "version folder": rf"/{NAME}/[0-9a-f]{{16}}$",
    "export folder": rf"/exports/{NAME}@[0-9a-f]{{16}}$",
    "work tables": r"/(catalog|selection)\.parquet$",
}


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo_data"
    make_demo(root, scale=0.05)
    return root


def _curate(tmp: Path, *args: str, kill_before: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "curate"]
    if kill_before is not None:
        env["KILL_BEFORE"] = kill_before
        command = [sys.executable, "-c", KILLER]
    places = ["--store", str(tmp / "store")] + (["--work", str(tmp / "work")] if args[0] == "run" else [])
    return subprocess.Popen(
        [*command, *args, *places],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _run(tmp: Path, recipe: Path, *sets: str, kill_before: str | None = None) -> tuple[int, str, str]:
    args = ["run", str(recipe), *[a for s in sets for a in ("--set", s)]]
    process = _curate(tmp, *args, kill_before=kill_before)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def _store_is_sound(tmp: Path) -> None:
    store = tmp / "store"
    for version in versions(NAME, store):
        manifest = open_manifest(f"{NAME}@{version}", store)
        result = verify_manifest(manifest)
        assert result["ok"], result
    assert check_store(store) == []


@pytest.mark.parametrize("where", list(RENAMES))
def test_a_run_killed_before_a_rename_recovers_on_rerun(tiny_demo, tmp_path, where):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(name=NAME, root=tiny_demo))
    code, out, _ = _run(tmp_path, recipe)  # a first version, the parent of the next
    assert code == 0
    first = latest_version(NAME, tmp_path / "store")

    code, _, _ = _run(tmp_path, recipe, "sampler.n=5", kill_before=RENAMES[where])
    assert code == -9  # killed, as asked
    code, out, err = _run(tmp_path, recipe, "sampler.n=5")
    assert code == 0, err
    second = latest_version(NAME, tmp_path / "store")
    assert second != first and versions(NAME, tmp_path / "store") == [first, second]
    card = open_manifest(NAME, tmp_path / "store").card
    assert card["parent"] == f"{NAME}@{first}"
    assert sum(c["rows"] for c in card["counts"]["train"].values()) == 5
    export = tmp_path / "exports" / f"{NAME}@{second}"
    assert json.loads((export / "curate_export.json").read_text())["ref"] == f"{NAME}@{second}"
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []  # the killed run's temporaries were cleaned by the rerun
    _store_is_sound(tmp_path)
    # the next version names the right parent
    assert _run(tmp_path, recipe, "sampler.n=15")[0] == 0
    assert open_manifest(NAME, tmp_path / "store").card["parent"] == f"{NAME}@{second}"


def test_fsck_reports_and_repairs_what_a_kill_leaves(tiny_demo, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(name=NAME, root=tiny_demo))
    code, _, _ = _run(tmp_path, recipe, kill_before=RENAMES["version folder"])
    assert code == -9
    found = check_store(tmp_path / "store")
    assert [p["problem"] for p in found] == ["stale_temporary"]
    code, _, _ = _run(tmp_path, recipe, kill_before=RENAMES["LATEST"])
    assert code == -9
    fsck = _curate(tmp_path, "manifest", "fsck")
    out, _ = fsck.communicate(timeout=60)
    assert fsck.returncode == 1 and "latest_missing" in out
    fsck = _curate(tmp_path, "manifest", "fsck", "--repair")
    out, _ = fsck.communicate(timeout=60)
    assert fsck.returncode == 0 and "repaired" in out
    assert latest_version(NAME, tmp_path / "store") == versions(NAME, tmp_path / "store")[-1]
    _store_is_sound(tmp_path)


def test_concurrent_runs_with_different_overrides_store_rows_that_match_their_cards(tiny_demo, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(name=NAME, root=tiny_demo))
    for trial in range(20):
        sizes = (5 * (1 + trial % 3), 20)
        runs = [_curate(tmp_path, "run", str(recipe), "--set", f"sampler.n={n}", "--json") for n in sizes]
        results = [(p.communicate(timeout=180), p.returncode) for p in runs]
        for ((out, err), code), n in zip(results, sizes):
            assert code == 0, err
            summary = json.loads(out)
            card = open_manifest(summary["ref"], tmp_path / "store").card
            assert sum(c["rows"] for c in card["counts"]["train"].values()) == n
            assert len(open_manifest(summary["ref"], tmp_path / "store").rows) == card["rows"]
    _store_is_sound(tmp_path)


def test_identical_runs_together_both_succeed_or_say_why_in_one_line(tiny_demo, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.format(name=NAME, root=tiny_demo))
    for _ in range(5):
        runs = [_curate(tmp_path, "run", str(recipe)) for _ in range(2)]
        for process in runs:
            out, err = process.communicate(timeout=180)
            assert "Traceback" not in err
            assert process.returncode == 0 or (process.returncode == 2 and err.count("\n") == 1), err
    _store_is_sound(tmp_path)
