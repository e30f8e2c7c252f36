"""A cache of per-image measures keyed by file content, so a re-scan only decodes what changed.

Entries are keyed by (sha256 of the file, crop, scan version): renaming a folder
does not invalidate them, editing a file does. A stat index (path, size, mtime)
-> sha256 lets an unchanged file skip even the read. Each scan appends one
Parquet shard; shards are merged when they pile up.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd

from curate._io import atomic_path
from curate.quality.measures import SCAN_VERSION

__all__ = ["MeasureCache", "default_cache_dir"]

_MAX_SHARDS = 16


def default_cache_dir() -> Path:
    """``$CURATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/curate``, else ``~/.cache/curate``."""
    if os.environ.get("CURATE_CACHE_DIR"):
        return Path(os.environ["CURATE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "curate"


def content_key(sha256: str, crop: str | None) -> str:
    return f"{sha256}:{crop or ''}"


class MeasureCache:
    """Measures of files already scanned, loaded from ``directory`` (created on first save)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory) / f"scan-v{SCAN_VERSION}"
        self.measures = self._load("measures", "key")
        stat = self._load("stat", None)
        self.stat = (
            {(p, int(s), int(m)): h for p, s, m, h in zip(stat["path"], stat["size"], stat["mtime_ns"], stat["sha256"])}
            if len(stat)
            else {}
        )
        self._new_measures: list[pd.DataFrame] = []
        self._new_stat: list[tuple[str, int, int, str]] = []

    def _load(self, kind: str, index: str | None) -> pd.DataFrame:
        shards = sorted(self.directory.glob(f"{kind}-*.parquet")) if self.directory.is_dir() else []
        frames = []
        for shard in shards:
            try:
                frames.append(pd.read_parquet(shard))
            except (OSError, ValueError):  # a damaged shard is only lost work
                continue
        if not frames:
            return pd.DataFrame()
        frame = pd.concat(frames, ignore_index=True)
        if index is not None:
            frame = frame.drop_duplicates(index, keep="last").set_index(index)
        return frame

    def __len__(self) -> int:
        return len(self.measures)

    def sha_for(self, path: str, size: int, mtime_ns: int) -> str | None:
        return self.stat.get((path, size, mtime_ns))

    def get(self, keys: list[str]) -> pd.DataFrame:
        """Cached measure rows for ``keys`` that are present (indexed by key)."""
        if self.measures.empty:
            return pd.DataFrame()
        present = [k for k in dict.fromkeys(keys) if k in self.measures.index]  # duplicate files share a key
        return self.measures.loc[present]

    def add(self, rows: pd.DataFrame, stats: list[tuple[str, int, int, str]]) -> None:
        """Remember new measure rows (with a ``key`` column) and stat entries; written by :meth:`save`."""
        if len(rows):
            self._new_measures.append(rows)
        self._new_stat.extend(stats)

    def save(self) -> None:
        if not self._new_measures and not self._new_stat:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        if self._new_measures:
            with atomic_path(self.directory / f"measures-{tag}.parquet") as tmp:
                pd.concat(self._new_measures, ignore_index=True).to_parquet(tmp, index=False)
        if self._new_stat:
            frame = pd.DataFrame(self._new_stat, columns=["path", "size", "mtime_ns", "sha256"])
            with atomic_path(self.directory / f"stat-{tag}.parquet") as tmp:
                frame.to_parquet(tmp, index=False)
        self._new_measures, self._new_stat = [], []
        self._compact()

    def _compact(self) -> None:
        for kind, key in (("measures", "key"), ("stat", None)):
            shards = sorted(self.directory.glob(f"{kind}-*.parquet"))
            if len(shards) <= _MAX_SHARDS:
                continue
            merged = self._load(kind, key)
            merged = merged.reset_index() if key else merged.drop_duplicates(["path", "size", "mtime_ns"], keep="last")
            with atomic_path(self.directory / f"{kind}-{uuid.uuid4().hex[:12]}.parquet") as tmp:
                merged.to_parquet(tmp, index=False)
            for shard in shards:
                shard.unlink(missing_ok=True)
