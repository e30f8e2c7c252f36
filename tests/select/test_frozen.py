from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.select import (
    BalancedSampler,
    SplitError,
    apply_frozen_split,
    catalog_fingerprint,
    freeze_split,
    make_split,
    official_split,
    read_frozen_split,
    select,
)
from tests.select._data import random_catalog


@pytest.fixture
def catalog():
    return random_catalog(np.random.default_rng(0), patients=80)


def test_frozen_file_holds_the_split_and_a_header(tmp_path, catalog):
    table = make_split(catalog, fractions="0.6,0.2,0.2", seed=3)
    freeze_split(table, tmp_path / "split.parquet")
    header = json.loads(pq.read_schema(tmp_path / "split.parquet").metadata[b"curate.split"])
    assert header == {
        "format": 1,
        "method": "new",
        "seed": 3,
        "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
        "catalog_fingerprint": catalog_fingerprint(catalog),
        "samples": len(catalog),
        "patients": catalog["patient_id"].nunique(),
    }
    frozen = read_frozen_split(tmp_path / "split.parquet")
    assert list(frozen.columns) == ["sample_id", "patient_id", "label", "split"]
    assert frozen.attrs["split"]["file"] == str(tmp_path / "split.parquet")


def test_freezing_is_byte_identical_and_ignores_row_order(tmp_path, catalog):
    table = make_split(catalog, seed=0)
    freeze_split(table, tmp_path / "a.parquet")
    freeze_split(table.iloc[::-1], tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_reuse_on_the_same_catalog_gives_the_same_split(tmp_path, catalog):
    table = make_split(catalog, seed=1)
    freeze_split(table, tmp_path / "split.parquet")
    reused = apply_frozen_split(catalog, read_frozen_split(tmp_path / "split.parquet"))
    assert reused["split"].equals(table["split"])
    assert reused.attrs["split"] | {"frozen": None} == {
        "method": "frozen",
        "frozen": None,
        "kept": len(catalog),
        "new_by_patient": 0,
        "new_by_hash": 0,
        "absent_from_catalog": 0,
        "catalog_changed": False,
    }


def test_new_samples_follow_their_patient_or_a_seeded_hash(tmp_path, catalog):
    table = make_split(catalog, seed=1)
    freeze_split(table, tmp_path / "split.parquet")
    frozen = read_frozen_split(tmp_path / "split.parquet")
    patient = catalog["patient_id"].iloc[0]
    extra = pd.DataFrame(
        {"sample_id": ["n1", "n2", "n3"], "path": ["x1", "x2", "x3"], "label": [0, 1, 2],
         "patient_id": [patient, "new-a", "new-b"], "source": "t"}
    )
    grown = pd.concat([catalog.iloc[5:], extra], ignore_index=True)
    reused = apply_frozen_split(grown, frozen).set_index("sample_id")
    assert reused.loc["n1", "split"] == table.loc[0, "split"]
    info = apply_frozen_split(grown, frozen).attrs["split"]
    assert (info["kept"], info["new_by_patient"], info["new_by_hash"], info["absent_from_catalog"]) == (
        len(catalog) - 5, 1, 2, 5,
    )
    assert info["catalog_changed"]
    # a new patient's split does not depend on which other patients are new
    alone = apply_frozen_split(pd.concat([catalog, extra.iloc[[2]]], ignore_index=True), frozen)
    assert alone.set_index("sample_id").loc["n3", "split"] == reused.loc["n3", "split"]


def test_hash_assignment_follows_the_fractions(tmp_path, catalog):
    freeze_split(make_split(catalog, seed=0), tmp_path / "split.parquet")
    newcomers = pd.DataFrame(
        {"sample_id": [f"n{i}" for i in range(3000)], "path": "x", "label": 0,
         "patient_id": [f"new{i}" for i in range(3000)], "source": "t"}
    )
    reused = apply_frozen_split(newcomers, read_frozen_split(tmp_path / "split.parquet"))
    shares = reused["split"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.03)


def test_selections_on_a_frozen_split_share_one_test_set(tmp_path, catalog):
    freeze_split(make_split(catalog, seed=2), tmp_path / "split.parquet")
    frozen = read_frozen_split(tmp_path / "split.parquet")
    full = select(catalog, split=frozen, sampler="full")
    balanced = select(catalog, split=frozen, sampler=BalancedSampler(n=10, short="available"), seed=9)
    test = lambda s: s.loc[s["split"] == "test", ["sample_id", "selected"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(test(full), test(balanced))
    assert full.attrs["selection"]["split"]["method"] == "frozen"


def test_official_split_freezes_with_its_observed_fractions(tmp_path):
    catalog = random_catalog(np.random.default_rng(1), patients=40, official=True)
    freeze_split(official_split(catalog), tmp_path / "split.parquet")
    header = read_frozen_split(tmp_path / "split.parquet").attrs["split"]
    assert header["method"] == "official" and header["seed"] is None
    assert sum(header["fractions"].values()) == pytest.approx(1.0)


def test_a_frozen_split_that_leaks_or_is_not_one_is_refused(tmp_path, catalog):
    table = make_split(catalog, seed=0)
    patient = table["patient_id"].value_counts().index[0]
    rows = table.index[table["patient_id"] == patient]
    table.loc[rows, "split"] = ["train", "test", *["train"] * (len(rows) - 2)]
    freeze_split(table, tmp_path / "leaky.parquet")
    with pytest.raises(SplitError, match=f"1 patient\\(s\\) in more than one split, e.g. {patient}"):
        apply_frozen_split(catalog, read_frozen_split(tmp_path / "leaky.parquet"))
    catalog.to_parquet(tmp_path / "not_a_split.parquet")
    with pytest.raises(CurateError, match="not a frozen split written by curate"):
        read_frozen_split(tmp_path / "not_a_split.parquet")
    with pytest.raises(CurateError, match="no such frozen split file"):
        read_frozen_split(tmp_path / "missing.parquet")


def test_freezing_never_overwrites_a_file_curate_did_not_write(tmp_path):
    from curate.select.frozen import freeze_split as freeze

    table = pd.DataFrame(
        {"sample_id": ["a", "b"], "patient_id": ["p1", "p2"], "label": [0, 1], "split": ["train", "test"]}
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(CurateError, match="not a frozen split written by curate"):
        freeze(table, notes)
    assert notes.read_text() == "my notes\n"
    (tmp_path / "folder").mkdir()
    with pytest.raises(CurateError, match="not overwritten"):
        freeze(table, tmp_path / "folder")
    frozen = freeze(table, tmp_path / "split.parquet")
    freeze(table.assign(split=["test", "train"]), frozen)  # its own file may be replaced
    assert list(pd.read_parquet(frozen)["split"]) == ["test", "train"]
