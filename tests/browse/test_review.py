"""Review files: tags to decisions, reading a CSV, applying it to a catalog."""

from __future__ import annotations

import pandas as pd
import pytest

from curate.browse.review import apply_review, parse_tag, read_review, review_sha256
from curate.errors import CurateError


@pytest.mark.parametrize("tag, expected", [
    ("exclude", ("exclude", None)), ("Exclude", ("exclude", None)), ("relabel:KL2", ("relabel", "2")),
    ("relabel:2", ("relabel", "2")), ("relabel: kl 3", ("relabel", "3")), ("relabel:pneumonia", ("relabel", "pneumonia")),
    ("blurred", None), ("relabel:", None),
])
def test_parse_tag(tag, expected):
    assert parse_tag(tag) == expected


def test_read_and_apply(tmp_path):
    path = tmp_path / "review.csv"
    path.write_text("sample_id,action,new_label,tag\na,exclude,,exclude\nb,relabel,2,relabel:KL2\nc,,,relabel:KL4\n")
    review = read_review(path)
    assert review.to_dict("list") == {"sample_id": ["a", "b", "c"], "action": ["exclude", "relabel", "relabel"],
                                      "new_label": [None, "2", "4"], "tag": ["exclude", "relabel:KL2", "relabel:KL4"]}
    catalog = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "label": pd.array([0, 1, 1, 3], dtype="Int64")})
    catalog.attrs["data_root"] = "/x"
    relabelled, excluded = apply_review(catalog, review)
    assert excluded == ["a"]
    assert relabelled["label"].tolist() == [0, 2, 4, 3] and str(relabelled["label"].dtype) == "Int64"
    assert catalog["label"].tolist() == [0, 1, 1, 3] and relabelled.attrs["data_root"] == "/x"
    assert len(review_sha256(path)) == 64


def test_bad_review_files(tmp_path):
    path = tmp_path / "r.csv"
    with pytest.raises(CurateError, match="not found"):
        read_review(path)
    path.write_text("sample_id,action,new_label,tag\na,delete,,\nb,relabel,,\n")
    with pytest.raises(CurateError, match="line 2: action 'delete'.*line 3: relabel without a new_label"):
        read_review(path)
    path.write_text("sample_id,action,new_label,tag\na,relabel,1,\na,relabel,2,\n")
    with pytest.raises(CurateError, match="two different relabel"):
        read_review(path)
    path.write_text("sample_id,action,new_label,tag\nzz,exclude,,\n")
    with pytest.raises(CurateError, match="not in the catalog"):
        apply_review(pd.DataFrame({"sample_id": ["a"], "label": [1]}), read_review(path))
