"""The OAI's own data: the KL tables joined to the image archive or to an image folder.

The Osteoarthritis Initiative grades each knee on a Kellgren-Lawrence (KL) scale in
its tables ``kxr_sq_bu00`` ... ``kxr_sq_bu10`` (columns ``ID``, ``SIDE``, ``READPRJ``
and one grade column ``VnnXRKL`` per visit). The images come either from the OAI image
archive (one folder per visit with a ``contents.csv``) or from a folder of image files
named by a pattern. The catalog has one row per (participant, side, visit).

Modes
-----
* **Image archive** (the default when a ``contents.csv`` is found under SOURCE): every
  ``contents.csv`` row whose ``SeriesDescription`` is the option ``series`` names the
  DICOM folder of a bilateral knee radiograph. Its visit is the ``NNm`` of the folder
  holding the ``contents.csv`` (``OAI_12m`` -> ``"01"``); only DICOM headers are read.
* **Image folder** (option ``pattern``, e.g. ``{id}_{visit}_{side}.png``): the pattern
  is matched against every file path relative to SOURCE (``/`` separators, any case;
  ``*`` matches any text within one folder or file name). ``{visit}`` takes ``00``,
  ``V00``, ``00m`` or ``12m``; ``{side}`` takes R/L/RIGHT/LEFT/1/2. Without ``{side}``
  the images are bilateral; without ``{visit}`` they are all of the visit ``visit``.

A bilateral image gives two catalog rows, one per knee, each with a ``crop``. By default
the crop is the image half: the radiograph is a PA view, so the patient's RIGHT knee
(``SIDE`` 1) is on the image's LEFT half.

Crops CSV
---------
The option ``crops`` names a CSV (comma-separated, header row, column names in any
case) of knee boxes, e.g. from a knee-joint detector, that replace the default crops:

* ``side``: the knee, ``R``/``L`` (also ``RIGHT``/``LEFT``/``1``/``2``);
* ``x0``, ``y0``, ``x1``, ``y1``: pixel box in the image, half-open (``x1``/``y1`` excluded);
  a detector's fractional values are widened to whole pixels (x0, y0 down, x1, y1 up);
* and the image, either ``path`` (relative to SOURCE, ``/`` separators) or ``id`` and
  ``visit`` (participant id and visit in any form ``00``/``V00``/``12m``). When a row
  has a non-empty ``path`` it is matched by path, otherwise by ``id`` and ``visit``.

A bilateral knee without a box, or with a box that is not inside its image, keeps the
image half and is reported; a box that matches no cataloged knee is reported too.

KL tables
---------
Empty cells and OAI missing codes (text starting with ``.``, e.g. ``.: Missing
Form/Incomplete Workbook``) are no grade. Per (ID, SIDE, visit) the reading of the
newest project (highest ``READPRJ``; 42 counts as 37; a missing READPRJ ranks lowest)
that has a grade is kept. When the readings of that newest project disagree, the knee
is LEFT OUT of the catalog (its label is not trustworthy) and reported as
``conflicting_readings`` with every grade and the line it comes from; readings that
agree are merged silently. Grades of visits outside the option ``visits`` are ignored.

Problem kinds
-------------
``bad_table_row``
    a KL table row without ID or with a SIDE other than 1/2 (the row is not used).
``unreadable_grade``, ``grade_out_of_range``
    a grade cell that is neither a number nor a missing code, or a number outside
    0-4 (the reading is not used; an older project's grade may then be kept).
``conflicting_readings``
    the newest project's readings of a knee disagree (the knee is left out).
``grade_without_image``, ``image_without_grade``
    a graded knee with no image, an image knee with no grade.
``visit_without_images``
    one row per visit that the tables grade but of which no image was found (e.g.
    only ``OAI_00m`` is present), instead of one ``grade_without_image`` per knee.
``unknown_visit_folder``
    a ``contents.csv`` whose folder names no ``NNm`` visit (pass ``visit``), or a
    month without knee radiographs (e.g. ``18m``); its images are not cataloged.
``missing_series_folder``, ``empty_series_folder``
    a knee series of a ``contents.csv`` whose folder does not exist or has no file.
``unreadable_image``
    a file whose header cannot be read; a bilateral image is then not cataloged (its
    halves need the image size), a single-knee image is cataloged without header fields.
``duplicate_image``
    a second image of the same knee (or the same file listed twice); the first path
    in sorted order is used.
``unmatched_file``
    an image file under SOURCE that the pattern does not match, or whose ``{visit}``
    is not an OAI visit.
``not_a_regular_file``, ``broken_link``, ``linked_folder``
    an entry under SOURCE that is a pipe, socket or device, a symbolic link to
    nothing (or a loop of links), or a link to a folder: never opened, not searched.
``bad_crop``, ``no_crop_for_knee``, ``unused_crop``
    see *Crops CSV*.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from curate.catalog import format_crop, make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeFailure, DecodeReason, is_dicom, read_dicom_header
from curate.loaders.base import (
    IMAGE_EXTENSIONS,
    Loader,
    LoadResult,
    Option,
    problems_table,
    require_dir,
    walk_files,
)

__all__ = ["OAILoader", "visit_code", "DEFAULT_SERIES"]

Problem = tuple[str, str, str]
Box = tuple[int, int, int, int]

SOURCE_NAME = "oai"
DEFAULT_SERIES = "Bilateral PA Fixed Flexion Knee"
DEFAULT_VISIT = "00"
#: OAI visit code of each visit month that has knee radiographs.
VISIT_OF_MONTH = {0: "00", 12: "01", 24: "03", 36: "05", 48: "06", 72: "08", 96: "10"}
VISIT_CODES = frozenset(VISIT_OF_MONTH.values())
KL_GRADES = (0, 1, 2, 3, 4)
REQUIRED_TABLE_COLUMNS = ("ID", "SIDE", "READPRJ")
# READPRJ 42 re-reads within the later reading project 37: it ranks the same as 37.
_PROJECT_ALIASES = {42.0: 37.0}
_TABLE_SUFFIXES = (".txt", ".csv", ".sas7bdat")
_GRADE_COLUMN_RE = re.compile(r"^V(\d{2})XRKL$")
# OAI text cells are "2" or, for coded values, "2: label"; the number is what counts.
_NUMBER_RE = r"^\s*([-+]?\d+(?:\.\d*)?)\s*(?::.*)?$"
_MONTHS_RE = re.compile(r"(?<![0-9])(\d{1,3})\s*m(?:onths?)?$", re.IGNORECASE)
_SIDE_WORDS = {"R": "R", "L": "L", "RIGHT": "R", "LEFT": "L", "1": "R", "2": "L"}
_PLACEHOLDERS = {"id": r"[^/]+?", "visit": r"V?\d{2}|\d{1,3}m", "side": r"RIGHT|LEFT|R|L|1|2"}
_KNEE_KEYS = ["patient_id", "side", "visit"]
_HEADER_COLUMNS = (
    "view", "modality", "body_part", "laterality", "photometric", "bits_stored", "rows", "columns",
)
_CATALOG_COLUMNS = [
    "sample_id", "path", "label", "patient_id", "source", "side", "visit", "crop", *_HEADER_COLUMNS,
]
_KNEE_COLUMNS = ["path", *_KNEE_KEYS, "crop", "bilateral", *_HEADER_COLUMNS]


class OAILoader(Loader):
    """Read OAI KL tables joined to the OAI image archive or to an image folder.

    See the module documentation for the modes, the crops CSV and the problem kinds.

    Examples
    --------
    >>> result = OAILoader().load("oai", visits=["00", "12m"])  # doctest: +SKIP
    >>> result.catalog.groupby(["visit", "label"]).size()  # doctest: +SKIP
    """

    name = "oai"
    summary = "OAI KL tables (kxr_sq_bu*) joined to the OAI image archive or to a pattern-named folder"
    options = (
        Option("kl_tables", "KL table files (kxr_sq_bu*.txt/.csv/.sas7bdat); default: found under SOURCE",
               type=Path, multiple=True),
        Option("pattern", "image-folder mode: file pattern relative to SOURCE with {id}, {visit}, {side} "
               "and * wildcards, e.g. '{id}_{visit}_{side}.png'"),
        Option("visit", "visit of the images when the pattern has no {visit} (default 00), and of archive "
               "folders whose name has no NNm"),
        Option("visits", "only these visits (00, V01, 24m, ...)", multiple=True),
        Option("series", "SeriesDescription of the knee radiographs in contents.csv", default=DEFAULT_SERIES),
        Option("crops", "CSV of knee boxes: side, x0, y0, x1, y1 and path (or id and visit)", type=Path),
    )

    def _load(
        self,
        source: Path,
        *,
        kl_tables: Sequence[str | os.PathLike] | None,
        pattern: str | None,
        visit: str | None,
        visits: Sequence[str] | None,
        series: str,
        crops: str | os.PathLike | None,
    ) -> LoadResult:
        require_dir(source)
        fallback_visit = _option_visit("visit", visit) if visit is not None else None
        wanted = {_option_visit("visits", v) for v in _many(visits)} or None
        files, problems = _relative_files(source)

        # Tables and crops first: bad input is refused before the slow header reads.
        tables = _table_paths(source, _many(kl_tables), files)
        readings = pd.concat([_table_readings(p, _shown(p, source), wanted, problems) for p in tables])
        boxes = None
        if crops is not None:
            crops_path = _user_file(source, crops, "crops")
            boxes = _read_crops(crops_path, _shown(crops_path, source), problems)

        if pattern is not None:
            visit_of_files = fallback_visit or DEFAULT_VISIT
            knees, covered = _folder_knees(source, files, pattern, visit_of_files, wanted, problems)
        else:
            knees, covered = _archive_knees(source, files, series, fallback_visit, wanted, problems)

        grades, conflicts = _select_grades(readings, covered, problems)
        catalog = _join(_unique_knees(knees, problems), grades, conflicts, problems)
        if catalog.empty:
            seen = ", ".join(sorted(covered)) or "none"
            asked = f", option visits {', '.join(sorted(wanted))}" if wanted else ""
            raise LoaderError(
                f"{source}: no knee has both an image and a KL grade ({len(knees)} image knees, "
                f"{len(grades)} graded knees, visits with images: {seen}{asked}); check ids and visits"
            )
        if boxes is not None:
            catalog = _apply_crops(catalog, boxes, problems)
        catalog = _finish(catalog)
        return LoadResult(catalog=catalog, data_root=source.resolve(), problems=problems_table(problems))


# --------------------------------------------------------------------------- visits, sides, files


def visit_code(text: str) -> str | None:
    """Return the OAI visit code of ``text``, or None when it names no OAI visit.

    Examples
    --------
    >>> [visit_code(v) for v in ("00", "V01", "24m", "OAI_96m", "7")]
    ['00', '01', '03', '10', None]
    """
    text = str(text).strip()
    months = _MONTHS_RE.search(text)
    if months:
        return VISIT_OF_MONTH.get(int(months.group(1)))
    code = re.fullmatch(r"V?(\d{1,2})", text, re.IGNORECASE)
    if code and code.group(1).zfill(2) in VISIT_CODES:
        return code.group(1).zfill(2)
    return None


def _many(values: Any) -> list[Any]:
    """A multiple option's values as a list; one bare string or path counts as one value."""
    if values is None:
        return []
    if isinstance(values, (str, os.PathLike)):
        return [values]
    return list(values)


def _option_visit(option: str, value: str) -> str:
    code = visit_code(value)
    if code is None:
        raise LoaderError(
            f"option '{option}': {value!r} is not an OAI visit "
            f"(codes {', '.join(sorted(VISIT_CODES))} or months 00m, 12m, 24m, 36m, 48m, 72m, 96m)"
        )
    return code


def _side(text: str) -> str | None:
    return _SIDE_WORDS.get(str(text).strip().upper())


def _relative_files(source: Path) -> tuple[list[str], list[Problem]]:
    """Every non-hidden regular file below ``source`` (sorted relative POSIX paths), and the others' problems.

    One walk serves every use; pipes, sockets and broken links are named, never opened.
    """
    files, problems = walk_files(source)
    return sorted(path.relative_to(source).as_posix() for path in files), problems


def _shown(path: Path, source: Path) -> str:
    """A file's path relative to SOURCE (POSIX), or as given when it is outside SOURCE.

    Symbolic links are not resolved: a visit folder linked into SOURCE stays inside it.
    """
    try:
        rel = Path(os.path.relpath(path, source)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel == ".." or rel.startswith("../") else rel


def _user_file(source: Path, path: str | os.PathLike, option: str) -> Path:
    """A file named by an option: as given, else relative to SOURCE (recipes name files inside it)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_absolute() and (source / path).is_file():
        return source / path
    raise LoaderError(f"option '{option}': {path}: no such file")


# --------------------------------------------------------------------------- KL tables


def _table_paths(source: Path, given: list[str | os.PathLike], files: list[str]) -> list[Path]:
    if given:
        return [_user_file(source, path, "kl_tables") for path in given]
    found = [
        source / f
        for f in files
        if PurePosixPath(f).name.lower().startswith("kxr_sq_bu") and f.lower().endswith(_TABLE_SUFFIXES)
    ]
    if not found:
        raise LoaderError(
            f"{source}: no KL table (kxr_sq_bu*.txt, .csv or .sas7bdat) found; "
            "name them with the option 'kl_tables'"
        )
    return found


def _read_table(path: Path, name: str) -> pd.DataFrame:
    """Read a KL table with upper-case column names (the OAI's own files differ in case)."""
    try:
        if path.suffix.lower() == ".sas7bdat":
            table = pd.read_sas(path, format="sas7bdat", encoding="latin-1")
        else:
            table = pd.read_csv(
                path, sep=_delimiter(path), dtype=str, keep_default_na=False, encoding_errors="replace"
            )
    except (OSError, ValueError) as exc:  # pandas' parser and SAS errors are ValueErrors
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoaderError(f"{name}: not a readable KL table ({message})") from None
    table.columns = [str(c).strip().upper() for c in table.columns]
    return table


def _delimiter(path: Path) -> str:
    """The OAI writes its text tables pipe-delimited; a user's .csv may use commas or tabs."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    return "|" if "|" in header else "\t" if "\t" in header else ","


def _text(column: pd.Series) -> pd.Series:
    """Cells as stripped text; SAS numbers lose their ``.0`` so ids read the same as in text files."""
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.astype("float64")
        text = numbers.astype(str).astype(object)
        whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        text[whole] = numbers[whole].astype("int64").astype(str)
        text[numbers.isna()] = ""
        return text
    return column.fillna("").astype(str).str.strip()


def _number(text: pd.Series) -> pd.Series:
    return pd.to_numeric(text.str.extract(_NUMBER_RE, expand=False), errors="coerce")


def _table_readings(path: Path, name: str, wanted: set[str] | None, problems: list[Problem]) -> pd.DataFrame:
    """One row per non-empty grade cell: patient_id, side, visit, project, grade, origin."""
    table = _read_table(path, name)
    missing = [c for c in REQUIRED_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise LoaderError(f"{name}: KL table has no column {', '.join(map(repr, missing))}")
    grade_columns = [c for c in table.columns if _GRADE_COLUMN_RE.match(c)]
    if not grade_columns:
        raise LoaderError(f"{name}: KL table has no grade column (V00XRKL ... V10XRKL)")

    unit, first = ("row", 1) if path.suffix.lower() == ".sas7bdat" else ("line", 2)
    side_text = _text(table["SIDE"])
    keys = pd.DataFrame(
        {
            "patient_id": _text(table["ID"]),
            "side": _number(side_text).map({1.0: "R", 2.0: "L"}),
            "project": _number(_text(table["READPRJ"])),
            "origin": [f"{name} {unit} {n}" for n in range(first, first + len(table))],
        },
        index=table.index,
    )
    bad = (keys["patient_id"] == "") | keys["side"].isna()
    for origin, pid, side in zip(keys["origin"][bad], keys["patient_id"][bad], side_text[bad]):
        problems.append(("bad_table_row", origin, f"ID {pid!r}, SIDE {side!r}: needs an ID and SIDE 1 or 2"))

    cells = pd.concat([keys, table[grade_columns].apply(_text)], axis=1)[~bad]
    long = cells.melt(
        id_vars=list(keys.columns), value_vars=grade_columns, var_name="column", value_name="cell"
    )
    long["visit"] = long["column"].str[1:3]
    # Empty cells and the OAI's missing codes (".", ".: Missing Form/Incomplete Workbook") are no grade.
    keep = (long["cell"] != "") & ~long["cell"].str.startswith(".")
    if wanted is not None:  # cells of other visits are not even checked: the user left them out
        keep &= long["visit"].isin(wanted)
    return _graded(long[keep].reset_index(drop=True), problems)


def _graded(readings: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Keep the readings whose cell is a KL grade 0-4; report the others."""
    value = _number(readings["cell"])
    unreadable = value.isna()
    out_of_range = ~unreadable & ~value.isin([float(g) for g in KL_GRADES])
    for kind, mask, why in (
        ("unreadable_grade", unreadable, "is not a grade"),
        ("grade_out_of_range", out_of_range, "is not a KL grade 0-4"),
    ):
        bad = readings[mask]
        for origin, column, cell in zip(bad["origin"], bad["column"], bad["cell"]):
            problems.append((kind, origin, f"{column} {cell!r} {why}; the reading is not used"))
    good = readings[~unreadable & ~out_of_range]
    return good.assign(grade=value[good.index].astype("int64")).drop(columns=["cell"])


def _select_grades(
    readings: pd.DataFrame, covered: set[str], problems: list[Problem]
) -> tuple[pd.DataFrame, set[tuple[str, str, str]]]:
    """One grade per knee from the newest project; return it and the knees whose readings conflict.

    Visits the images do not cover get one ``visit_without_images`` row each rather than one
    row per knee.
    """
    outside = readings[~readings["visit"].isin(covered)]
    for visit, group in outside.groupby("visit"):
        knees = len(group.drop_duplicates(["patient_id", "side"]))
        detail = (
            f"{knees} graded knees, but no image of this visit was found "
            "(no archive folder or pattern match for it); they are not cataloged"
        )
        problems.append(("visit_without_images", f"visit {visit}", detail))
    readings = readings[readings["visit"].isin(covered)]

    rank = readings["project"].replace(_PROJECT_ALIASES).fillna(-1.0)
    newest_rank = rank.groupby([readings[k] for k in _KNEE_KEYS]).transform("max")
    newest = readings[rank == newest_rank]
    spread = newest.groupby(_KNEE_KEYS)["grade"].transform("nunique")
    conflicts: set[tuple[str, str, str]] = set()
    for key, group in newest[spread > 1].groupby(_KNEE_KEYS):
        conflicts.add(key)
        listed = "; ".join(
            f"KL {g} (READPRJ {_project(p)}, {o})"
            for g, p, o in zip(group["grade"], group["project"], group["origin"])
        )
        problems.append(
            ("conflicting_readings", _knee_where(*key),
             f"the newest project's readings disagree: {listed}; the knee is left out of the catalog")
        )
    grades = newest[spread == 1].drop_duplicates(_KNEE_KEYS)
    return grades[[*_KNEE_KEYS, "grade", "origin"]].rename(columns={"grade": "label"}), conflicts


def _project(value: float) -> str:
    return "missing" if pd.isna(value) else str(int(value)) if float(value).is_integer() else str(value)


def _knee_where(patient_id: str, side: str, visit: str) -> str:
    return f"participant {patient_id} {side} knee visit {visit}"


# --------------------------------------------------------------------------- images


def _halves(width: int, height: int) -> dict[str, Box]:
    """Default knee boxes of a bilateral image.

    In a PA view the patient faces the detector, so the RIGHT knee is on the image's LEFT.
    """
    middle = width // 2
    return {"R": (0, 0, middle, height), "L": (middle, 0, width, height)}


def _header(path: Path, dicom: bool) -> dict[str, Any]:
    """The catalog's header fields of an image file, reading no pixels.

    Raises
    ------
    DecodeFailure
        When the file's header cannot be read.
    """
    if dicom:
        header = read_dicom_header(path)
        return {k: header.get(k) for k in _HEADER_COLUMNS}
    try:
        with Image.open(path) as img:  # Pillow reads the size without decoding
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DecodeFailure(str(path), DecodeReason.NOT_AN_IMAGE, str(exc)) from None
    return {"rows": height, "columns": width}


def _bilateral_knees(
    path: Path, rel: str, patient_id: str, visit: str, dicom: bool, problems: list[Problem]
) -> list[dict[str, Any]]:
    """The two knees of a bilateral image, each cropped to its half."""
    try:
        header = _header(path, dicom)
    except DecodeFailure as failure:
        detail = f"{failure.reason.value}: {failure.detail}; its knees are not cataloged (halves need the size)"
        problems.append(("unreadable_image", rel, detail))
        return []
    width, height = header.get("columns"), header.get("rows")
    if not width or not height or width < 2:
        problems.append(("unreadable_image", rel, f"size {width}x{height} cannot be split into two knees"))
        return []
    return [
        {**header, "path": rel, "patient_id": patient_id, "visit": visit, "side": side,
         "crop": format_crop(box), "bilateral": True}
        for side, box in _halves(width, height).items()
    ]


def _archive_knees(
    source: Path,
    files: list[str],
    series: str,
    fallback_visit: str | None,
    wanted: set[str] | None,
    problems: list[Problem],
) -> tuple[list[dict[str, Any]], set[str]]:
    """Knees of the knee series listed in the archive's contents.csv files, and the visits covered."""
    contents_files = [source / f for f in files if PurePosixPath(f).name.lower() == "contents.csv"]
    if not contents_files:
        raise LoaderError(
            f"{source}: no OAI image archive (no contents.csv) found; "
            "to read an image folder pass the option 'pattern'"
        )
    knees: list[dict[str, Any]] = []
    covered: set[str] = set()
    for contents in contents_files:
        shown = _shown(contents, source)
        months = _folder_months(source, contents.parent)
        visit = fallback_visit if months is None else VISIT_OF_MONTH.get(months)
        if visit is None:
            why = (
                "no NNm visit (e.g. OAI_12m) in the folder name; pass the option 'visit'"
                if months is None
                else f"{months} months is not an OAI visit with knee radiographs"
            )
            problems.append(("unknown_visit_folder", shown, f"{why}; its images are not cataloged"))
            continue
        if wanted is not None and visit not in wanted:
            continue
        covered.add(visit)
        for folder, patient_id, line in _series_rows(contents, shown, series):
            where = f"{shown} line {line}"
            knees.extend(_series_knees(source, contents.parent / folder, patient_id, visit, where, problems))
    return knees, covered


def _folder_months(source: Path, folder: Path) -> int | None:
    """Months of an archive folder: the ``NNm`` of the nearest folder name at or above it, up to SOURCE."""
    source = source.resolve()
    for candidate in (folder.resolve(), *folder.resolve().parents):
        match = _MONTHS_RE.search(candidate.name)
        if match:
            return int(match.group(1))
        if candidate == source:
            break
    return None


def _series_rows(contents: Path, shown: str, series: str) -> list[tuple[str, str, int]]:
    """(Folder, ParticipantID, line) of the contents.csv rows of the wanted series."""
    try:
        table = pd.read_csv(contents, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (OSError, ValueError) as exc:
        raise LoaderError(f"{shown}: not a readable contents.csv ({exc})") from None
    columns = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in ("Folder", "ParticipantID", "SeriesDescription") if c.lower() not in columns]
    if missing:
        raise LoaderError(f"{shown}: contents.csv has no column {', '.join(map(repr, missing))}")
    wanted = _squash(series)
    keep = table[columns["seriesdescription"]].map(_squash) == wanted
    rows = table[keep]
    # Windows-made archives write backslashes in Folder.
    folders = rows[columns["folder"]].str.strip().str.replace("\\", "/", regex=False).str.strip("/")
    ids = rows[columns["participantid"]].str.strip()
    return list(zip(folders, ids, rows.index + 2))


def _squash(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _series_knees(
    source: Path, folder: Path, patient_id: str, visit: str, where: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    rel = _shown(folder, source)
    if Path(rel).is_absolute():
        problems.append(("missing_series_folder", rel, f"{where}: the folder is outside SOURCE; not read"))
        return []
    if not folder.is_dir():
        problems.append(("missing_series_folder", rel, f"{where}: participant {patient_id}, visit {visit}: "
                         "the series folder does not exist"))
        return []
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        problems.append(("empty_series_folder", rel, f"{where}: participant {patient_id}, visit {visit}: "
                         "the series folder has no file"))
        return []
    knees = []
    for path in files:  # archive files are DICOM, usually without extension
        knees.extend(_bilateral_knees(path, _shown(path, source), patient_id, visit, True, problems))
    return knees


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """Turn ``{id}_{visit}_{side}.png`` into a regular expression over relative POSIX paths."""
    text = pattern.replace("\\", "/").removeprefix("./")
    parts, seen = [], set()
    for part in re.split(r"(\{[^{}]*\})", text):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1].strip().lower()
            if name not in _PLACEHOLDERS:
                raise LoaderError(
                    f"pattern {pattern!r}: unknown placeholder {part}; use {{id}}, {{visit}}, {{side}}"
                )
            if name in seen:
                raise LoaderError(f"pattern {pattern!r}: placeholder {part} appears twice")
            seen.add(name)
            parts.append(f"(?P<{name}>{_PLACEHOLDERS[name]})")
        else:
            # "*" stands for any text inside one folder or file name (e.g. split and grade folders).
            parts.append(re.escape(part).replace(r"\*", "[^/]*"))
    if "id" not in seen:
        raise LoaderError(f"pattern {pattern!r} has no {{id}} placeholder")
    return re.compile("".join(parts), re.IGNORECASE)


def _folder_knees(
    source: Path,
    files: list[str],
    pattern: str,
    default_visit: str,
    wanted: set[str] | None,
    problems: list[Problem],
) -> tuple[list[dict[str, Any]], set[str]]:
    """Knees of the image files named by ``pattern``, and the visits covered."""
    regex = _compile_pattern(pattern)
    has_visit = "visit" in regex.groupindex
    knees: list[dict[str, Any]] = []
    covered: set[str] = set() if has_visit else {default_visit}
    matched = 0
    for rel in files:
        match = regex.fullmatch(rel)
        if match is None:
            # Tables, notes and crops CSVs live beside the images: only image files are worth a problem.
            if PurePosixPath(rel).suffix.lower() in IMAGE_EXTENSIONS:
                problems.append(("unmatched_file", rel, f"does not match the pattern {pattern!r}"))
            continue
        matched += 1
        visit = visit_code(match["visit"]) if has_visit else default_visit
        if visit is None:
            problems.append(("unmatched_file", rel, f"visit {match['visit']!r} is not an OAI visit"))
            continue
        if wanted is not None and visit not in wanted:
            continue
        covered.add(visit)
        knees.extend(_file_knees(source / rel, rel, match, visit, problems))
    if not matched:
        raise LoaderError(f"pattern {pattern!r} matches no file under {source}")
    if wanted is not None:
        covered &= wanted
    return knees, covered


def _file_knees(
    path: Path, rel: str, match: re.Match[str], visit: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    patient_id = match["id"]
    dicom = is_dicom(path) or not path.suffix
    if "side" not in match.re.groupindex:
        return _bilateral_knees(path, rel, patient_id, visit, dicom, problems)
    try:
        header = _header(path, dicom)
    except DecodeFailure as failure:
        # A single-knee image needs no size: catalog it and let the scan stage judge the file.
        problems.append(("unreadable_image", rel, f"{failure.reason.value}: {failure.detail}; "
                         "cataloged without header fields"))
        header = {}
    return [{**header, "path": rel, "patient_id": patient_id, "visit": visit,
             "side": _side(match["side"]), "crop": None, "bilateral": False}]


def _unique_knees(knees: list[dict[str, Any]], problems: list[Problem]) -> pd.DataFrame:
    """One image per knee (and one knee per file side); the first path in sorted order wins."""
    frame = pd.DataFrame(knees, columns=_KNEE_COLUMNS)
    frame = frame.sort_values(["path", "side"], kind="stable").reset_index(drop=True)
    for keys in (["path", "side"], _KNEE_KEYS):
        dup = frame.duplicated(keys)
        kept = frame[~dup]
        first = dict(zip(zip(*(kept[k] for k in keys)), kept["path"]))
        for row in frame[dup].itertuples(index=False):
            key = tuple(getattr(row, k) for k in keys)
            problems.append(("duplicate_image", row.path, f"{_knee_where(row.patient_id, row.side, row.visit)} "
                             f"already has an image ({first[key]}); this one is not used"))
        frame = frame[~dup]
    return frame


# --------------------------------------------------------------------------- join and crops


def _join(
    knees: pd.DataFrame, grades: pd.DataFrame, conflicts: set[tuple[str, str, str]], problems: list[Problem]
) -> pd.DataFrame:
    """Image knees joined to their grade; unmatched knees on either side become problems."""
    # Empty frames come out of pandas as float columns: the keys must stay text to merge.
    as_text = dict.fromkeys(_KNEE_KEYS, object)
    merged = knees.astype(as_text).merge(grades.astype(as_text), on=_KNEE_KEYS, how="outer", indicator=True)
    no_grade = merged[merged["_merge"] == "left_only"]
    for row in no_grade.itertuples(index=False):
        if (row.patient_id, row.side, row.visit) not in conflicts:  # those are reported already
            knee = _knee_where(row.patient_id, row.side, row.visit)
            problems.append(("image_without_grade", row.path, f"{knee} has no KL grade in the tables"))
    no_image = merged[merged["_merge"] == "right_only"]
    for row in no_image.itertuples(index=False):
        problems.append(("grade_without_image", _knee_where(row.patient_id, row.side, row.visit),
                         f"KL {int(row.label)} ({row.origin}): no image of this knee was found"))
    both = merged[merged["_merge"] == "both"].drop(columns=["_merge", "origin"])
    return both.assign(label=both["label"].astype("int64")).reset_index(drop=True)


def _read_crops(path: Path, shown: str, problems: list[Problem]) -> dict[tuple[str, ...], tuple[Box, str]]:
    """Knee boxes keyed by ``("path", path, side)`` or ``("id", id, visit, side)``, with their origin."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (OSError, ValueError) as exc:
        raise LoaderError(f"{shown}: not a readable crops CSV ({exc})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("side", "x0", "y0", "x1", "y1") if c not in table.columns]
    if "path" not in table.columns and not {"id", "visit"} <= set(table.columns):
        missing.append("path (or id and visit)")
    if missing:
        raise LoaderError(f"{shown}: crops CSV has no column {', '.join(map(repr, missing))}")
    boxes: dict[tuple[str, ...], tuple[Box, str]] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):
        origin = f"{shown} line {line}"
        key, error = _crop_key(row)
        box = _crop_box(row)
        if error or box is None:
            error = error or "x0, y0, x1, y1 must be numbers >= 0 with x0 < x1 and y0 < y1"
            problems.append(("bad_crop", origin, error))
        elif key in boxes:
            problems.append(("bad_crop", origin, f"another box for the same knee ({boxes[key][1]}) is used"))
        else:
            boxes[key] = (box, origin)
    return boxes


def _crop_key(row: dict[str, str]) -> tuple[tuple[str, ...], str | None]:
    side = _side(row["side"])
    if side is None:
        return (), f"side {row['side']!r} is not R or L"
    rel = str(row.get("path", "")).strip().replace("\\", "/").removeprefix("./")
    if rel:
        return ("path", rel, side), None
    visit = visit_code(row.get("visit", ""))
    if not str(row.get("id", "")).strip() or visit is None:
        return (), f"needs a path, or an id and an OAI visit (visit {row.get('visit', '')!r})"
    return ("id", str(row["id"]).strip(), visit, side), None


def _crop_box(row: dict[str, str]) -> Box | None:
    """The row's box in whole pixels; a detector's fractional box is widened, never shrunk."""
    try:
        x0, y0, x1, y1 = (float(str(row[c]).strip()) for c in ("x0", "y0", "x1", "y1"))
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    box = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
    return box if 0 <= box[0] < box[2] and 0 <= box[1] < box[3] else None


def _apply_crops(
    catalog: pd.DataFrame, boxes: dict[tuple[str, ...], tuple[Box, str]], problems: list[Problem]
) -> pd.DataFrame:
    """Replace default crops by the user's boxes; a knee without a usable box keeps its default."""
    crops = catalog["crop"].astype(object).tolist()
    used: set[tuple[str, ...]] = set()
    for i, row in enumerate(catalog.itertuples(index=False)):
        by_path = ("path", row.path, row.side)
        key = by_path if by_path in boxes else ("id", row.patient_id, row.visit, row.side)
        where = f"{row.path} ({row.side} knee)"
        if key not in boxes:
            if row.bilateral:
                problems.append(("no_crop_for_knee", where, "no box in the crops CSV; the image half is used"))
            continue
        used.add(key)
        box, origin = boxes[key]
        if pd.notna(row.columns) and pd.notna(row.rows) and (box[2] > row.columns or box[3] > row.rows):
            keeps = "the image half is used" if row.bilateral else "the whole image is used"
            problems.append(("bad_crop", where, f"box {format_crop(box)} ({origin}) exceeds the "
                             f"{int(row.columns)}x{int(row.rows)} image; {keeps}"))
            continue
        crops[i] = format_crop(box)
    for key in boxes.keys() - used:
        problems.append(("unused_crop", boxes[key][1], f"matches no cataloged knee ({' '.join(key[1:])})"))
    return catalog.assign(crop=crops)


def _finish(catalog: pd.DataFrame) -> pd.DataFrame:
    """Add the ids and fixed columns, in catalog column order."""
    catalog = catalog.sort_values(["patient_id", "visit", "side", "path"], kind="stable").reset_index(drop=True)
    catalog["source"] = SOURCE_NAME
    catalog["sample_id"] = [
        make_sample_id(SOURCE_NAME, path, part=side) for path, side in zip(catalog["path"], catalog["side"])
    ]
    # Every KL grade of the OAI is read on the PA fixed-flexion radiograph; a header's own view wins.
    catalog["view"] = catalog["view"].astype("string").fillna("PA")
    catalog["body_part"] = catalog["body_part"].astype("string").fillna("KNEE")
    return catalog[_CATALOG_COLUMNS]

