"""A CSV or Parquet table with user-named path, label and patient columns."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeReason, regular_file_failure
from curate.loaders.base import Loader, LoadResult, Option, problems_table
from curate.tables import read_table, require_columns

__all__ = ["TableLoader"]


class TableLoader(Loader):
    """Read a table that lists image files with their labels and patients.

    Paths are relative to ``root`` (default: the table's folder). Rows whose file
    does not exist, or is no regular file (a pipe, a socket, a broken link), stay in
    the catalog (the scan reports them as unreadable) and are listed in the problems;
    a table none of whose files exists is refused, since that is almost always a
    wrong ``root``.
    """

    name = "table"
    summary = "a CSV/TSV/Parquet table with path, label and patient columns"
    options = (
        Option("path_col", "column holding the image path", required=True),
        Option("label_col", "column holding the label", required=True),
        Option("patient_col", "column holding the patient id", required=True),
        Option("split_col", "column holding the official split (train/val/test)"),
        Option("side_col", "column holding the side (L/R)"),
        Option("root", "folder the paths are relative to (default: the table's folder)", type=Path),
        Option("source_name", "name recorded in the catalog's source column", default="table"),
    )

    def _load(self, source: Path, *, path_col, label_col, patient_col, split_col, side_col, root, source_name):
        if source.is_dir():
            raise LoaderError(f"{source}: is a folder; the table loader reads a CSV/TSV/Parquet file")
        table = read_table(source)
        require_columns(table, [path_col, label_col, patient_col, split_col, side_col], source)
        root = Path(root) if root is not None else source.parent
        if not root.is_dir():
            raise LoaderError(f"{root}: the data root is not a folder")
        root = root.resolve()

        empty = table[path_col].isna()
        if empty.any():
            rows = ", ".join(str(i + 2) for i in table.index[empty][:5])
            raise LoaderError(f"{source}: column '{path_col}' is empty on line(s) {rows}")
        relpaths = table[path_col].map(lambda p: _relative(p, root, source))
        repeated = relpaths.duplicated(keep=False)
        if repeated.any():
            lines = ", ".join(f"{i + 2} ({relpaths[i]})" for i in table.index[repeated][:5])
            raise LoaderError(f"{source}: the same path is listed more than once, lines {lines}")

        # One stat per path, no open: a listed pipe or socket is named, not read.
        failures = relpaths.map(lambda p: regular_file_failure(root / p))
        if failures.notna().all():
            first = failures.iloc[0]
            missing = all(f.reason is DecodeReason.MISSING_FILE for f in failures)
            found = "exists" if missing else "is a regular file"
            raise LoaderError(
                f"{source}: none of the {len(table)} paths {found} under {root} "
                f"(first: {relpaths.iloc[0]}: {first.detail}); is the root right?"
            )
        problems = [
            ("missing_file", p, "listed in the table, not on disk")
            if f.reason is DecodeReason.MISSING_FILE
            else (f.reason.value, p, f"{f.detail}; listed in the table, the scan will not read it")
            for p, f in zip(relpaths, failures)
            if f is not None
        ]

        catalog = pd.DataFrame(
            {
                "sample_id": relpaths.map(lambda p: make_sample_id(source_name, p)),
                "path": relpaths,
                "label": table[label_col],
                "patient_id": table[patient_col],
                "source": source_name,
            }
        )
        if split_col is not None:
            catalog["official_split"] = table[split_col].str.strip().str.lower().replace({"valid": "val"})
        if side_col is not None:
            catalog["side"] = table[side_col].str.strip().str.upper().replace({"LEFT": "L", "RIGHT": "R"})
        used = {path_col, label_col, patient_col, split_col, side_col}
        for column in table.columns:  # carry the table's other columns along
            if column not in used and column not in catalog.columns:
                catalog[column] = table[column]
        return LoadResult(catalog, root, problems_table(problems))


def _relative(value: str, root: Path, table: Path) -> str:
    path = Path(str(value).strip())
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root)
        except ValueError:
            raise LoaderError(f"{table}: path {value!r} is outside the data root {root}") from None
    posix = PurePosixPath(path.as_posix())
    if ".." in posix.parts:
        raise LoaderError(f"{table}: path {value!r} leaves the data root {root}")
    return posix.as_posix()
