"""Reading and writing quality tables, and the file-level scan shared by the CLI and recipes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd

from curate._io import read_parquet_table, refuse_foreign, write_parquet_table
from curate.catalog import read_catalog
from curate.errors import CurateError
from curate.parallel import Executor
from curate.quality.scan import Progress, scan
from curate.quality.summary import quality_summary

__all__ = ["scan_to_file", "write_quality", "read_quality", "read_quality_summary"]

_METADATA_KEY = b"curate.quality"


def write_quality(quality: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a quality table atomically, with the scan's parameters in the Parquet metadata."""
    record = {k: v for k, v in quality.attrs.items() if k in ("scan_version", "thresholds", "catalog_fingerprint")}
    return write_parquet_table(quality, path, _METADATA_KEY, record)


def read_quality(path: str | os.PathLike) -> pd.DataFrame:
    """Read a quality table; ``attrs`` gets the scan's parameters back."""
    path = Path(path)
    table = read_parquet_table(path, "quality table")
    quality = table.to_pandas()
    if "readable" not in quality.columns or "sample_id" not in quality.columns:
        raise CurateError(f"{path}: not a quality table written by `curate scan`")
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw:
        quality.attrs.update(json.loads(raw))
    return quality


def scan_to_file(
    catalog_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    dask_local: bool = False,
    thresholds: dict | None = None,
    data_root: str | os.PathLike | None = None,
    cache_dir=None,
    progress: Progress | None = None,
) -> dict:
    """Scan the catalog at ``catalog_path``, write the quality table and return its summary."""
    refuse_foreign(output)  # before the work, not after it
    catalog = read_catalog(catalog_path, data_root=data_root)
    root = Path(catalog.attrs["data_root"])
    if not root.is_dir():
        raise CurateError(f"{catalog_path}: its data root {root} is not a folder (pass --data-root)")
    executor = Executor(workers=workers, scheduler=scheduler, dask_local=dask_local)
    start = time.perf_counter()
    quality = scan(catalog, executor=executor, thresholds=thresholds, cache_dir=cache_dir, progress=progress)
    seconds = time.perf_counter() - start
    write_quality(quality, output)
    summary = quality_summary(quality, catalog)
    summary["timing"] = {
        "seconds": round(seconds, 2),
        "measured": quality.attrs["measured"],
        "cached": quality.attrs["cached"],
        "executor": executor.kind,
        "images_per_second": round(quality.attrs["measured"] / seconds, 1) if seconds > 0 else None,
    }
    summary["output"] = str(output)
    return summary


def read_quality_summary(path: str | os.PathLike, catalog_path: str | os.PathLike | None = None) -> dict:
    """The summary of a quality table already written."""
    catalog = read_catalog(catalog_path) if catalog_path is not None else None
    return quality_summary(read_quality(path), catalog)
