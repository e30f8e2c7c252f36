"""The select stage on real files: the public knee sample, and a demo dataset written and scanned."""

from __future__ import annotations

import pandas as pd
import pytest

from curate.select import BalancedSampler, ShortClassError, check_split, select
from tests.select._data import demo_like

GRADES = ["0", "1", "2", "3", "4"]


def _train_per_grade(selection):
    rows = selection[(selection["split"] == "train") & selection["selected"]]
    return rows["label"].astype(str).value_counts().reindex(GRADES, fill_value=0).to_dict()


@pytest.fixture(scope="module")
def kl_quality(kl_sample):
    from curate.parallel import Executor
    from curate.quality.scan import scan

    return scan(kl_sample, executor=Executor(workers=1), cache_dir=False)


def test_knee_sample_balanced_100_takes_20_per_grade(kl_sample, kl_quality):
    per_grade = kl_sample.groupby(["official_split", "label"]).size()
    assert set(per_grade.loc["train"]) == set(per_grade.loc["test"]) == {40}
    selection = select(kl_sample, quality=kl_quality, sampler=BalancedSampler(n=100), seed=0)
    assert _train_per_grade(selection) == dict.fromkeys(GRADES, 20)
    assert not (selection["selected"] & selection["exclusion_reason"].notna()).any()
    assert check_split(selection).ok
    full = select(kl_sample, quality=kl_quality, sampler="full")
    test = lambda s: s.loc[s["split"] == "test", ["sample_id", "selected"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(test(selection), test(full))


def test_knee_sample_balanced_500_says_what_each_grade_has(kl_sample):
    with pytest.raises(ShortClassError) as info:
        select(kl_sample, sampler=BalancedSampler(n=500))
    assert "available in train per class: 0: 40, 1: 40, 2: 40, 3: 40, 4: 40" in str(info.value)
    assert info.value.wanted == dict.fromkeys(GRADES, 100)


@pytest.mark.slow
def test_written_and_scanned_demo_matches_the_plan_and_is_cleaned(tmp_path):
    from curate.demo import make_demo
    from curate.loaders import load
    from curate.parallel import Executor
    from curate.quality.scan import scan

    make_demo(tmp_path / "demo", seed=0, scale=0.1, progress=None)
    catalog = load("oai-kl", tmp_path / "demo").catalog
    planned, _, labels = demo_like(seed=0, scale=0.1)
    columns = ["sample_id", "path", "label", "patient_id", "official_split"]
    pd.testing.assert_frame_equal(
        catalog[columns].sort_values("sample_id").reset_index(drop=True),
        planned[columns].astype(catalog[columns].dtypes.to_dict()).sort_values("sample_id").reset_index(drop=True),
    )
    quality = scan(catalog, executor=Executor(workers=2), cache_dir=False)
    selection = select(catalog, quality=quality, labels=labels, sampler=BalancedSampler(n=50), seed=0)
    assert _train_per_grade(selection) == dict.fromkeys(GRADES, 10)
    faults = pd.read_csv(tmp_path / "demo" / "faults.csv")
    chosen = selection.merge(catalog[["sample_id", "path"]], on="sample_id").set_index("path")
    removed = {"truncated", "zero_bytes", "not_an_image", "blank", "wrong_modality", "label_flip_distant"}
    faulty = faults.loc[faults["fault"].isin(removed), "file"]
    assert chosen.loc[faulty, "exclusion_reason"].notna().all() and not chosen.loc[faulty, "selected"].any()
    # of a file and its copy, at most one is kept (the scan keeps the better one, not always the original)
    copies = faults[faults["fault"] == "exact_duplicate"]
    for copy, original in zip(copies["file"], copies["details"].str.removeprefix("copy of ")):
        assert chosen.loc[[copy, original], "exclusion_reason"].notna().sum() == 1
