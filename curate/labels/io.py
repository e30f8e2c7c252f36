"""File-level label-noise run shared by the CLI and recipes: read tables, fit, write, summarize."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from curate._io import read_parquet_table, refuse_foreign, write_parquet_table
from curate.catalog import read_catalog
from curate.errors import CurateError
from curate.labels.features import compute_features, read_embeddings
from curate.labels.noise import find_label_noise, read_pred_probs
from curate.labels.ordinal import PROBE_VERSION
from curate.labels.probe import check_classifier
from curate.parallel import Executor

__all__ = ["labels_to_file", "read_labels_table"]

_METADATA_KEY = b"curate.labels"
_WORST = 10


def read_labels_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels table written by :func:`labels_to_file`."""
    table = read_parquet_table(path, "labels table").to_pandas()
    if "is_label_issue" not in table.columns or "sample_id" not in table.columns:
        raise CurateError(f"{path}: not a labels table written by `curate labels`")
    return table


def labels_to_file(
    catalog_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    quality_path: str | os.PathLike | None = None,
    embeddings: str | os.PathLike | None = None,
    pred_probs: str | os.PathLike | None = None,
    n_splits: int = 5,
    classifier: str = "auto",
    seed: int = 0,
    prune_distant: bool = True,
    workers: int | None = None,
    cache_dir=None,
    progress=None,
) -> dict:
    """Find label issues for a catalog and write the labels table; return the summary.

    ``prune_distant`` leaves training labels two or more grades off out of each
    fold's fit (see :func:`curate.labels.probe.cross_val_probabilities`).
    """
    if embeddings is not None and pred_probs is not None:
        raise CurateError("give either --embeddings or --pred-probs, not both")
    check_classifier(classifier)  # before the features, which can take minutes
    refuse_foreign(output)
    catalog = read_catalog(catalog_path)
    quality = None
    if quality_path is not None:
        from curate.quality.io import read_quality

        quality = read_quality(quality_path)
    start = time.perf_counter()
    features = probs = None
    labelled = catalog[catalog["label"].notna()]
    if pred_probs is not None:
        classes = sorted(labelled["label"].unique().tolist())
        probs = read_pred_probs(pred_probs, catalog, classes)
    elif embeddings is not None:
        features = read_embeddings(embeddings, catalog, required=labelled["sample_id"].astype(str).tolist())
    else:
        hashes = quality.set_index("sample_id")["file_sha256"] if quality is not None else None
        features = compute_features(
            catalog, executor=Executor(workers=workers), cache_dir=cache_dir, content_hashes=hashes, progress=progress
        )
    result = find_label_noise(
        catalog,
        features,
        quality=quality,
        pred_probs=probs,
        n_splits=n_splits,
        classifier=classifier,
        seed=seed,
        prune_distant=prune_distant,
    )
    seconds = time.perf_counter() - start
    record = {
        "n_splits": n_splits,
        "classifier": result.metrics["classifier"],
        "seed": seed,
        "prune_distant": prune_distant,
        "features": _source(embeddings, pred_probs),
        "probe_version": PROBE_VERSION,
    }
    write_parquet_table(result.table, output, _METADATA_KEY, record)
    summary = {**result.metrics, **record, "seconds": round(seconds, 2), "output": str(output)}
    summary["worst"] = _worst(result.table, catalog)
    return summary


def _source(embeddings, pred_probs) -> str:
    if pred_probs is not None:
        return f"predicted probabilities {Path(pred_probs).name}"
    if embeddings is not None:
        return f"embeddings {Path(embeddings).name}"
    return "built-in image features"


def _worst(table: pd.DataFrame, catalog: pd.DataFrame) -> list[dict]:
    issues = table[table["is_label_issue"]].merge(catalog[["sample_id", "path"]], on="sample_id")
    worst = issues.sort_values(["label_quality", "sample_id"]).head(_WORST)
    return [
        {
            "path": row.path,
            "given": str(row.given_label),
            "suggested": str(row.suggested_label),
            "label_quality": round(float(row.label_quality), 4),
            "grade_distance": None if pd.isna(row.grade_distance) else int(row.grade_distance),
        }
        for row in worst.itertuples()
    ]
