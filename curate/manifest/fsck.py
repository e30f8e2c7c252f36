"""Check a manifest store, and repair what can be repaired without guessing.

What a crash, a kill or a hand edit can leave in a store, and what happens to it:

==========================  ==================================================  ==========
problem                     found                                               repaired
==========================  ==================================================  ==========
``stale_temporary``         a killed run's ``.NAME.HOST-PID.*.tmp`` (any level)  removed
``latest_missing``          versions but no ``LATEST``                          newest
``latest_dangling``         ``LATEST`` names no stored version                  newest
``incomplete_version``      a version folder without ``card.json``              no
``unreadable_version``      a card or rows that cannot be read                  no
``rows_mismatch``           rows that are not the ones the card describes       no
``missing_parent``          a card naming a parent that is not stored           no
==========================  ==================================================  ==========

Versions are never modified, so anything wrong inside one is reported, not fixed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from curate._io import remove_stale_temporaries, stale_temporaries
from curate.errors import CurateError
from curate.manifest.store import (
    CARD_FILE,
    LATEST_FILE,
    _NAME_RE,
    _set_latest,
    _store,
    latest_version,
    read_manifest,
    versions,
)
from curate.manifest.verify import rows_mismatch

__all__ = ["check_store"]


def check_store(store: str | os.PathLike | None = None, *, repair: bool = False) -> list[dict]:
    """Every problem of the store, one dict each: ``name``, ``problem``, ``detail``, ``repaired``.

    Parameters
    ----------
    store : path, optional
        The manifest store (default :func:`curate.manifest.default_store`).
    repair : bool
        Remove killed runs' temporaries and point a missing or dangling ``LATEST``
        at the newest stored version.
    """
    root = _store(store)
    if not root.is_dir():
        raise CurateError(f"no manifest store at {root}")
    problems: list[dict] = []

    def found(name: str, problem: str, detail: str, repaired: bool = False) -> None:
        problems.append({"name": name, "problem": problem, "detail": detail, "repaired": repaired})

    _temporaries(root, "", repair, found)
    stored = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME_RE.match(p.name)):
        name = folder.name
        _temporaries(folder, name, repair, found)
        ids = versions(name, root)
        stored[name] = set(ids)
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not (child / CARD_FILE).is_file():
                found(name, "incomplete_version", f"{child.name}: no {CARD_FILE}")
                continue
            _temporaries(child, name, repair, found)
            _check_version(child, name, found)
        _check_latest(root, name, ids, repair, found)
    for name, ids in stored.items():
        for version in ids:
            parent = _card(root / name / version).get("parent")
            if parent:
                parent_name, _, parent_version = str(parent).partition("@")
                if parent_version not in stored.get(parent_name, set()):
                    found(name, "missing_parent", f"{name}@{version} names parent {parent}, which is not stored")
    return problems


def _temporaries(folder: Path, name: str, repair: bool, found) -> None:
    leftovers = remove_stale_temporaries(folder) if repair else stale_temporaries(folder)
    for entry in leftovers:
        found(name, "stale_temporary", str(entry), repaired=repair)


def _card(folder: Path) -> dict:
    try:
        return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _check_version(folder: Path, name: str, found) -> None:
    try:
        manifest = read_manifest(folder)
    except CurateError as exc:
        found(name, "unreadable_version", str(exc))
        return
    mismatch = rows_mismatch(manifest)
    if mismatch:
        found(name, "rows_mismatch", f"{folder.name}: {mismatch}")


def _check_latest(root: Path, name: str, ids: list[str], repair: bool, found) -> None:
    if not ids:
        return
    latest = latest_version(name, root)
    if latest in ids:
        return
    problem = "latest_missing" if latest is None else "latest_dangling"
    detail = f"{LATEST_FILE} {'is missing' if latest is None else f'names {latest}, which is not stored'}"
    if repair:
        _set_latest(root, name, ids[-1])
        detail += f"; now {ids[-1]} (the newest version)"
    found(name, problem, detail, repaired=repair)
