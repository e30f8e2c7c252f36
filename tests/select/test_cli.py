from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from curate.catalog import write_catalog
from curate.cli import main
from curate.cli.select import select as select_command
from curate.quality.io import write_quality
from curate.select import read_frozen_split, read_selection
from tests.select._data import TANGLE, catalog_of, random_catalog

if "select" not in main.commands:  # registered in curate/cli/__init__.py by its owner
    main.add_command(select_command)


def _run(*args):
    return CliRunner().invoke(main, ["select", *map(str, args)])


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("curate: error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_tables):
    folder = tmp_path_factory.mktemp("select")
    catalog, quality, labels = demo_tables
    write_catalog(catalog, folder / "catalog.parquet", folder)
    write_quality(quality, folder / "quality.parquet")
    labels.to_parquet(folder / "labels.parquet")
    return folder


def _inputs(files):
    return (files / "catalog.parquet", "--quality", files / "quality.parquet", "--labels", files / "labels.parquet")


def test_balanced_selection_is_written_and_summarised(files, tmp_path):
    out = tmp_path / "selection.parquet"
    result = _run(*_inputs(files), "--sampler", "balanced", "--n", "250", "-o", out)
    assert result.exit_code == 0, result.output
    assert "balanced: " in result.output and "label_issue" in result.output and f"wrote {out}" in result.output
    selection = read_selection(out)
    train = selection[(selection["split"] == "train") & selection["selected"]]
    assert train["label"].value_counts().to_dict() == dict.fromkeys(range(5), 50)


def test_json_report_and_a_frozen_split_shared_by_two_runs(files, tmp_path):
    split = tmp_path / "split.parquet"
    first = _run(*_inputs(files), "--split", "new", "--fractions", "0.6,0.2,0.2", "--split-seed", "3",
                 "--freeze-split", split, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["split"] == {"method": "new", "seed": 3, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}}
    assert report["frozen_split"] == str(split)
    assert read_frozen_split(split).attrs["split"]["seed"] == 3
    out = tmp_path / "balanced.parquet"
    second = _run(*_inputs(files), "--frozen-split", split, "--sampler", "balanced", "--n", "100",
                  "--strategy", "quality", "--seed", "4", "-o", out, "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["by_split"]["test"] == report["by_split"]["test"]


def test_exclusion_rules_are_options(files):
    result = _run(*_inputs(files), "--exclude", "dark,blurred", "--keep-flag", "near_duplicate", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["exclusion"]["rules"] == ["unreadable", "exact_duplicate", "blank", "wrong_modality",
                                            "wrong_body_part", "label_issue", "dark", "blurred"]
    assert report["excluded_by"]["dark"] > 0 and "near_duplicate" not in report["excluded_by"]


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing_catalog", ["nope.parquet: no such catalog file"]),
        ("unknown_flag", ["unknown flag name 'drak'"]),
        ("no_official_split", ["no official split", "--split new"]),
        ("n_too_large", ["balanced n=500 (100 per class)", "available in train per class: 0: 678, 1: 311"]),
        ("split_and_frozen", ["give --split or --frozen-split, not both"]),
        ("bad_per_class", ["per-class counts are CLASS=COUNT"]),
        ("option_not_for_sampler", ["sampler 'full' takes no n"]),
        ("missing_quality", ["none.parquet: no such quality"]),
        ("features_needed", ["NearMiss needs features"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, tmp_path, case, fragments):
    out, split = tmp_path / "selection.parquet", tmp_path / "split.parquet"
    args = {
        "missing_catalog": (files / "nope.parquet",),
        "unknown_flag": (*_inputs(files), "--exclude", "drak"),
        "no_official_split": (tmp_path / "plain.parquet",),
        "n_too_large": (*_inputs(files), "--sampler", "balanced", "--n", "500"),
        "split_and_frozen": (*_inputs(files), "--split", "new", "--frozen-split", files / "x.parquet"),
        "bad_per_class": (*_inputs(files), "--sampler", "per-class", "--per-class", "0:100"),
        "option_not_for_sampler": (*_inputs(files), "--n", "10"),
        "missing_quality": (files / "catalog.parquet", "--quality", files / "none.parquet"),
        "features_needed": (*_inputs(files), "--sampler", "NearMiss"),
    }[case]
    if case == "no_official_split":
        write_catalog(random_catalog(np.random.default_rng(0), patients=10), tmp_path / "plain.parquet", tmp_path)
    result = _run(*args, "-o", out, "--freeze-split", split)
    _assert_one_line_error(result, *fragments)
    assert not out.exists() and not split.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_help_lists_the_samplers_and_strategies():
    result = _run("--help")
    assert result.exit_code == 0
    for word in ("balanced", "NearMiss", "one-per-patient", "--frozen-split", "--keep-flag"):
        assert word in result.output


@pytest.mark.parametrize("rows", ["of_another_catalog", "none"])
def test_labels_matching_no_sample_are_one_line_exit_2(files, tmp_path, rows):
    labels = pd.read_parquet(files / "labels.parquet")
    if rows == "of_another_catalog":
        labels["sample_id"] = "other:" + labels["sample_id"].astype(str)
        fragments = ["matches none of the catalog's", "e.g. other:", "another catalog"]
    else:
        labels = labels.iloc[:0]
        fragments = ["matches none of the catalog's", "it has no rows"]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "selection.parquet"
    result = _run(files / "catalog.parquet", "--quality", files / "quality.parquet",
                  "--labels", tmp_path / "labels.csv", "-o", out)
    _assert_one_line_error(result, "the labels table", *fragments)
    assert not out.exists()


def test_a_new_split_that_is_the_best_possible_is_accepted_with_a_note(tmp_path):
    write_catalog(catalog_of(TANGLE), tmp_path / "catalog.parquet", tmp_path)
    out = tmp_path / "selection.parquet"
    result = _run(tmp_path / "catalog.parquet", "--split", "new", "--fractions", "0.8,0.2", "-o", out)
    assert result.exit_code == 0, result.output
    assert "note: class 2 is missing from test: classes 0, 1 and 2 cannot all be in every split" in result.output
    assert read_selection(out).attrs["selection"]["split_check"]["violations"] == []
