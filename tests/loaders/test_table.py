from __future__ import annotations

import os

import pandas as pd
import pytest

from curate.errors import CurateError, LoaderError
from curate.loaders import load
from tests.conftest import knee_like, write_png
from tests.loaders._odd import make_odd_entries, problems_of


def _table(tmp_path, rows, name="labels.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_table_gives_catalog_with_extra_columns_and_missing_files_reported(tmp_path):
    for i, rel in enumerate(["img/a.png", "img/b.png"]):
        write_png(tmp_path / rel, knee_like(i))
    table = _table(
        tmp_path,
        {
            "file": ["img/a.png", "img/b.png", "img/gone.png"],
            "grade": [0, 3, 1],
            "subject": ["007", "007", "9"],
            "fold": ["train", "valid", "test"],
            "site": ["A", "B", "C"],
        },
    )
    result = load("table", table, path_col="file", label_col="grade", patient_col="subject", split_col="fold")
    cat = result.catalog.set_index("path")
    assert cat.loc["img/b.png", "label"] == 3 and cat.loc["img/b.png", "patient_id"] == "007"
    assert cat.loc["img/b.png", "official_split"] == "val" and cat.loc["img/a.png", "site"] == "A"
    assert list(result.problems.itertuples(index=False, name=None)) == [
        ("missing_file", "img/gone.png", "listed in the table, not on disk")
    ]


def test_missing_column_names_column_and_file(tmp_path):
    table = _table(tmp_path, {"file": ["a.png"], "grade": [1]})
    with pytest.raises(CurateError, match=r"labels.csv: no column 'patient'; its columns are 'file', 'grade'"):
        load("table", table, path_col="file", label_col="grade", patient_col="patient")


def test_wrong_root_is_refused(tmp_path):
    table = _table(tmp_path, {"file": ["a.png", "b.png"], "grade": [1, 2], "p": ["1", "2"]})
    with pytest.raises(LoaderError, match="none of the 2 paths exists"):
        load("table", table, path_col="file", label_col="grade", patient_col="p")


def test_repeated_paths_name_the_lines(tmp_path):
    write_png(tmp_path / "a.png", knee_like(0))
    table = _table(tmp_path, {"file": ["a.png", "a.png"], "grade": [1, 2], "p": ["1", "1"]})
    with pytest.raises(LoaderError, match=r"listed more than once, lines 2 \(a.png\), 3 \(a.png\)"):
        load("table", table, path_col="file", label_col="grade", patient_col="p")


def test_required_option_missing(tmp_path):
    table = _table(tmp_path, {"file": ["a.png"]})
    with pytest.raises(LoaderError, match="needs the option 'label_col'"):
        load("table", table, path_col="file", patient_col="file")


def test_rows_naming_pipes_sockets_or_broken_links_are_kept_and_reported(tmp_path, deadline):
    write_png(tmp_path / "img/a.png", knee_like(0))
    odd = {f"img/{name}": kind for name, kind in make_odd_entries(tmp_path / "img").items()}
    paths = ["img/a.png", *odd]
    subjects = [f"p{i}" for i in range(len(paths))]
    table = _table(tmp_path, {"file": paths, "grade": [0] * len(paths), "subject": subjects})
    result = load("table", table, path_col="file", label_col="grade", patient_col="subject")
    assert list(result.catalog["path"]) == paths  # the scan says why each one is unreadable
    assert problems_of(result) == odd
    details = dict(zip(result.problems["where"], result.problems["detail"]))
    assert details["img/socket.png"] == "a socket; listed in the table, the scan will not read it"


def test_a_table_of_nothing_but_pipes_is_refused(tmp_path, deadline):
    os.mkfifo(tmp_path / "a.png")
    table = _table(tmp_path, {"file": ["a.png"], "grade": [0], "subject": ["p"]})
    with pytest.raises(LoaderError, match=r"none of the 1 paths is a regular file .*a\.png: a named pipe \(FIFO\)"):
        load("table", table, path_col="file", label_col="grade", patient_col="subject")
