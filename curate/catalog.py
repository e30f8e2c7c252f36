"""The catalog: one row per sample, the table every later stage reads.

A catalog is a :class:`pandas.DataFrame`. Paths are stored relative to a data
root that is recorded in the Parquet file's metadata, so a catalog moved together
with its data keeps working. ``sample_id`` is derived from the source name and the
relative path (plus the part of the file, for files holding several samples), never
from absolute paths or timestamps, so it is the same on every run and machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate._io import atomic_path, read_parquet_table, refuse_foreign
from curate.errors import CatalogError

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "SPLITS",
    "make_sample_id",
    "parse_crop",
    "format_crop",
    "validate_catalog",
    "write_catalog",
    "read_catalog",
    "resolve_path",
    "absolute_paths",
]

SCHEMA_VERSION = 1
_METADATA_KEY = b"curate.catalog"

REQUIRED_COLUMNS: tuple[str, ...] = ("sample_id", "path", "label", "patient_id", "source")

#: Optional columns and the pandas dtype they are stored with.
OPTIONAL_COLUMNS: dict[str, str] = {
    "side": "string",
    "visit": "string",
    "view": "string",
    "crop": "string",
    "official_split": "string",
    "modality": "string",
    "body_part": "string",
    "laterality": "string",
    "photometric": "string",
    "bits_stored": "Int64",
    "rows": "Int64",
    "columns": "Int64",
    "sha256": "string",
    "burned_in_annotation": "string",
}

SPLITS: tuple[str, ...] = ("train", "val", "test")
SIDES: tuple[str, ...] = ("L", "R")
_STRING_REQUIRED = ("sample_id", "path", "patient_id", "source")
_NOT_NULL = ("sample_id", "path", "source")
_CROP_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_LISTED = 5


def make_sample_id(source: str, relpath: str | os.PathLike, part: str | None = None) -> str:
    """Return the stable id of a sample.

    Parameters
    ----------
    source : str
        Name of the source (the loader's name, or a user-given dataset name).
    relpath : str or path
        Path of the file relative to the data root.
    part : str, optional
        Which part of the file the sample is, for files holding several samples
        (e.g. ``"R"`` and ``"L"`` for the two knees of a bilateral radiograph).

    Returns
    -------
    str
        16 hexadecimal characters.

    Examples
    --------
    >>> make_sample_id("oai-kl", "train/0/9003175L.png")
    'a1f0a5d55d2909c5'
    """
    key = f"{source}\x00{PurePosixPath(Path(relpath).as_posix())}\x00{part or ''}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def parse_crop(crop: str) -> tuple[int, int, int, int]:
    """Parse a crop ``"x0,y0,x1,y1"`` (pixels, half-open) into a tuple.

    Raises
    ------
    ValueError
        If the text is not four non-negative integers with ``x0 < x1`` and ``y0 < y1``.
    """
    match = _CROP_RE.match(str(crop))
    if not match:
        raise ValueError(f"crop {crop!r} is not 'x0,y0,x1,y1' in pixels")
    x0, y0, x1, y1 = (int(v) for v in match.groups())
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"crop {crop!r} is empty (needs x0 < x1 and y0 < y1)")
    return x0, y0, x1, y1


def format_crop(box: tuple[int, int, int, int]) -> str:
    """Format a pixel box ``(x0, y0, x1, y1)`` as the catalog's crop text."""
    return ",".join(str(int(v)) for v in box)


def _row_refs(df: pd.DataFrame, mask: pd.Series, column: str | None = None) -> str:
    rows = df.index[mask.to_numpy()]
    parts = []
    for idx in rows[:_MAX_LISTED]:
        ref = f"row {idx}"
        if "sample_id" in df.columns and pd.notna(df.at[idx, "sample_id"]):
            ref += f" (sample_id {df.at[idx, 'sample_id']})"
        if column is not None:
            ref += f": {df.at[idx, column]!r}"
        parts.append(ref)
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return "; ".join(parts) + more


def _check_values(df, column, valid, what, problems):
    bad = pd.Series([bool(pd.notna(v)) and not valid(v) for v in df[column]], index=df.index, dtype=bool)
    if bad.any():
        problems.append(
            f"column '{column}' {what} in {int(bad.sum())} row(s): {_row_refs(df, bad, column)}"
        )


def _is_relative(path: object) -> bool:
    text = str(path)
    pure = PurePosixPath(text.replace("\\", "/"))
    return not pure.is_absolute() and ".." not in pure.parts and not re.match(r"^[A-Za-z]:", text)


def _valid_crop(value: object) -> bool:
    try:
        parse_crop(str(value))
    except ValueError:
        return False
    return True


def validate_catalog(df: pd.DataFrame, *, name: str = "catalog") -> pd.DataFrame:
    """Check a catalog against the schema and return it with canonical dtypes.

    Parameters
    ----------
    df : DataFrame
        The catalog. Columns beyond the schema are kept unchanged.
    name : str
        How the table is named in error messages (usually its file name).

    Returns
    -------
    DataFrame
        A copy with a fresh RangeIndex and the schema's dtypes.

    Raises
    ------
    CatalogError
        Listing every problem found, each naming the column and the offending rows.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CatalogError(
            f"{name}: missing required column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, map(str, df.columns)))}"
        )
    out = df.reset_index(drop=True).copy()
    problems: list[str] = []

    for column in _NOT_NULL:
        empty = out[column].isna() | (out[column].astype("string").str.strip() == "")
        if empty.any():
            problems.append(
                f"column '{column}' is empty in {int(empty.sum())} row(s): {_row_refs(out, empty)}"
            )
    for column in _STRING_REQUIRED:
        out[column] = out[column].astype("string")

    dup = out["sample_id"].notna() & out["sample_id"].duplicated(keep=False)
    if dup.any():
        problems.append(
            f"column 'sample_id' repeats in {int(dup.sum())} row(s): {_row_refs(out, dup, 'sample_id')}"
        )
    _check_values(out, "path", _is_relative, "is not a path relative to the data root", problems)

    out["label"] = _canonical_label(out["label"], name, problems)

    for column, dtype in OPTIONAL_COLUMNS.items():
        if column not in out.columns:
            continue
        if dtype == "Int64":
            numeric = pd.to_numeric(out[column], errors="coerce")
            bad = out[column].notna() & (numeric.isna() | (numeric != np.round(numeric)) | (numeric < 1))
            if bad.any():
                problems.append(
                    f"column '{column}' needs whole numbers >= 1 in {int(bad.sum())} row(s): "
                    f"{_row_refs(out, bad, column)}"
                )
                continue
            out[column] = numeric.astype("Int64")
        else:
            out[column] = out[column].astype("string")
    if "side" in out.columns:
        _check_values(out, "side", lambda v: v in SIDES, "must be 'L' or 'R'", problems)
    if "official_split" in out.columns:
        _check_values(
            out, "official_split", lambda v: v in SPLITS, f"must be one of {', '.join(SPLITS)}", problems
        )
    if "crop" in out.columns:
        _check_values(out, "crop", _valid_crop, "is not a pixel box 'x0,y0,x1,y1'", problems)
    if "sha256" in out.columns:
        _check_values(out, "sha256", lambda v: bool(_SHA256_RE.match(v)), "is not a sha256 hex digest", problems)

    if problems:
        raise CatalogError(f"{name}: " + "\n  ".join(problems))
    return out


def _canonical_label(labels: pd.Series, name: str, problems: list[str]) -> pd.Series:
    """Integer labels become nullable Int64; anything else is stored as text."""
    present = labels.dropna()
    if present.empty:
        return labels.astype("Int64") if labels.dtype.kind in "iuf" or labels.empty else labels.astype("string")
    if labels.dtype.kind in "iu":
        return labels.astype("Int64")
    numeric = pd.to_numeric(present, errors="coerce")
    if numeric.notna().all() and (numeric == np.round(numeric)).all():
        return pd.to_numeric(labels, errors="coerce").astype("Int64")
    if labels.dtype.kind == "f":
        problems.append("column 'label' holds fractional numbers; labels must be whole numbers or text")
        return labels
    return labels.astype("string")


def _metadata(catalog_path: Path, data_root: Path, deid: dict | None = None) -> bytes:
    data_root = data_root.resolve()
    try:
        relative = os.path.relpath(data_root, catalog_path.resolve().parent)
    except ValueError:  # another drive on Windows
        relative = None
    record = {"schema_version": SCHEMA_VERSION, "data_root": relative, "data_root_absolute": str(data_root)}
    if deid:
        record["deid"] = deid
    return json.dumps(record).encode("utf-8")


def write_catalog(df: pd.DataFrame, path: str | os.PathLike, data_root: str | os.PathLike) -> Path:
    """Validate ``df`` and write it atomically as Parquet, recording ``data_root``.

    The data root is recorded both relative to the catalog file and absolute, so
    the catalog is found again whether it moves together with its data or alone.
    A de-identified catalog (``df.attrs["deid"]``, :mod:`curate.deid`) records how.
    An existing file is replaced only when curate wrote it.
    """
    path = Path(path)
    refuse_foreign(path)
    table_df = validate_catalog(df, name=str(path))
    table = pa.Table.from_pandas(table_df, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[_METADATA_KEY] = _metadata(path, Path(data_root), df.attrs.get("deid"))
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_catalog(path: str | os.PathLike, *, data_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and validate a catalog written by :func:`write_catalog`.

    Parameters
    ----------
    path : path
        The Parquet file.
    data_root : path, optional
        Overrides the recorded data root (for data that moved without its catalog).

    Returns
    -------
    DataFrame
        The catalog; ``df.attrs["data_root"]`` holds the resolved data root.
    """
    path = Path(path)
    table = read_parquet_table(path, "catalog", CatalogError)
    df = validate_catalog(table.to_pandas(), name=str(path))
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if data_root is None:
        data_root = _recorded_root(path, raw)
    df.attrs["data_root"] = str(Path(data_root).resolve())
    if raw is not None and json.loads(raw).get("deid"):
        df.attrs["deid"] = json.loads(raw)["deid"]
    return df


def _recorded_root(path: Path, raw: bytes | None) -> Path:
    if raw is None:
        return path.resolve().parent
    meta = json.loads(raw)
    if meta.get("data_root") is not None:
        candidate = (path.resolve().parent / meta["data_root"]).resolve()
        if candidate.is_dir():
            return candidate
    return Path(meta["data_root_absolute"])


def resolve_path(data_root: str | os.PathLike, relpath: str) -> Path:
    """Join a catalog path to its data root."""
    return Path(data_root) / Path(str(relpath))


def absolute_paths(df: pd.DataFrame, data_root: str | os.PathLike | None = None) -> pd.Series:
    """Return the absolute file path of every row, from ``data_root`` or ``df.attrs``."""
    root = data_root if data_root is not None else df.attrs.get("data_root")
    if root is None:
        raise CatalogError("the catalog has no data root: pass data_root")
    relative = df["path"].astype(str)
    # A pathlib join per row costs a scan of 100k images seconds; a plain join gives the
    # same string for every path pathlib would not tidy (empty, "//", "./" or "." parts, a "/" at either end).
    untidy = relative.str.contains(r"^$|^/|/$|(?:^|/)\.?(?:/|$)|//", regex=True)
    prefix = str(Path(root))
    out = ("" if prefix == "." else prefix.rstrip("/") + "/") + relative
    if untidy.any():
        out[untidy] = [str(resolve_path(root, p)) for p in relative[untidy]]
    return out
