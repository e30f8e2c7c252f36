"""The public KL-graded knee layout: ``{train,val,test}/{0..4}/<id><L|R>.png``.

This is the layout of Chen (2018), "Knee Osteoarthritis Severity Grading Dataset"
(OAI baseline radiographs cropped per knee). The folder is the Kellgren-Lawrence
grade; the file name is the OAI participant id followed by the knee side. A layout
with grade folders only (no split level) is read too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from curate.catalog import SPLITS, make_sample_id
from curate.errors import LoaderError
from curate.imaging import DecodeFailure, is_dicom, read_dicom_header
from curate.loaders.base import (
    IMAGE_EXTENSIONS,
    Loader,
    LoadResult,
    Option,
    dicom_fields,
    file_problem,
    problems_table,
    require_dir,
)

__all__ = ["OAIKLLoader"]

GRADES = ("0", "1", "2", "3", "4")
# "valid" is how some re-uploads of the dataset name the validation split.
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_NAME_RE = re.compile(r"^(?P<id>\d+)(?P<side>[LR])$", re.IGNORECASE)


class OAIKLLoader(Loader):
    """Read the public KL-graded knee layout into a catalog.

    ``label`` is the grade folder, ``patient_id`` and ``side`` come from the file
    name (``9003175L.png``: participant 9003175, left knee), ``official_split``
    from the split folder. DICOM files in the layout get their header fields.
    """

    name = "oai-kl"
    summary = "public KL-graded knee layout {train,val,test}/{0..4}/<id><L|R>.png"
    options = (
        Option("source_name", "name recorded in the catalog's source column", default="oai-kl"),
    )

    def _load(self, source: Path, *, source_name: str) -> LoadResult:
        require_dir(source)
        grade_dirs, problems = _find_grade_dirs(source)
        rows: list[dict] = []
        for split, grade, folder in grade_dirs:
            for path in sorted(folder.iterdir()):
                if path.name.startswith("."):
                    continue
                where = path.relative_to(source).as_posix()
                if path.is_dir():
                    problems.append(("unexpected_folder", where, "folders inside a grade folder are not read"))
                    continue
                problem = file_problem(path, where)  # a pipe named 9003175L.png must not be opened
                if problem is not None:
                    problems.append(problem)
                    continue
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    problems.append(("not_an_image_name", where, f"extension {path.suffix!r} is not an image's"))
                    continue
                match = _NAME_RE.match(path.stem)
                if not match:
                    problems.append(
                        ("unparsed_name", where, "file name is not <participant id><L|R>, e.g. 9003175L.png")
                    )
                    continue
                rows.append(_row(source_name, where, grade, split, match, path, problems))
        if not rows:
            raise LoaderError(f"{source}: no <id><L|R> image files found in its grade folders")
        catalog = pd.DataFrame(rows)
        return LoadResult(catalog=catalog, data_root=source.resolve(), problems=problems_table(problems))


def _find_grade_dirs(source: Path) -> tuple[list[tuple[str | None, int, Path]], list]:
    """Return (split, grade, folder) for every grade folder, and problems with the layout."""
    problems: list[tuple[str, str, str]] = []
    children = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in children if p.name.lower() in _SPLIT_ALIASES]
    grade_dirs = [p for p in children if p.name in GRADES]
    found: list[tuple[str | None, int, Path]] = []
    if split_dirs:
        for split_dir in split_dirs:
            split = _SPLIT_ALIASES[split_dir.name.lower()]
            for sub in sorted(p for p in split_dir.iterdir() if not p.name.startswith(".")):
                where = sub.relative_to(source).as_posix()
                if sub.is_dir() and sub.name in GRADES:
                    found.append((split, int(sub.name), sub))
                    continue
                problem = None if sub.is_dir() else file_problem(sub, where, "not read")
                problems.append(problem or ("unexpected_entry", where, "not a grade folder 0-4"))
        others = [p for p in children if p not in split_dirs]
    elif grade_dirs:
        found = [(None, int(p.name), p) for p in grade_dirs]
        others = [p for p in children if p not in grade_dirs]
    else:
        names = ", ".join(p.name for p in children[:8]) or "no sub-folders"
        raise LoaderError(
            f"{source}: expected split folders ({'/'.join(SPLITS)}) or grade folders (0-4), found {names}"
        )
    for other in others:
        problems.append(("unexpected_entry", other.relative_to(source).as_posix(), "not a split or grade folder"))
    # Files beside the folders (a README) are left alone; what is not a file at all is named.
    for entry in sorted(p for p in source.iterdir() if not p.name.startswith(".") and not p.is_dir()):
        problem = file_problem(entry, entry.name, "not read")
        if problem is not None:
            problems.append(problem)
    return found, problems


def _row(source_name, relpath, grade, split, match, path, problems) -> dict:
    row = {
        "sample_id": make_sample_id(source_name, relpath),
        "path": relpath,
        "label": grade,
        "patient_id": match["id"],
        "source": source_name,
        "side": match["side"].upper(),
        "official_split": split,
    }
    if is_dicom(path):
        try:
            header = read_dicom_header(path)
        except DecodeFailure as failure:
            problems.append(("unreadable_header", relpath, f"{failure.reason.value}: {failure.detail}"))
        else:
            row.update(dicom_fields(header))
    return row
