"""NIH ChestX-ray14: ``Data_Entry_2017.csv`` and the PNGs in ``images/`` or ``images_*/images/``.

The table has one row per image: ``Image Index`` (file name), ``Finding Labels``
(pipe-separated, ``No Finding`` for normal images), ``Follow-up #``, ``Patient ID``,
``Patient Age``, ``Patient Gender`` (``Patient Sex`` in the 2020 revision), ``View
Position`` (PA/AP), and two bracketed names holding two columns each,
``OriginalImage[Width,Height]`` and ``OriginalImagePixelSpacing[x,y]``: the header
has 9 names for 11 columns, so it is parsed here rather than by a plain CSV reader.

The images come in one ``images/`` folder (the NIH download after extracting its
12 archives) or in ``images_001/images/`` ... ``images_012/images/`` (the same
archives extracted separately). The official ``train_val_list.txt`` and
``test_list.txt`` beside the table give ``official_split`` (``train`` and ``test``;
the validation set is to be drawn from ``train``, patient-wise).

Problem kinds
-------------
``missing_images``
    (with ``allow_missing_images``) one row counting the images not on disk.
``image_without_row``
    an image file in the image folders that the table does not list.
``duplicate_image``, ``duplicate_row``
    the same file name in two image folders, or twice in the table (first kept).
``missing_image_name``
    a row without ``Image Index`` (not cataloged).
``missing_patient_id``, ``patient_id_mismatch``
    no ``Patient ID``, or one that differs from the file name's ``<patient>_<follow-up>``.
``no_findings``, ``conflicting_findings``
    an empty ``Finding Labels`` (label left empty), or ``No Finding`` beside findings
    (``No Finding`` dropped).
``conflicting_split``, ``no_official_split``, ``split_list_without_row``
    an image in both lists, in neither, or list entries that the table lacks (one row).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.loaders._multilabel import (
    ALLOW_MISSING_IMAGES,
    NO_FINDING,
    check_images,
    join_findings,
    normalize_views,
)
from curate.loaders.base import IMAGE_EXTENSIONS, Loader, LoadResult, Option, file_problem, problems_table
from curate.tables import read_table, require_columns

__all__ = ["NIHChestXray14Loader", "read_data_entry"]

TABLE_NAME = "Data_Entry_2017.csv"
_REQUIRED = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "View Position")
# Catalog names of the columns that the bracketed header names expand to.
_RENAMES = {
    "OriginalImage[Width]": "columns",
    "OriginalImage[Height]": "rows",
    "OriginalImagePixelSpacing[x]": "pixel_spacing_x",
    "OriginalImagePixelSpacing[y]": "pixel_spacing_y",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "Patient Sex": "sex",
}
_SPLIT_LISTS = (("train_val_list.txt", "train"), ("test_list.txt", "test"))
_NAME_RE = re.compile(r"^(\d+)_(\d+)\.\w+$")


class NIHChestXray14Loader(Loader):
    """Read NIH ChestX-ray14 (``Data_Entry_2017.csv``) into a catalog.

    SOURCE is the dataset folder (holding ``Data_Entry_2017.csv``, or a single
    ``Data_Entry_2017*.csv``) or the table itself; the data root is the table's
    folder. ``label`` and ``findings`` are the sorted findings (``No Finding`` for
    normal images), ``visit`` the follow-up number, ``view`` PA/AP, ``columns`` and
    ``rows`` the original image width and height.
    """

    name = "nih-cxr14"
    summary = "NIH ChestX-ray14: Data_Entry_2017.csv with images/ or images_*/images/"
    options = (
        ALLOW_MISSING_IMAGES,
        Option("source_name", "name recorded in the catalog's source column", default="nih-cxr14"),
    )

    def _load(self, source: Path, *, allow_missing_images: bool, source_name: str) -> LoadResult:
        table_path = _find_entry_table(source)
        root = table_path.parent.resolve()
        table = read_data_entry(table_path)
        problems: list[tuple[str, str, str]] = []
        table = _usable_rows(table, table_path, problems)
        if table.empty:
            raise LoaderError(f"{table_path}: no rows with an 'Image Index'")

        found, found_problems = _index_images(root)
        problems += found_problems
        names = table["Image Index"]
        relpaths = names.map(lambda n: found.get(n, f"images/{n}"))
        exists = names.isin(set(found))
        problems += check_images(relpaths, root, table_path, allow_missing=allow_missing_images, exists=exists)
        listed = set(names)
        for name, rel in found.items():
            if name not in listed:
                problems.append(("image_without_row", rel, f"not listed in {table_path.name}"))

        catalog = pd.DataFrame(
            {
                "sample_id": relpaths.map(lambda p: make_sample_id(source_name, p)),
                "path": relpaths,
                "patient_id": _patient_ids(table, relpaths, problems),
                "source": source_name,
                "findings": _findings(table, relpaths, problems),
                "visit": _whole_numbers(table["Follow-up #"]).astype("string"),
                "view": normalize_views(table["View Position"]),
            }
        )
        catalog.insert(2, "label", catalog["findings"])
        catalog["official_split"] = _official_split(root, names, relpaths, problems)
        for column in ("columns", "rows"):
            if column in table.columns:
                numbers = _whole_numbers(table[column])
                catalog[column] = numbers.where((numbers >= 1).fillna(False))
        if "age" in table.columns:
            catalog["age"] = _whole_numbers(table["age"])
        if "sex" in table.columns:
            catalog["sex"] = table["sex"].str.strip()
        for column in ("pixel_spacing_x", "pixel_spacing_y"):
            if column in table.columns:
                catalog[column] = pd.to_numeric(table[column], errors="coerce")
        return LoadResult(catalog.reset_index(drop=True), root, problems_table(problems))


def _find_entry_table(source: Path) -> Path:
    if source.is_file():
        return source
    exact = source / TABLE_NAME
    if exact.is_file():
        return exact
    candidates = sorted(source.glob("Data_Entry_2017*.csv"))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(p.name for p in candidates)
        raise LoaderError(f"{source}: several tables ({names}); give the one to read as SOURCE")
    raise LoaderError(f"{source}: no {TABLE_NAME} in this folder")


def read_data_entry(path: Path) -> pd.DataFrame:
    """Read ``Data_Entry_2017.csv`` with its bracketed header names expanded and renamed.

    ``OriginalImage[Width,Height]`` becomes ``columns`` and ``rows``,
    ``OriginalImagePixelSpacing[x,y]`` ``pixel_spacing_x`` and ``pixel_spacing_y``,
    ``Patient Age`` ``age`` and ``Patient Gender``/``Patient Sex`` ``sex``; the other
    names are kept. A trailing empty column (some re-uploads end every line with a
    comma) is dropped.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{path}: cannot be read ({exc})") from None
    if not header.strip():
        raise LoaderError(f"{path}: the file is empty")
    names = header_names(header)
    table = read_table(path, header=None, skiprows=1, names=names, encoding="utf-8-sig")
    unnamed = [n for n in names if n.startswith("_unnamed_") and table[n].isna().all()]
    table = table.drop(columns=unnamed).rename(columns=_RENAMES)
    require_columns(table, _REQUIRED, path)
    return table


def header_names(line: str) -> list[str]:
    """Column names of a header line whose bracketed names may hold commas.

    >>> header_names("Image Index,OriginalImage[Width,Height],Patient ID")
    ['Image Index', 'OriginalImage[Width]', 'OriginalImage[Height]', 'Patient ID']
    """
    names: list[str] = []
    pending: str | None = None
    for field in next(csv.reader([line.rstrip("\r\n")])):
        pending = field.strip() if pending is None else f"{pending},{field.strip()}"
        if pending.count("[") <= pending.count("]"):  # the bracket (if any) is closed
            names.extend(_expand_bracketed(pending))
            pending = None
    if pending is not None:
        names.append(pending)
    return [name or f"_unnamed_{i}" for i, name in enumerate(names)]


def _expand_bracketed(name: str) -> list[str]:
    match = re.fullmatch(r"(.*)\[(.*)\]", name)
    if not match or "," not in match[2]:
        return [name]
    return [f"{match[1]}[{part.strip()}]" for part in match[2].split(",")]


def _usable_rows(table: pd.DataFrame, path: Path, problems: list) -> pd.DataFrame:
    table = table.copy()
    table["Image Index"] = table["Image Index"].str.strip()
    empty = table["Image Index"].isna() | (table["Image Index"] == "")
    for line in table.index[empty]:
        problems.append(("missing_image_name", f"{path.name}: line {line + 2}", "no 'Image Index'; row not cataloged"))
    table = table[~empty]
    repeated = table["Image Index"].duplicated()
    for name in table.loc[repeated, "Image Index"]:
        problems.append(("duplicate_row", name, f"listed again in {path.name}; the first row is used"))
    return table[~repeated].reset_index(drop=True)


def _index_images(root: Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Map each image file name to its path relative to ``root`` (``images/``, ``images_*/images/``)."""
    folders = [root / "images"] if (root / "images").is_dir() else []
    for part in sorted(p for p in root.glob("images_*") if p.is_dir()):
        folders.append(part / "images" if (part / "images").is_dir() else part)
    found: dict[str, str] = {}
    problems = []
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
                    continue
                relpath = Path(entry.path).relative_to(root).as_posix()
                # Links and special files are checked by a stat, never opened; a plain file needs no check.
                problem = None if entry.is_file(follow_symlinks=False) else file_problem(Path(entry.path), relpath)
                if problem is not None:
                    problems.append(problem)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                if entry.name in found:
                    detail = f"same file name as {found[entry.name]}, which is used"
                    problems.append(("duplicate_image", relpath, detail))
                    continue
                found[entry.name] = relpath
    return found, problems


def _whole_numbers(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(numbers == numbers.round()).astype("Int64")


def _patient_ids(table: pd.DataFrame, relpaths: pd.Series, problems: list) -> pd.Series:
    raw = table["Patient ID"].str.strip()
    # "00000001" and "1" are the same patient: the table writes 1, file names 00000001.
    numeric = _whole_numbers(raw)
    ids = numeric.astype("string").fillna(raw.mask(raw == ""))
    for rel in relpaths[ids.isna()]:
        problems.append(("missing_patient_id", rel, "no 'Patient ID'"))
    from_name = table["Image Index"].str.extract(_NAME_RE)[0]
    name_ids = pd.to_numeric(from_name, errors="coerce").astype("Int64")
    differs = name_ids.notna() & numeric.notna() & (name_ids != numeric)
    for rel, pid, nid in zip(relpaths[differs], ids[differs], name_ids[differs]):
        problems.append(("patient_id_mismatch", rel, f"Patient ID {pid} but the file name says {nid}; {pid} is used"))
    return ids


def _findings(table: pd.DataFrame, relpaths: pd.Series, problems: list) -> pd.Series:
    out = []
    for rel, text in zip(relpaths, table["Finding Labels"]):
        names = [] if pd.isna(text) else [n.strip() for n in str(text).split("|") if n.strip()]
        if not names:
            problems.append(("no_findings", rel, "empty 'Finding Labels'; label left empty"))
            out.append(None)
            continue
        if NO_FINDING in names and len(names) > 1:
            problems.append(("conflicting_findings", rel, f"{text!r}: 'No Finding' beside findings is dropped"))
        out.append(join_findings(names))
    return pd.Series(out, index=table.index, dtype="string")


def _official_split(root: Path, names: pd.Series, relpaths: pd.Series, problems: list) -> pd.Series:
    split = pd.Series(pd.NA, index=names.index, dtype="string")
    lists = [(root / fname, value) for fname, value in _SPLIT_LISTS if (root / fname).is_file()]
    if not lists:
        return split
    member = {}
    for path, value in lists:
        entries = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
        member[value] = names.isin(entries)
        unknown = sorted(entries - set(names))
        if unknown:  # one row: a subset of the table against the full lists would list 100,000 names
            problems.append(
                (
                    "split_list_without_row",
                    path.name,
                    f"{len(unknown):,} names in {path.name} are not in the table (e.g. {', '.join(unknown[:3])})",
                )
            )
    none = pd.Series(False, index=names.index)
    train, test = member.get("train", none), member.get("test", none)
    both = train & test
    split[train & ~both] = "train"
    split[test & ~both] = "test"
    for rel in relpaths[both]:
        problems.append(("conflicting_split", rel, "in both train_val_list.txt and test_list.txt; split left empty"))
    neither = ~train & ~test
    if len(lists) == len(_SPLIT_LISTS):
        for rel in relpaths[neither]:
            problems.append(("no_official_split", rel, "in neither train_val_list.txt nor test_list.txt"))
    elif neither.any():
        present = lists[0][0].name
        detail = f"only {present} was found: {int(neither.sum()):,} rows have no official split"
        problems.append(("no_official_split", present, detail))
    return split
