from __future__ import annotations

import shutil

import pandas as pd
import pytest

from curate.catalog import (
    absolute_paths,
    make_sample_id,
    parse_crop,
    read_catalog,
    resolve_path,
    validate_catalog,
    write_catalog,
)
from curate.errors import CatalogError


def _catalog(n: int = 3, **extra) -> pd.DataFrame:
    paths = [f"train/0/{9000000 + i}L.png" for i in range(n)]
    df = pd.DataFrame(
        {
            "sample_id": [make_sample_id("test", p) for p in paths],
            "path": paths,
            "label": [0, 1, 2][:n],
            "patient_id": [str(9000000 + i) for i in range(n)],
            "source": "test",
        }
    )
    for key, values in extra.items():
        df[key] = values
    return df


def test_sample_id_depends_only_on_source_relative_path_and_part():
    a = make_sample_id("oai-kl", "train/0/9003175L.png")
    assert a == make_sample_id("oai-kl", "train/0/9003175L.png")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != make_sample_id("other", "train/0/9003175L.png")
    assert a != make_sample_id("oai-kl", "train/0/9003175R.png")
    assert make_sample_id("oai", "x.dcm", part="R") != make_sample_id("oai", "x.dcm", part="L")


def test_missing_required_column_is_named():
    with pytest.raises(CatalogError, match="missing required column.*'patient_id'"):
        validate_catalog(_catalog().drop(columns=["patient_id"]), name="my.parquet")


def test_duplicate_sample_ids_name_the_rows():
    df = _catalog()
    df.loc[2, "sample_id"] = df.loc[0, "sample_id"]
    with pytest.raises(CatalogError, match=r"'sample_id' repeats in 2 row\(s\): row 0 .*row 2"):
        validate_catalog(df)


def test_bad_optional_values_name_column_row_and_value():
    df = _catalog(side=["L", "X", "R"], official_split=["train", "train", "holdout"], crop=["0,0,5,5", None, "5,0,1,9"])
    with pytest.raises(CatalogError) as err:
        validate_catalog(df)
    message = str(err.value)
    assert "column 'side' must be 'L' or 'R' in 1 row(s): row 1" in message and "'X'" in message
    assert "column 'official_split'" in message and "'holdout'" in message
    assert "column 'crop'" in message and "row 2" in message


def test_absolute_paths_and_parent_escapes_are_refused():
    df = _catalog()
    df.loc[0, "path"] = "/data/x.png"
    df.loc[1, "path"] = "../x.png"
    with pytest.raises(CatalogError, match=r"'path' is not a path relative to the data root in 2 row"):
        validate_catalog(df)


def test_integer_labels_become_int_and_text_labels_stay_text():
    assert str(validate_catalog(_catalog(label=["0", "1", "2"]))["label"].dtype) == "Int64"
    assert str(validate_catalog(_catalog(label=["cat", "dog", None]))["label"].dtype) == "string"


def test_parse_crop():
    assert parse_crop("0, 10,112,224") == (0, 10, 112, 224)
    with pytest.raises(ValueError):
        parse_crop("10,0,5,5")


def test_round_trip_keeps_rows_dtypes_and_data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    df = _catalog(side=["L", "R", "L"], bits_stored=[8, 16, None], extra=["a", "b", "c"])
    out = write_catalog(df, tmp_path / "cat.parquet", root)
    back = read_catalog(out)
    pd.testing.assert_frame_equal(back, validate_catalog(df))
    assert back.attrs["data_root"] == str(root.resolve())
    assert absolute_paths(back)[0] == str(root.resolve() / "train/0/9000000L.png")


def test_catalog_moved_with_its_data_still_finds_it(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    write_catalog(_catalog(), project / "cat.parquet", project / "data")
    moved = tmp_path / "elsewhere" / "project"
    shutil.move(project, moved)
    assert read_catalog(moved / "cat.parquet").attrs["data_root"] == str((moved / "data").resolve())


def test_invalid_catalog_is_not_written(tmp_path):
    df = _catalog()
    df.loc[1, "sample_id"] = None
    with pytest.raises(CatalogError, match="'sample_id' is empty"):
        write_catalog(df, tmp_path / "cat.parquet", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_non_parquet_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "cat.parquet"
    bad.write_text("not parquet")
    with pytest.raises(CatalogError, match="not a readable Parquet catalog"):
        read_catalog(bad)


@pytest.mark.parametrize("root", ["/data", "/data/", "/", "relative/root", ".", ""])
def test_absolute_paths_join_as_pathlib_does(root):
    paths = ["a/b.png", "a//b.png", "./a.png", "a/./b.png", "a/.", "a/b/", "x.png", "a/.hidden/b.png", ".x/y.png", "a/..b/c.png", "a b/c.png", "a\\b.png"]
    catalog = pd.DataFrame({"path": paths})
    assert absolute_paths(catalog, root).tolist() == [str(resolve_path(root, p)) for p in paths]


def test_writing_a_catalog_never_replaces_a_file_curate_did_not_write(tmp_path):
    import pandas as pd
    import pytest

    from curate.catalog import write_catalog
    from curate.errors import CurateError

    catalog = pd.DataFrame({"sample_id": ["a"], "path": ["a.png"], "label": [0], "patient_id": ["p"], "source": ["t"]})
    notes = tmp_path / "catalog.parquet"
    notes.write_text("my notes\n")
    with pytest.raises(CurateError, match="not a table curate wrote; not overwritten"):
        write_catalog(catalog, notes, tmp_path)
    assert notes.read_text() == "my notes\n"
    other = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(other)
    with pytest.raises(CurateError, match="not overwritten"):
        write_catalog(catalog, other, tmp_path)
    ours = write_catalog(catalog, tmp_path / "ours.parquet", tmp_path)
    write_catalog(catalog, ours, tmp_path)  # its own file may be written again
