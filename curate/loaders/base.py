"""What every loader shares: its options, its result, and the registry of loaders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from curate.catalog import validate_catalog
from curate.errors import LoaderError
from curate.imaging import regular_file_failure

__all__ = ["Option", "LoadResult", "Loader", "get_loader", "loader_class", "available_loaders", "problems_table"]

Problem = tuple[str, str, str]

ENTRY_POINT_GROUP = "curate.loaders"
PROBLEM_COLUMNS = ("kind", "where", "detail")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"})


@dataclass(frozen=True)
class Option:
    """One option of a loader, usable from Python, the CLI and recipes.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``Path``; ``multiple``
    options take a list.
    """

    name: str
    help: str
    type: type = str
    default: Any = None
    required: bool = False
    multiple: bool = False
    choices: tuple[str, ...] | None = None


@dataclass
class LoadResult:
    """What a loader returns.

    Attributes
    ----------
    catalog : DataFrame
        The validated catalog rows.
    data_root : Path
        The folder that catalog paths are relative to.
    problems : DataFrame
        Everything the loader met but could not turn into a sample, one row each
        (``kind``, ``where``, ``detail``): nothing is dropped silently.
    """

    catalog: pd.DataFrame
    data_root: Path
    problems: pd.DataFrame = field(default_factory=lambda: problems_table([]))


def problems_table(rows: list[Problem]) -> pd.DataFrame:
    """Build a problems table from ``(kind, where, detail)`` tuples, sorted for stable output."""
    table = pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS), dtype="string")
    return table.sort_values(list(PROBLEM_COLUMNS), kind="stable").reset_index(drop=True)


class Loader:
    """Base class of loaders. Subclasses set ``name``, ``summary``, ``options`` and
    implement :meth:`_load`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()

    def load(self, source: str | os.PathLike, **options: Any) -> LoadResult:
        """Read ``source`` into a catalog, after checking ``options`` against :attr:`options`."""
        source = Path(source)
        if not source.exists():
            raise LoaderError(f"{source}: no such file or folder")
        params = self._check_options(options)
        result = self._load(source, **params)
        result.catalog = validate_catalog(result.catalog, name=f"{self.name} catalog of {source}")
        result.catalog.attrs["data_root"] = str(Path(result.data_root).resolve())
        return result

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        known = {opt.name: opt for opt in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise LoaderError(
                f"loader '{self.name}' has no option {', '.join(map(repr, unknown))}; "
                f"its options are {', '.join(map(repr, known)) or 'none'}"
            )
        params = {}
        for name, opt in known.items():
            value = options.get(name)
            if value is None or (opt.multiple and value == ()):
                if opt.required:
                    raise LoaderError(f"loader '{self.name}' needs the option '{name}': {opt.help}")
                value = opt.default
            elif opt.choices is not None and value not in opt.choices:
                raise LoaderError(
                    f"loader '{self.name}': option '{name}' is {value!r}, expected one of {', '.join(opt.choices)}"
                )
            params[name] = value
        return params

    def _load(self, source: Path, **options: Any) -> LoadResult:  # pragma: no cover - abstract
        raise NotImplementedError


def available_loaders() -> list[str]:
    """Names of the loaders registered under the ``curate.loaders`` entry point group."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def loader_class(name: str) -> type[Loader]:
    """Import and return the loader class registered as ``name``.

    A plug-in that fails to import is reported when it is asked for, and does not
    break the other loaders.
    """
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise LoaderError(f"unknown loader '{name}'; available: {', '.join(available_loaders())}")
    ep = matches[0]
    try:
        cls = ep.load()
    except Exception as exc:  # any import error of third-party code
        raise LoaderError(f"loader plug-in '{name}' ({ep.value}) failed to import: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Loader)):
        raise LoaderError(f"loader plug-in '{name}' ({ep.value}) is not a curate.loaders.Loader subclass")
    return cls


def get_loader(name: str) -> Loader:
    """Return an instance of the loader called ``name``."""
    return loader_class(name)()


def file_problem(path: Path, where: str, outcome: str = "not cataloged") -> Problem | None:
    """The problem of a path that is not a regular file (or a link to one), found without opening it.

    Parameters
    ----------
    path : Path
        The entry to check.
    where : str
        How the problem names it (its path relative to the source).
    outcome : str
        What the loader does with it, appended to the reason.

    Returns
    -------
    (kind, where, detail) or None
        None for a regular file; else the kind is the
        :class:`~curate.imaging.DecodeReason` value (``not_a_regular_file``,
        ``broken_link``, ...) and the detail says what the entry is.
    """
    failure = regular_file_failure(path)
    if failure is None:
        return None
    return (failure.reason.value, where, f"{failure.detail}; {outcome}")


def walk_files(root: Path, *, relative_to: Path | None = None) -> tuple[list[Path], list[Problem]]:
    """Every non-hidden regular file below ``root``, sorted, and a problem for every other entry.

    Nothing is opened. Named pipes, sockets, devices, links to nothing and loops of
    links are problems whatever their name, since a name does not tell them from an
    image (and opening a pipe waits forever). Links to files are files; links to
    folders are not followed, as by :func:`os.walk` (one pointing back up would never
    end), and are problems too. Hidden entries (``.name``) are skipped.

    Parameters
    ----------
    root : Path
        The folder to walk.
    relative_to : Path, optional
        The folder the problems' ``where`` is relative to (default: ``root``).

    Returns
    -------
    files : list of Path
    problems : list of (kind, where, detail)
    """
    base = root if relative_to is None else relative_to
    files: list[Path] = []
    problems: list[Problem] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = [entry for entry in it if not entry.name.startswith(".")]
        except OSError as exc:  # os.walk would skip the folder without a word
            where = folder.relative_to(base).as_posix()
            problems.append(("unreadable_folder", where, f"{exc.strerror or exc}; its files are not cataloged"))
            continue
        for entry in entries:
            path = Path(entry.path)
            # The entry's type comes with the listing: plain files and folders cost no stat.
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif entry.is_file(follow_symlinks=False):
                files.append(path)
            elif entry.is_symlink() and os.path.isdir(path):  # DirEntry.is_dir raises on a loop
                where = path.relative_to(base).as_posix()
                detail = f"a symbolic link to the folder {os.readlink(path)!r}: not searched (links are not followed)"
                problems.append(("linked_folder", where, detail))
            elif (problem := file_problem(path, path.relative_to(base).as_posix())) is not None:
                problems.append(problem)
            else:
                files.append(path)  # a link to a regular file
    return sorted(files), problems


_DICOM_CATALOG_FIELDS = (
    "modality", "body_part", "view", "photometric", "bits_stored", "rows", "columns", "laterality", "burned_in_annotation",
)


def dicom_fields(header: dict) -> dict:
    """The catalog columns taken from a :func:`curate.imaging.read_dicom_header` result."""
    return {key: header.get(key) for key in _DICOM_CATALOG_FIELDS}


def require_dir(source: Path) -> None:
    """Refuse a source that is not a folder with something in it."""
    if not source.is_dir():
        raise LoaderError(f"{source}: is not a folder")
    if not any(source.iterdir()):
        raise LoaderError(f"{source}: the folder is empty")
