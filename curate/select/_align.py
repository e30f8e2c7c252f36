"""Line the other stages' tables up with the catalog, one row per catalog sample."""

from __future__ import annotations

import numpy as np
import pandas as pd

from curate.errors import CurateError

__all__ = ["align_quality", "align_labels", "align_features"]

_LISTED = 3


def _by_sample_id(table: pd.DataFrame, what: str) -> pd.DataFrame:
    if "sample_id" in table.columns:
        table = table.set_index("sample_id")
    elif table.index.name != "sample_id":
        raise CurateError(f"the {what} table has no sample_id column or index")
    table.index = table.index.astype(str)
    repeated = table.index[table.index.duplicated()]
    if len(repeated):
        raise CurateError(f"the {what} table repeats sample_id {repeated[0]}")
    return table


def _examples(ids: pd.Index) -> str:
    more = f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else ""
    return ", ".join(map(str, ids[:_LISTED])) + more


def align_quality(catalog: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """The quality table's rows in catalog order (index: the catalog's index).

    Raises
    ------
    CurateError
        When a catalog sample has no quality row: it was never scanned, so it may be
        unreadable, and silently keeping it would hide that.
    """
    table = _by_sample_id(quality, "quality")
    ids = catalog["sample_id"].astype(str)
    missing = pd.Index(ids[~ids.isin(table.index)])
    if len(missing):
        raise CurateError(
            f"the quality table has no row for {len(missing)} catalog sample(s) ({_examples(missing)}): "
            "scan this catalog again"
        )
    out = table.loc[ids.to_numpy()]
    out.index = catalog.index
    return out


def align_labels(catalog: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The labels table's rows in catalog order; samples it does not cover get empty rows.

    The label stage may leave out samples it could not score (unreadable images),
    so a missing row means "no finding", not an error.

    Raises
    ------
    CurateError
        When the table covers no sample at all: it belongs to another catalog, and
        using it would silently check nothing.
    """
    table = _by_sample_id(labels, "labels")
    ids = catalog["sample_id"].astype(str)
    covered = int(ids.isin(table.index).sum())
    if covered == 0 and len(ids):
        if len(table):
            why = f"none of its {len(table):,} sample_id values (e.g. {table.index[0]}) is in the catalog"
        else:
            why = "it has no rows"
        raise CurateError(
            f"the labels table matches none of the catalog's {len(ids):,} samples: {why}; "
            "was it made for another catalog?"
        )
    out = table.reindex(ids.to_numpy())
    out.index = catalog.index
    out.attrs["covered"] = covered
    return out


def align_features(features: pd.DataFrame, sample_ids: pd.Series, *, needed_by: str) -> np.ndarray:
    """The feature rows of ``sample_ids`` as a float matrix.

    Raises
    ------
    CurateError
        When features are absent, not numeric, hold NaN, or miss a sample.
    """
    if features is None:
        raise CurateError(
            f"{needed_by} needs features: pass a Parquet table of numeric columns indexed by (or with) "
            "sample_id (--features FILE)"
        )
    table = _by_sample_id(features, "features")
    numeric = table.select_dtypes(include="number")
    other = [str(c) for c in table.columns if c not in numeric.columns]
    if other:
        raise CurateError(f"the features table has non-numeric column(s) {', '.join(other[:_LISTED])}")
    if numeric.shape[1] == 0:
        raise CurateError("the features table has no numeric column")
    ids = sample_ids.astype(str)
    missing = pd.Index(ids[~ids.isin(numeric.index)])
    if len(missing):
        raise CurateError(f"the features table has no row for {len(missing)} sample(s) ({_examples(missing)})")
    matrix = numeric.loc[ids.to_numpy()].to_numpy(dtype=float)
    if not np.isfinite(matrix).all():
        raise CurateError("the features table holds NaN or infinite values for samples to select from")
    return matrix
