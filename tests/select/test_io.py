from __future__ import annotations

import pandas as pd
import pytest

from curate.errors import CurateError
from curate.select import BalancedSampler, read_features, read_labels, read_selection, select, write_selection
from curate.select.io import parse_counts


def test_selection_round_trips_with_its_record(tmp_path, demo_tables):
    catalog, quality, labels = demo_tables
    selection = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=100))
    write_selection(selection, tmp_path / "selection.parquet")
    back = read_selection(tmp_path / "selection.parquet")
    pd.testing.assert_frame_equal(back, selection, check_dtype=False)
    assert back.attrs == selection.attrs
    write_selection(selection, tmp_path / "again.parquet")
    assert (tmp_path / "again.parquet").read_bytes() == (tmp_path / "selection.parquet").read_bytes()


def test_labels_csv_is_typed(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("sample_id,is_label_issue,grade_distance,label_quality\na,True,2,0.1\nb,false,,0.9\n")
    labels = read_labels(path)
    assert labels["is_label_issue"].tolist() == [True, False]
    assert str(labels["grade_distance"].dtype) == "Int64" and labels["label_quality"].tolist() == [0.1, 0.9]
    path.write_text("sample_id,is_label_issue\na,maybe\n")
    with pytest.raises(CurateError, match="is_label_issue holds 'maybe'"):
        read_labels(path)


def test_features_by_column_or_index(tmp_path):
    frame = pd.DataFrame({"sample_id": ["a", "b"], "f0": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "with_column.parquet")
    frame.set_index("sample_id").to_parquet(tmp_path / "indexed.parquet")
    for name in ("with_column.parquet", "indexed.parquet"):
        assert read_features(tmp_path / name).to_dict() == {"f0": {"a": 1.0, "b": 2.0}}
    frame.drop(columns="sample_id").to_parquet(tmp_path / "anonymous.parquet")
    with pytest.raises(CurateError, match="no sample_id column or index"):
        read_features(tmp_path / "anonymous.parquet")
    with pytest.raises(CurateError, match="no such features file"):
        read_features(tmp_path / "missing.parquet")


def test_parse_counts():
    assert parse_counts("0=100,1=50") == {"0": 100, "1": 50}
    assert parse_counts({0: 5}) == {"0": 5}
    for bad in ("0:100", "0=x", "=5", ""):
        with pytest.raises(CurateError, match="per-class counts"):
            parse_counts(bad)
