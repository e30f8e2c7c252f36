"""Reading the select stage's inputs, writing its outputs, and the file-level run the CLI calls."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from curate._io import read_parquet_table, refuse_foreign, write_parquet_table
from curate.catalog import read_catalog
from curate.errors import CurateError
from curate.tables import read_table

__all__ = [
    "write_selection",
    "read_selection",
    "read_features",
    "read_labels",
    "parse_counts",
    "select_to_file",
]

_METADATA_KEY = b"curate.selection"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def write_selection(selection: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a selection table atomically; its record (``attrs["selection"]``) goes in the Parquet metadata."""
    return write_parquet_table(selection, path, _METADATA_KEY, selection.attrs.get("selection", {}))


def read_selection(path: str | os.PathLike) -> pd.DataFrame:
    """Read a selection table written by :func:`write_selection`, with its record in ``attrs``."""
    path = Path(path)
    table = read_parquet_table(path, "selection")
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    selection = table.to_pandas()
    if raw is None:
        raise CurateError(f"{path}: not a selection written by `curate select`")
    selection.attrs["selection"] = json.loads(raw)
    return selection


def read_features(path: str | os.PathLike) -> pd.DataFrame:
    """Features as a DataFrame indexed by ``sample_id`` (Parquet or CSV, with a sample_id column or index)."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"{path}: no such features file")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CurateError(f"{path}: cannot be read as a table ({str(exc).strip().splitlines()[0]})") from None
    if "sample_id" in frame.columns:
        frame = frame.set_index("sample_id")
    elif frame.index.name != "sample_id":
        raise CurateError(f"{path}: no sample_id column or index")
    frame.index = frame.index.astype(str)
    return frame


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """The labels table (Parquet, CSV or TSV), with its finding columns typed."""
    labels = read_table(path)
    if "sample_id" not in labels.columns:
        raise CurateError(f"{path}: no column 'sample_id'")
    if "is_label_issue" in labels.columns and not pd.api.types.is_bool_dtype(labels["is_label_issue"]):
        text = labels["is_label_issue"].astype("string").str.strip().str.lower()
        bad = text.notna() & ~text.isin(_TRUE | _FALSE)
        if bad.any():
            found = labels.loc[bad, "is_label_issue"].iloc[0]
            raise CurateError(f"{path}: is_label_issue holds {found!r}, not true/false")
        labels["is_label_issue"] = text.isin(_TRUE).astype("boolean").mask(text.isna())
    for column, kind in (("grade_distance", "Int64"), ("label_quality", "float")):
        if column in labels.columns:
            labels[column] = pd.to_numeric(labels[column], errors="coerce").astype(kind)
    return labels


def parse_counts(text: str | Mapping[str, int]) -> dict[str, int]:
    """Per-class counts from ``"0=100,1=100"`` (or a mapping, returned with text keys).

    Examples
    --------
    >>> parse_counts("0=100, 4=50")
    {'0': 100, '4': 50}
    """
    if isinstance(text, Mapping):
        return {str(k): v for k, v in text.items()}
    counts: dict[str, int] = {}
    for item in str(text).split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            counts[name.strip()] = int(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise CurateError(f"per-class counts are CLASS=COUNT,...; {item.strip()!r} is not")
    if not counts:
        raise CurateError("per-class counts are empty; give CLASS=COUNT,... e.g. 0=100,1=100")
    return counts


def select_to_file(
    catalog: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    quality: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    features: str | os.PathLike | None = None,
    split: str | None = None,
    fractions: str | None = None,
    split_seed: int | None = None,
    frozen_split: str | os.PathLike | None = None,
    freeze_split: str | os.PathLike | None = None,
    sampler: str = "full",
    n: int | None = None,
    per_class: str | Mapping[str, int] | None = None,
    short: str | None = None,
    strategy: str | None = None,
    weighting: str | None = None,
    beta: float | None = None,
    exclude: Iterable[str] = (),
    keep: Iterable[str] = (),
    min_grade_distance: int | None = None,
    sample_splits: Iterable[str] = ("train",),
    seed: int = 0,
    reviewed_out: Iterable[str] = (),
) -> dict:
    """Read the files, select, write the selection (and the frozen split) and return the report.

    Nothing is written unless the whole selection succeeds; each file is written atomically.
    ``exclude`` adds rules to the defaults and ``keep`` removes some.
    """
    if output is not None:
        refuse_foreign(output)  # before the work, not after it

    from curate.select.exclusion import DEFAULT_MIN_GRADE_DISTANCE, resolve_exclusions
    from curate.select.frozen import freeze_split as write_frozen
    from curate.select.frozen import read_frozen_split
    from curate.select.samplers import make_sampler
    from curate.select.selection import select
    from curate.select.splits import make_split
    from curate.select.summary import selection_report

    chosen = make_sampler(
        sampler,
        n=n,
        per_class=parse_counts(per_class) if per_class is not None else None,
        short=short,
        strategy=strategy,
        weighting=weighting,
        beta=beta,
    )
    rules = resolve_exclusions(add=exclude, keep=keep)
    if frozen_split is not None and split is not None:
        raise CurateError("give --split or --frozen-split, not both: a frozen split is already made")
    if (fractions is not None or split_seed is not None) and split != "new":
        raise CurateError("--fractions and --split-seed make a new split: add --split new")

    table = read_catalog(catalog)
    if frozen_split is not None:
        split_table: str | pd.DataFrame = read_frozen_split(frozen_split)
    elif split == "new":
        split_table = make_split(table, fractions=fractions, seed=split_seed or 0)
    else:
        split_table = split or "official"
    selection = select(
        table,
        split=split_table,
        sampler=chosen,
        quality=_read_quality(quality),
        labels=read_labels(labels) if labels is not None else None,
        features=read_features(features) if features is not None else None,
        exclude=rules,
        min_grade_distance=DEFAULT_MIN_GRADE_DISTANCE if min_grade_distance is None else min_grade_distance,
        sample_splits=sample_splits,
        seed=seed,
        reviewed_out=reviewed_out,
    )
    report = selection_report(selection)
    if output is not None:
        write_selection(selection, output)
        report["output"] = str(output)
    if freeze_split is not None:
        frozen = selection[["sample_id", "patient_id", "label", "split"]].copy()
        # Samples an official split leaked (patient also in test or val) are left out of the file;
        # reused, they follow their patient, as any sample new to the file does.
        leaked = selection["exclusion_reason"].astype("string").str.contains("patient_in_other_split").fillna(False)
        frozen.loc[leaked.to_numpy(), "split"] = pd.NA
        frozen.attrs["split"] = selection.attrs["selection"]["split"]
        write_frozen(frozen, freeze_split)
        report["frozen_split"] = str(freeze_split)
    return report


def _read_quality(path: str | os.PathLike | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from curate.quality.io import read_quality

    return read_quality(path)
