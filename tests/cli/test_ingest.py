from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from curate.catalog import read_catalog
from curate.cli import main
from tests.conftest import knee_like, write_png


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("curate: error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def kl_folder(tmp_path):
    for i, rel in enumerate(["train/0/9000001L.png", "train/4/9000001R.png", "test/2/9000002L.png", "test/2/bad.png"]):
        write_png(tmp_path / "kl" / rel, knee_like(i))
    return tmp_path / "kl"


def test_ingest_writes_catalog_problems_and_summary(kl_folder, tmp_path):
    out = tmp_path / "out" / "catalog.parquet"
    result = _run("ingest", "oai-kl", kl_folder, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["samples"] == 3 and summary["patients"] == 2
    assert summary["by_split"] == {"train": {"0": 1, "2": 0, "4": 1}, "test": {"0": 0, "2": 1, "4": 0}}
    assert summary["problems"]["unparsed_name"]["count"] == 1
    assert len(read_catalog(out)) == 3
    problems = pd.read_csv(summary["problems_file"])
    assert list(problems["where"]) == ["test/2/bad.png"]


def test_human_summary_lists_counts_and_problems(kl_folder, tmp_path):
    result = _run("ingest", "oai-kl", kl_folder, "-o", tmp_path / "c.parquet")
    assert result.exit_code == 0
    assert "3 samples, 2 patients" in result.output and "unparsed_name: 1" in result.output


@pytest.mark.parametrize("case", ["missing", "empty", "no_column", "bad_option_value"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    out = tmp_path / "c.parquet"
    if case == "missing":
        result = _run("ingest", "oai-kl", tmp_path / "nope", "-o", out)
        _assert_one_line_error(result, "nope", "no such file or folder")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        result = _run("ingest", "imagefolder", tmp_path / "empty", "-o", out)
        _assert_one_line_error(result, "empty", "the folder is empty")
    elif case == "no_column":
        table = tmp_path / "t.csv"
        pd.DataFrame({"file": ["a.png"], "grade": [1]}).to_csv(table, index=False)
        result = _run("ingest", "table", table, "-o", out, "--path-col", "file", "--label-col", "kl", "--patient-col", "file")
        _assert_one_line_error(result, "t.csv", "no column 'kl'")
    else:
        write_png(tmp_path / "a/x/1.png", knee_like(0))
        result = _run("ingest", "imagefolder", tmp_path / "a", "-o", out, "--patient-pattern", "(")
        _assert_one_line_error(result, "patient_pattern")
    assert not out.exists() and not list(tmp_path.glob(".c.parquet*"))


def test_console_script_runs_as_a_process(kl_folder, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "ingest", "oai-kl", str(tmp_path / "missing"), "-o", str(tmp_path / "c.parquet")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"curate: error: {tmp_path / 'missing'}: no such file or folder"
