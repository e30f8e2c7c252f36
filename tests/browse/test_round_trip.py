"""The review round trip: tag in FiftyOne, pull, rerun the recipe, see the decisions in the new version."""

from __future__ import annotations

import hashlib

from click.testing import CliRunner

from curate.browse.dataset import dataset_name
from curate.cli import main
from curate.demo import make_demo
from curate.manifest import load_manifest


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_reviewers_tags_become_the_next_manifest_version(fo, tmp_path):
    make_demo(tmp_path / "demo", seed=5, scale=0.05)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: review-demo\n"
        f"source:\n  loader: oai-kl\n  data_root: {tmp_path / 'demo'}\n"
        "split:\n  method: official\n"
        "sampler:\n  name: full\n"
    )
    store, work = tmp_path / "store", tmp_path / "work"
    _run("run", recipe, "--store", store, "--work", work)
    first = load_manifest("review-demo", store)
    _run("browse", "review-demo", "--store", store, "--no-launch", "--quiet")

    dataset = fo.load_dataset(dataset_name(first.attrs["card"]))
    train = first[first["split"] == "train"]
    out_id = str(train["sample_id"].iloc[0])
    relabel = train[(train["label"] == 0) & (train["sample_id"].astype(str) != out_id)].iloc[0]
    dataset.select_by("sample_id", [out_id]).tag_samples("exclude")
    dataset.select_by("sample_id", [str(relabel["sample_id"])]).tag_samples("relabel:KL4")

    review = tmp_path / "review.csv"
    _run("review", "pull", "review-demo", "--store", store, "-o", review)
    output = _run("run", recipe, "--store", store, "--work", work, "--set", f"review={review}")
    assert "excluded by reviewers" in output

    second = load_manifest("review-demo", store)
    card = second.attrs["card"]
    assert card["version"] != first.attrs["card"]["version"]
    assert card["parent"] == f"review-demo@{first.attrs['card']['version']}"
    assert card["recipe"]["review_sha256"] == hashlib.sha256(review.read_bytes()).hexdigest()
    assert out_id not in set(second["sample_id"].astype(str))
    assert second.set_index("sample_id").loc[str(relabel["sample_id"]), "label"] == 4
    assert len(second) == len(first) - 1
