"""The scan against the demo's known faults: every fault type it should catch, found and only those."""

from __future__ import annotations

import pandas as pd
import pytest

from curate.demo import make_demo
from curate.loaders import load
from curate.parallel import Executor
from curate.quality.evaluate import score_scan
from curate.quality.scan import scan


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    make_demo(root, seed=3, scale=0.1)
    catalog = load("oai-kl", root).catalog
    quality = scan(catalog, executor=Executor(workers=2), cache_dir=False)
    return score_scan(quality, pd.read_csv(root / "faults.csv"), catalog).set_index("fault")


@pytest.mark.parametrize(
    "fault",
    ["exact_duplicate", "near_duplicate", "dark", "overexposed", "blurred", "blank", "truncated", "zero_bytes",
     "not_an_image", "leakage", "dicom_laterality_mismatch"],
)
def test_fault_found_with_high_recall_and_precision(scored, fault):
    row = scored.loc[fault]
    assert row["injected"] > 0
    assert row["recall"] >= 0.95, row.to_dict()
    assert row["precision"] >= 0.95, row.to_dict()
