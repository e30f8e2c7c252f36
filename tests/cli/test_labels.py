from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from curate.catalog import make_sample_id, write_catalog
from curate.cli import main
from tests.conftest import write_png


def _graded_catalog(tmp_path) -> str:
    """60 knees of 30 patients, grades 0-2, whose joint space narrows with the grade."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(30):
        for side in "LR":
            grade = int(rng.integers(0, 3))
            rel = f"{grade}/{9000000 + p}{side}.png"
            pixels = np.full((48, 48), 200, dtype=np.uint8) - rng.integers(0, 20, (48, 48), dtype=np.uint8)
            gap = 12 - 5 * grade  # the joint space narrows with the grade
            pixels[24 - gap // 2 : 24 + gap // 2 + 1] = 40
            write_png(tmp_path / "data" / rel, pixels)
            rows.append({"sample_id": make_sample_id("t", rel), "path": rel, "label": grade, "patient_id": str(p), "source": "t"})
    write_catalog(pd.DataFrame(rows), tmp_path / "cat.parquet", tmp_path / "data")
    return str(tmp_path / "cat.parquet")


def test_labels_command_writes_a_table_and_prints_probe_metrics(tmp_path):
    catalog = _graded_catalog(tmp_path)
    out = tmp_path / "labels.parquet"
    result = CliRunner().invoke(main, ["labels", catalog, "-o", str(out), "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["fitted"] == 60 and summary["accuracy"] > 0.9 and summary["features"] == "built-in image features"
    table = pd.read_parquet(out)
    assert len(table) == 60 and {"suggested_label", "label_quality", "grade_distance", "is_label_issue"} <= set(table.columns)


def test_pruning_distant_training_labels_can_be_switched_off(tmp_path):
    import pyarrow.parquet as pq

    catalog = _graded_catalog(tmp_path)
    runs = {}
    for switch in ("--prune-distant", "--no-prune-distant"):
        out = tmp_path / f"{switch}.parquet"
        result = CliRunner().invoke(main, ["labels", catalog, "-o", str(out), "--workers", "1", "--folds", "3", "--json", switch])
        assert result.exit_code == 0, result.output
        recorded = json.loads(pq.read_schema(out).metadata[b"curate.labels"])
        runs[switch] = json.loads(result.output)
        assert recorded["prune_distant"] is (switch == "--prune-distant")  # the table says how it was made
    pruning, plain = runs["--prune-distant"], runs["--no-prune-distant"]
    assert pruning["prune_distant"] is True and len(pruning["pruned_per_fold"]) == 3  # each fold says what it left out
    assert plain["prune_distant"] is False and plain["pruned_per_fold"] == []


def test_labels_with_missing_embeddings_names_the_samples(tmp_path):
    rows = [{"sample_id": f"s{k}", "path": f"{k}.png", "label": k % 2, "patient_id": str(k), "source": "t"} for k in range(12)]
    write_catalog(pd.DataFrame(rows), tmp_path / "cat.parquet", tmp_path)
    emb = pd.DataFrame({"sample_id": [f"s{k}" for k in range(10)], "a": np.arange(10.0), "b": np.arange(10.0)})
    emb.to_parquet(tmp_path / "emb.parquet")
    result = CliRunner().invoke(
        main, ["labels", str(tmp_path / "cat.parquet"), "-o", str(tmp_path / "l.parquet"), "--embeddings", str(tmp_path / "emb.parquet")]
    )
    assert result.exit_code == 2 and "no embedding for 2 sample(s): s10, s11" in result.output
    assert not (tmp_path / "l.parquet").exists()


def test_an_unknown_classifier_is_refused_before_any_feature_is_computed(tmp_path):
    rows = [{"sample_id": f"s{k}", "path": f"{k}.png", "label": k % 2, "patient_id": str(k), "source": "t"} for k in range(4)]
    write_catalog(pd.DataFrame(rows), tmp_path / "cat.parquet", tmp_path)  # no image files: features would fail
    out = tmp_path / "l.parquet"
    result = CliRunner().invoke(main, ["labels", str(tmp_path / "cat.parquet"), "-o", str(out), "--classifier", "svm"])
    assert result.exit_code == 2
    assert result.output.strip() == "curate: error: unknown classifier 'svm'; choose one of auto, logistic, ordinal, gradient-boosting"
    assert not out.exists()
