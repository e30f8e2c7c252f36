from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import FileMetaDataset

from curate.catalog import read_catalog
from curate.cli import main
from curate.quality.io import read_quality
from tests.conftest import knee_like, write_dicom, write_png
from tests.loaders._odd import make_odd_entries


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


# --------------------------------------------------------------------------- files from the real world


def _curate(*args, timeout: float = 60):
    """Run the console script as a user does; a hang (a named pipe opened) fails at ``timeout``."""
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def export(tmp_path):
    """A DICOM export from the real world: two series repeating IM0001.dcm, a CR without preamble or
    extension, and a pipe, a socket, broken links and link loops among the images."""
    root = tmp_path / "export"
    write_dicom(root / "S1/IM0001.dcm", knee_like(0), patient_id="P1", sop_uid="1.2.3.1")
    write_dicom(root / "S2/IM0001.dcm", knee_like(1), patient_id="P2", sop_uid="1.2.3.2")
    full = write_dicom(tmp_path / "chest.dcm", knee_like(2), patient_id="P3", sop_uid="1.2.3.3", modality="CR")
    ds = pydicom.dcmread(full)
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    (root / "S3").mkdir()
    ds.save_as(root / "S3/CR-MONO1-10-chest", implicit_vr=True, little_endian=True, enforce_file_format=False)
    odd = {f"S1/{name}": kind for name, kind in make_odd_entries(root / "S1", "{kind}.dcm").items()}
    return root, odd


def test_ingest_dicom_of_a_real_world_export_finishes_and_lists_every_odd_entry(export, tmp_path):
    root, odd = export
    out = tmp_path / "catalog.parquet"
    proc = _curate("ingest", "dicom", root, "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(read_catalog(out)["path"]) == ["S1/IM0001.dcm", "S2/IM0001.dcm", "S3/CR-MONO1-10-chest"]
    summary = json.loads(proc.stdout)
    problems = pd.read_csv(summary["problems_file"])
    assert dict(zip(problems["where"], problems["kind"])) == odd
    assert problems["detail"].str.len().gt(0).all()


def test_ingest_dicom_labels_by_patient_id_and_refuses_a_file_name_two_series_hold(export, tmp_path):
    root, _ = export
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"patient_id": ["P1", "P3"], "label": ["fracture", "normal"]}).to_csv(labels, index=False)
    out = tmp_path / "catalog.parquet"
    result = _run("ingest", "dicom", root, "-o", out, "--labels", labels, "--key", "patient_id")
    assert result.exit_code == 0, result.output
    assert read_catalog(out).set_index("path")["label"].to_dict() == {
        "S1/IM0001.dcm": "fracture", "S2/IM0001.dcm": None, "S3/CR-MONO1-10-chest": "normal"
    }

    by_name = tmp_path / "by_name.csv"
    pd.DataFrame({"filename": ["IM0001.dcm"], "label": ["fracture"]}).to_csv(by_name, index=False)
    result = _run("ingest", "dicom", root, "-o", tmp_path / "other.parquet", "--labels", by_name)
    _assert_one_line_error(result, "'IM0001.dcm'", "S1/IM0001.dcm", "S2/IM0001.dcm", "'path'")
    assert result.exit_code == 2 and not (tmp_path / "other.parquet").exists()


def test_scan_of_a_catalog_naming_a_pipe_finishes_with_that_row_unreadable(tmp_path):
    data = tmp_path / "data"
    write_png(data / "a.png", knee_like(0))
    write_png(data / "b.png", knee_like(1))
    os.mkfifo(data / "c.png")
    table = data / "table.csv"
    pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "label": [0, 1, 1], "patient": ["p1", "p2", "p3"]}).to_csv(
        table, index=False
    )
    catalog = tmp_path / "catalog.parquet"
    ingest = _curate("ingest", "table", table, "--path-col", "path", "--label-col", "label", "--patient-col", "patient",
                     "-o", catalog)
    assert ingest.returncode == 0 and "not_a_regular_file: 1" in ingest.stdout, ingest.stdout + ingest.stderr
    cache = tmp_path / "cache"
    for run in ("measured", "partly cached"):  # the second run hashes files to find them in the cache
        proc = _curate("scan", catalog, "-o", tmp_path / "quality.parquet", "--workers", "1", "--cache-dir", cache)
        assert proc.returncode == 0, (run, proc.stderr)
        quality = read_quality(tmp_path / "quality.parquet").set_index("path")
        assert quality.loc["c.png", ["readable", "error", "error_detail"]].tolist() == [
            False, "not_a_regular_file", "a named pipe (FIFO)"
        ], run
        assert quality.loc[["a.png", "b.png"], "readable"].all()


def test_scan_of_a_catalog_without_its_data_root_says_so_in_one_line(tmp_path):
    data = tmp_path / "data"
    write_png(data / "a.png", knee_like(0))
    elsewhere = tmp_path / "catalogs"
    elsewhere.mkdir()
    # written by plain pandas: no data-root metadata, so its files are looked for beside it
    rows = {"sample_id": ["s:a"], "path": ["a.png"], "label": [0], "patient_id": ["p1"], "source": ["s"]}
    pd.DataFrame(rows).to_parquet(elsewhere / "catalog.parquet", index=False)
    result = _run("scan", elsewhere / "catalog.parquet", "-o", tmp_path / "q.parquet", "--workers", "1", "--no-cache")
    _assert_one_line_error(result, "records no data root", str(elsewhere), "a.png", "--data-root")
    assert result.exit_code == 2 and not (tmp_path / "q.parquet").exists()
    result = _run("scan", elsewhere / "catalog.parquet", "-o", tmp_path / "q.parquet", "--workers", "1", "--no-cache",
                  "--data-root", data, "--json")
    assert result.exit_code == 0, result.output


def test_ingest_with_a_deid_key_writes_pseudonyms_and_records_the_key_id(kl_folder, tmp_path):
    key = tmp_path / "secret.key"
    key.write_text("9" * 32)
    out = tmp_path / "deid.parquet"
    result = _run("ingest", "oai-kl", kl_folder, "-o", out, "--deid-key-file", key, "--json")
    assert result.exit_code == 0, result.output
    catalog = read_catalog(out)
    assert catalog["patient_id"].str.fullmatch(r"p-[0-9a-f]{16}").all()
    assert not set(catalog["patient_id"]) & {"9000001", "9000002"}
    assert catalog.attrs["deid"]["key_id"] == json.loads(result.output)["deid"]["key_id"]
    assert "9" * 32 not in out.read_bytes().decode("latin-1")
    human = _run("ingest", "oai-kl", kl_folder, "-o", tmp_path / "again.parquet", "--deid-key-file", key)
    assert "de-identified with key" in human.output
    assert list(read_catalog(tmp_path / "again.parquet")["patient_id"]) == list(catalog["patient_id"])
    short = tmp_path / "short.key"
    short.write_text("abc")
    _assert_one_line_error(_run("ingest", "oai-kl", kl_folder, "-o", tmp_path / "x.parquet", "--deid-key-file", short),
                           "at least 16 bytes")
    assert not (tmp_path / "x.parquet").exists()


def test_no_stage_overwrites_a_file_it_did_not_write(kl_folder, tmp_path):
    notes = tmp_path / "notes.parquet"
    notes.write_text("my notes\n")
    catalog = tmp_path / "catalog.parquet"
    assert _run("ingest", "oai-kl", kl_folder, "-o", catalog).exit_code == 0
    for args in (["ingest", "oai-kl", kl_folder, "-o", notes], ["scan", catalog, "-o", notes],
                 ["select", catalog, "--sampler", "full", "-o", notes]):
        _assert_one_line_error(_run(*args), "not a table curate wrote; not overwritten")
        assert notes.read_text() == "my notes\n"
