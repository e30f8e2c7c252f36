"""Reading the users' own tables (CSV, TSV, Parquet) with errors that name the file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from curate.errors import CurateError

__all__ = ["read_table", "require_columns"]


def read_table(path: str | os.PathLike, **csv_options) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file (by extension) as strings-preserving pandas table.

    CSV cells are read as text (``dtype=str``) so that ids such as ``00012`` keep
    their zeros; callers convert the columns they need.
    """
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"{path}: no such table file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        sep = "\t" if suffix in (".tsv", ".tab") else csv_options.pop("sep", ",")
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], **csv_options)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"{path}: cannot be read as a table ({first})") from None


def require_columns(df: pd.DataFrame, columns: Iterable[str | None], path: str | os.PathLike) -> None:
    """Raise a one-line error naming the file, the missing columns and the ones it has."""
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise CurateError(
            f"{path}: no column {', '.join(map(repr, missing))}; "
            f"its columns are {', '.join(map(repr, map(str, df.columns)))}"
        )
