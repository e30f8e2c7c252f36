"""Any dataset laid out as ``root/<class>/<image>`` (optionally ``root/<split>/<class>/<image>``)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from curate.catalog import make_sample_id
from curate.errors import LoaderError
from curate.loaders.base import (
    IMAGE_EXTENSIONS,
    Loader,
    LoadResult,
    Option,
    Problem,
    file_problem,
    problems_table,
    require_dir,
    walk_files,
)

__all__ = ["ImageFolderLoader"]

_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ImageFolderLoader(Loader):
    """Read class folders into a catalog; the folder name is the label.

    When every top-level folder is a split name (train/val/test), the level below
    holds the classes and ``official_split`` is recorded. Without a
    ``patient_pattern`` each image is its own patient, which is only safe when the
    dataset has one image per patient: the summary says so.
    """

    name = "imagefolder"
    summary = "class folders root/<class>/<image>, optionally below split folders"
    options = (
        Option(
            "patient_pattern",
            "regular expression applied to the file name (without extension); "
            "its group 'patient' (or its first group) is the patient id",
        ),
        Option("source_name", "name recorded in the catalog's source column", default="imagefolder"),
    )

    def _load(self, source: Path, *, patient_pattern: str | None, source_name: str) -> LoadResult:
        require_dir(source)
        pattern = _compile(patient_pattern)
        top = _folders(source)
        if not top:
            raise LoaderError(f"{source}: no class folders (expected root/<class>/<image>)")
        rows, problems = [], _strays(source, source)
        if all(p.name.lower() in _SPLITS for p in top):
            class_dirs = []
            for split_dir in top:
                class_dirs += [(_SPLITS[split_dir.name.lower()], c) for c in _folders(split_dir)]
                problems += _strays(split_dir, source)
        else:
            class_dirs = [(None, c) for c in top]
        for split, class_dir in class_dirs:
            files, odd = walk_files(class_dir, relative_to=source)
            problems += odd
            for path in files:
                relpath = path.relative_to(source).as_posix()
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    problems.append(("not_an_image_name", relpath, f"extension {path.suffix!r} is not an image's"))
                    continue
                patient = _patient(pattern, path.stem)
                if patient is None:
                    problems.append(("unmatched_file", relpath, f"patient_pattern {patient_pattern!r} does not match"))
                    continue
                rows.append(
                    {
                        "sample_id": make_sample_id(source_name, relpath),
                        "path": relpath,
                        "label": class_dir.name,
                        "patient_id": patient,
                        "source": source_name,
                        "official_split": split,
                    }
                )
        if not rows:
            raise LoaderError(f"{source}: no image files in its class folders")
        if pattern is None:
            problems.append(
                ("one_patient_per_image", str(source), "no patient_pattern: every image counts as its own patient")
            )
        return LoadResult(pd.DataFrame(rows), source.resolve(), problems_table(problems))


def _folders(folder: Path) -> list[Path]:
    """The non-hidden sub-folders of ``folder`` (links to folders too: a class folder may be one), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _strays(folder: Path, source: Path) -> list[Problem]:
    """A problem for each non-hidden entry of ``folder`` that is not a folder: images live in class folders."""
    problems = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir()):
        where = path.relative_to(source).as_posix()
        problems.append(file_problem(path, where) or ("unexpected_entry", where, "file outside the class folders"))
    return problems


def _compile(patient_pattern: str | None) -> re.Pattern | None:
    if patient_pattern is None:
        return None
    try:
        pattern = re.compile(patient_pattern)
    except re.error as exc:
        raise LoaderError(f"patient_pattern {patient_pattern!r} is not a regular expression: {exc}") from None
    if pattern.groups == 0:
        raise LoaderError(f"patient_pattern {patient_pattern!r} needs a group, e.g. '(?P<patient>\\d+)_'")
    return pattern


def _patient(pattern: re.Pattern | None, stem: str) -> str | None:
    if pattern is None:
        return stem
    match = pattern.search(stem)
    if match is None:
        return None
    return match.group("patient") if "patient" in pattern.groupindex else match.group(1)
