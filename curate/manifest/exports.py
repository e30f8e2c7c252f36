"""The export log of a stored manifest version: ``NAME/VERSION/exports.jsonl``.

A version's rows and card never change; what was later done with them does. Each
export appends one line (format, output, preprocessing and its ``pixels_id``,
images linked and rendered, time), so ``curate manifest show`` can tell two
experiments that fed different pixels from the same manifest apart.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path

__all__ = ["EXPORT_LOG", "log_export", "read_export_log", "describe_export"]

EXPORT_LOG = "exports.jsonl"
_LOGGED = ("format", "output", "pixels_id", "preprocessing", "images", "link", "curate_version")


def log_export(manifest, record: dict) -> Path | None:
    """Append ``record`` to the version's export log; None when the manifest is not in a store.

    A store that cannot be written (read-only shared storage) costs a warning, not the export.
    """
    folder = getattr(manifest, "folder", None)
    if folder is None:
        return None
    entry = {k: record[k] for k in _LOGGED if k in record}
    if getattr(manifest, "card", {}).get("deid") and "output" in entry:
        entry["output"] = "(path withheld: de-identified)"  # a de-identified version names no path
    entry["exported_at"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    path = Path(folder) / EXPORT_LOG
    try:
        # one write() of one line with O_APPEND: concurrent exports never interleave within a line
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        warnings.warn(f"{path}: export not logged ({exc.strerror})", stacklevel=2)
        return None
    return path


def read_export_log(folder: str | os.PathLike) -> list[dict]:
    """The exports logged for the version in ``folder``, oldest first (lines that do not parse are skipped)."""
    path = Path(folder) / EXPORT_LOG
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the others stand
    return entries


def describe_export(entry: dict) -> str:
    """One line for people: when, which format, where, and what was done to pixels."""
    pre = entry.get("preprocessing") or {}
    steps = []
    if pre.get("size"):
        steps.append(f"size {pre['size']}, fit {pre.get('fit')}")
    if pre.get("window") == "percentile":
        steps.append("percentile window " + ",".join(str(p) for p in pre.get("percentiles", [])))
    if pre.get("clahe"):
        steps.append("clahe")
    if pre.get("bit_depth", 8) != 8:
        steps.append(f"{pre['bit_depth']}-bit")
    if pre.get("image_format", "png") != "png":
        steps.append(pre["image_format"])
    images = entry.get("images") or {}
    return (
        f"{entry.get('exported_at', '?')} {entry.get('format')} -> {entry.get('output')}; "
        f"pixels {entry.get('pixels_id')} ({', '.join(steps) or 'as decoded'}); "
        f"{images.get('linked', 0):,} linked, {images.get('rendered', 0):,} rendered"
    )
