"""The manifest store: ``NAME/VERSION/`` folders of immutable versions, and ``NAME/LATEST``.

Layout::

    STORE/
      NAME/
        LATEST                 the version the last run of NAME produced (a text file, not a symlink)
        .lock                  locked by a run of NAME (lockf), so runs of one name take turns
        VERSION/
          rows.parquet         the rows (the card is also in its Parquet metadata)
          card.json            the card
          card.md              a short card for people
          exports.jsonl        every export made of it (format, output, preprocessing), appended

A version is written into a temporary folder and renamed into place, and its rows
and card are never modified afterwards: writing a version that exists already
returns the stored one. Only its export log grows, a line per export.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from curate._io import TargetAppeared, atomic_directory, atomic_path, read_parquet_table, write_parquet_table
from curate.errors import CurateError
from curate.manifest.card import card_markdown
from curate.manifest.model import Manifest

__all__ = [
    "DEFAULT_STORE",
    "default_store",
    "check_name",
    "latest_version",
    "versions",
    "write_manifest",
    "read_manifest",
    "resolve",
    "open_manifest",
    "load_manifest",
    "list_manifests",
    "name_lock",
]

DEFAULT_STORE = "manifests"
_STORE_ENV = "CURATE_MANIFEST_STORE"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_METADATA_KEY = b"curate.manifest"
ROWS_FILE, CARD_FILE, CARD_MD_FILE, LATEST_FILE = "rows.parquet", "card.json", "card.md", "LATEST"
LOCK_FILE = ".lock"


def default_store() -> Path:
    """``$CURATE_MANIFEST_STORE`` if set, else ``./manifests``."""
    return Path(os.environ.get(_STORE_ENV) or DEFAULT_STORE)


def _store(store: str | os.PathLike | None) -> Path:
    return Path(store) if store is not None else default_store()


def check_name(name: str) -> str:
    """Refuse names that are not one folder name (letters, digits, ``.``, ``_``, ``-``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise CurateError(f"manifest name {name!r}: use letters, digits, '.', '_' and '-' (no '@' or '/')")
    return name


def latest_version(name: str, store: str | os.PathLike | None = None) -> str | None:
    """The version id in ``NAME/LATEST``, or None when the name has no version yet."""
    pointer = _store(store) / name / LATEST_FILE
    return pointer.read_text().strip() or None if pointer.is_file() else None


def write_manifest(manifest: Manifest, store: str | os.PathLike | None = None, *, set_latest: bool = True) -> Manifest:
    """Store a manifest version and point ``NAME/LATEST`` at it.

    When the card names no parent, the name's latest version (if another) becomes it.
    Writing a version id that is stored already writes no version and returns the
    stored manifest; ``LATEST`` then points at it (a run killed between storing a
    version and moving ``LATEST`` is repaired by running it again).

    Returns
    -------
    Manifest
        The manifest as stored.
    """
    root = _store(store)
    name = check_name(manifest.name)
    folder = root / name / manifest.version
    if (folder / CARD_FILE).is_file():
        # Stored already, perhaps by a run killed before it moved LATEST: repair the pointer.
        if set_latest and latest_version(name, root) != manifest.version:
            _set_latest(root, name, manifest.version)
        return read_manifest(folder)
    card = dict(manifest.card)
    latest = latest_version(name, root)
    if card.get("parent") is None and latest is not None and latest != manifest.version:
        card["parent"] = f"{name}@{latest}"
    try:
        with atomic_directory(folder) as tmp:
            # Only what names the rows goes in the Parquet metadata, so the same rows give the same bytes.
            identity = {k: card[k] for k in ("name", "version", "rows_sha256")}
            write_parquet_table(manifest.rows, tmp / ROWS_FILE, _METADATA_KEY, identity)
            (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
            (tmp / CARD_MD_FILE).write_text(card_markdown(card), encoding="utf-8")
    except (OSError, TargetAppeared):
        if (folder / CARD_FILE).is_file():  # another writer stored the same version first
            if set_latest:
                _set_latest(root, name, manifest.version)
            return read_manifest(folder)
        raise
    if set_latest:
        _set_latest(root, name, manifest.version)
    return Manifest(rows=manifest.rows, card=card, folder=folder)


def _set_latest(root: Path, name: str, version: str) -> None:
    with atomic_path(root / name / LATEST_FILE) as tmp:
        tmp.write_text(version + "\n")


@contextlib.contextmanager
def name_lock(
    name: str, store: str | os.PathLike | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold ``NAME/.lock`` (an advisory POSIX lock): runs of one manifest name take turns.

    A second run of the same name waits (``on_wait`` is told once, with the other
    run's pid) instead of mixing its work files, version and exports with the first
    one's. The lock is released when the holder exits, even when it is killed: it is
    a POSIX record lock, which forked workers do not inherit (an ``flock`` they would,
    and orphaned workers of a killed run would hold it for ever).
    """
    import errno
    import fcntl

    folder = _store(store) / check_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            if on_wait is not None:
                on_wait(f"waiting for another curate run of {name} (pid {holder}) to finish")
            fcntl.lockf(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def read_manifest(folder: str | os.PathLike) -> Manifest:
    """Read the version stored in ``folder``."""
    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise CurateError(f"{folder}: not a manifest version folder (no {CARD_FILE})")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CurateError(f"{card_path}: not valid JSON ({exc})") from None
    rows = read_parquet_table(folder / ROWS_FILE, "manifest rows").to_pandas()
    return Manifest(rows=rows, card=card, folder=folder)


def versions(name: str, store: str | os.PathLike | None = None) -> list[str]:
    """The stored version ids of ``name``, oldest first."""
    folder = _store(store) / name
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        if child.is_dir() and not child.name.startswith(".") and (child / CARD_FILE).is_file():
            card = _readable_card(child)
            if card is None:  # reported by `curate manifest fsck`, never taken for a version
                continue
            # created_at has whole seconds; the card file's time orders versions written within one second
            found.append((card.get("created_at", ""), (child / CARD_FILE).stat().st_mtime_ns, child.name))
    return [v for *_, v in sorted(found)]


def _readable_card(folder: Path) -> dict | None:
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return card if isinstance(card, dict) else None


def resolve(ref: str | os.PathLike, store: str | os.PathLike | None = None) -> Path:
    """The version folder of ``name``, ``name@version`` (a unique prefix will do) or a folder path.

    Raises
    ------
    CurateError
        One line naming what was not found.
    """
    text = str(ref)
    path = Path(text)
    if (path / CARD_FILE).is_file():
        return path
    root = _store(store)
    name, _, version = text.partition("@")
    if not _NAME_RE.match(name):
        raise CurateError(f"no manifest {text!r}: not a version folder, and not NAME or NAME@VERSION")
    if not (root / name).is_dir():
        raise CurateError(f"no manifest named {name!r} in the store {root}")
    if not version:
        version = latest_version(name, root) or ""
        if not version:
            raise CurateError(f"manifest {name!r} in {root} has no {LATEST_FILE} version")
    matches = [v for v in versions(name, root) if v.startswith(version)]
    if version in matches:
        matches = [version]
    if not matches:
        raise CurateError(f"manifest {name!r} in {root} has no version {version!r}")
    if len(matches) > 1:
        raise CurateError(f"version {version!r} of {name!r} is ambiguous: {', '.join(matches)}")
    return root / name / matches[0]


def open_manifest(ref: str | os.PathLike, store: str | os.PathLike | None = None) -> Manifest:
    """The :class:`Manifest` that ``ref`` names (see :func:`resolve`)."""
    return read_manifest(resolve(ref, store))


def load_manifest(ref: str | os.PathLike, store: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load a manifest's rows, with its card in ``attrs["card"]``.

    Parameters
    ----------
    ref : str or path
        ``name`` (its latest version), ``name@version`` or the path of a version folder.
    store : path, optional
        The store (default ``$CURATE_MANIFEST_STORE`` or ``./manifests``).

    Examples
    --------
    >>> rows = curate.load_manifest("kl-balanced@3f2a9c0d1e2b4a5c")  # doctest: +SKIP
    >>> rows.attrs["card"]["counts"]["train"]  # doctest: +SKIP
    """
    return open_manifest(ref, store).to_frame()


def list_manifests(store: str | os.PathLike | None = None) -> list[dict]:
    """One entry per stored version: name, version, created_at, latest, samples, rows, counts per split."""
    root = _store(store)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
        latest = latest_version(folder.name, root)
        for version in versions(folder.name, root):
            card = _readable_card(folder / version) or {}
            out.append(
                {
                    "name": folder.name,
                    "version": version,
                    "created_at": card.get("created_at"),
                    "latest": version == latest,
                    "parent": card.get("parent"),
                    "samples": card.get("samples"),
                    "rows": card.get("rows"),
                    "splits": {s: sum(c["samples"] for c in by.values()) for s, by in card.get("counts", {}).items()},
                }
            )
    return out
