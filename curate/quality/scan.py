"""The quality scan: measure every image once, then flag, group duplicates and find leakage.

``scan(catalog)`` returns the quality table: one row per catalog sample with the
measures, a boolean ``flag_<name>`` per rule, ``flags`` and human ``reasons``,
and the duplicate-group columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from stat import S_ISREG

import numpy as np
import pandas as pd

from curate.catalog import absolute_paths, parse_crop
from curate.errors import CurateError
from curate.imaging import DecodeReason
from curate.parallel import Executor, chunked, map_chunks
from curate.quality.cache import MeasureCache, content_key, default_cache_dir
from curate.quality.checks import dicom_flags, duplicate_flags, leakage_flags
from curate.quality.duplicates import find_duplicates
from curate.quality.measures import MEASURE_COLUMNS, SCAN_VERSION, compile_kernels, measure_files
from curate.quality.rules import FlagSet, Thresholds, image_flags

__all__ = ["scan", "Progress", "INFORMATIONAL_FLAGS", "NoFileFound"]

#: ``progress(description, total)`` returns ``advance(n)``; the CLI draws a bar with it.
Progress = Callable[[str, int], Callable[[int], None]]

#: Flags that describe an image without saying something is wrong with it.
INFORMATIONAL_FLAGS = frozenset({"monochrome1"})

_CHUNK = 256
# Measuring chunks are smaller: the last chunks finish closer together (less time with
# one core idle at the end), and the per-chunk batched measures are already amortized.
_MEASURE_CHUNK = 64
_IMAGE_FLAGS_FOR_RANK = ("unreadable", "dark", "overexposed", "blank", "low_contrast", "blurred", "low_information")


class NoFileFound(CurateError):
    """None of a catalog's files is where its data root says: the root is wrong, not every file missing.

    Attributes ``root``, ``count`` and ``first`` (a catalog path) let a caller name the cause.
    """

    def __init__(self, root: str | os.PathLike | None, count: int, first: str):
        self.root, self.count, self.first = root, count, first
        super().__init__(
            f"none of the catalog's {count:,} files exists under its data root {root} (first: {first}); "
            "is the data root right? (pass data_root, or --data-root)"
        )


def _measure_chunk(items: Sequence[tuple[str, str | None]]) -> list[dict]:
    return measure_files([(path, parse_crop(crop) if crop else None) for path, crop in items])


def _hash_chunk(paths: Sequence[str]) -> list[str | None]:
    from curate._io import sha256_file

    out = []
    for path in paths:
        try:
            out.append(sha256_file(path))
        except OSError:
            out.append(None)
    return out


def _stat(path: str) -> tuple[int, int] | None:
    """Size and mtime of a regular file; None for anything else, which is then never hashed.

    Hashing a named pipe would wait for a writer forever; the measuring reports it.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if S_ISREG(st.st_mode) else None


def _noop_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def measure_catalog(
    catalog: pd.DataFrame,
    paths: pd.Series,
    *,
    executor: Executor,
    cache: MeasureCache | None,
    progress: Progress,
) -> tuple[pd.DataFrame, dict]:
    """Measure every row, reusing cached measures; returns the measures and cache statistics."""
    crops = [None if pd.isna(c) else str(c) for c in catalog["crop"]] if "crop" in catalog.columns else [None] * len(catalog)
    path_list = paths.tolist()
    parts: list[pd.DataFrame] = []
    todo = np.arange(len(catalog))
    stat = [_stat(p) for p in path_list] if cache is not None else []
    if cache is not None and len(cache):
        shas = [cache.sha_for(p, *s) if s else None for p, s in zip(path_list, stat)]
        missing = [k for k, h in enumerate(shas) if h is None and stat[k] is not None]
        if missing:  # content may be known under another path (a renamed folder)
            hashed = [h for chunk in map_chunks(_hash_chunk, chunked([path_list[k] for k in missing], _CHUNK), executor) for h in chunk]
            for k, h in zip(missing, hashed):
                shas[k] = h
        keys = [content_key(h, crop) if h else "" for h, crop in zip(shas, crops)]
        found = cache.get([k for k in keys if k])
        where = found.index.get_indexer(keys) if len(found) else np.full(len(keys), -1)
        hit = where >= 0
        parts.append(found.iloc[where[hit]].set_axis(np.flatnonzero(hit)))
        todo = np.flatnonzero(~hit)
    if len(todo):
        compile_kernels()  # before the workers fork: they inherit the compiled code
    advance = progress("measuring", len(todo))
    items = [(path_list[k], crops[k]) for k in todo]
    rows: list[dict] = []
    for chunk_rows in map_chunks(_measure_chunk, chunked(items, _MEASURE_CHUNK), executor):
        rows.extend(chunk_rows)
        advance(len(chunk_rows))
    new = _rows_frame(rows, todo)
    parts.append(new)
    measures = pd.concat([part[list(MEASURE_COLUMNS)] for part in parts if len(part)] or [new]).sort_index()
    measures.index = catalog.index
    if cache is not None:
        measured = new[new["file_sha256"].notna()]
        positions = measured.index.to_numpy()
        new_keys = [content_key(h, crops[k]) for k, h in zip(positions, measured["file_sha256"])]
        stat_rows = [(path_list[k], *stat[k], h) for k, h in zip(positions, measured["file_sha256"]) if stat[k] is not None]
        cache.add(measured.assign(key=new_keys), stat_rows)
        cache.save()
    return _typed(measures), {"cached": len(catalog) - len(todo), "measured": len(todo)}


def _rows_frame(rows: list[dict], index: np.ndarray) -> pd.DataFrame:
    """Measure rows (dicts) as a frame with :data:`MEASURE_COLUMNS`, on ``index``."""
    # phash is built apart: a uint64 column with gaps would otherwise pass through float64 and lose bits
    phash = pd.array([r.get("phash") for r in rows], dtype="UInt64")
    columns = [c for c in MEASURE_COLUMNS if c != "phash"]
    frame = pd.DataFrame.from_records(rows, columns=columns, index=index) if rows else pd.DataFrame(columns=columns, index=index)
    for column in ("phash_probes", "detail_fingerprint"):  # bytes: missing is None, as in the cache
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame.insert(MEASURE_COLUMNS.index("phash"), "phash", phash)
    return frame


def _typed(measures: pd.DataFrame) -> pd.DataFrame:
    measures["readable"] = measures["readable"].fillna(False).astype(bool)
    for column in ("error", "error_detail", "file_sha256", "photometric_decoded", "color", "pixel_hash"):
        measures[column] = measures[column].astype("string")
    for column in ("width", "height", "bits_stored", "file_bytes"):
        measures[column] = pd.to_numeric(measures[column]).astype("Int64")
    return measures


def scan(
    catalog: pd.DataFrame,
    *,
    data_root: str | os.PathLike | None = None,
    executor: Executor | None = None,
    thresholds: Thresholds | dict | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Scan the images of a catalog.

    Parameters
    ----------
    catalog : DataFrame
        A validated catalog (its ``attrs["data_root"]`` is used unless ``data_root`` is given).
    data_root : path, optional
        Folder the catalog's paths are relative to.
    executor : Executor, optional
        Local processes (default, all cores) or Dask.
    thresholds : Thresholds or dict, optional
        Overrides of the rules' thresholds.
    cache_dir : path, False or None
        Where measures are cached by content hash (None: the default cache folder;
        False: no cache).
    progress : callable, optional
        ``progress(description, total)`` returning ``advance(n)``.

    Returns
    -------
    DataFrame
        The quality table, one row per catalog row, in catalog order;
        ``attrs`` holds the scan version, thresholds and cache statistics.

    Raises
    ------
    NoFileFound
        When none of the catalog's files exists: a table of nothing but
        ``missing_file`` rows would hide a wrong data root.
    """
    t = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_dict(thresholds)
    executor = executor or Executor()
    progress = progress or _noop_progress
    catalog = catalog.reset_index(drop=True)
    paths = absolute_paths(catalog, data_root)
    cache = None
    if cache_dir is not False:
        cache = MeasureCache(default_cache_dir() if cache_dir in (None, True) else Path(cache_dir))
    measures, cache_stats = measure_catalog(catalog, paths, executor=executor, cache=cache, progress=progress)
    missing = measures["error"].eq(DecodeReason.MISSING_FILE.value).fillna(False)  # a readable row has no error
    if len(catalog) and missing.all():
        root = data_root if data_root is not None else catalog.attrs.get("data_root")
        raise NoFileFound(root, len(catalog), str(catalog["path"].iloc[0]))

    flags = FlagSet(catalog.index)
    image_flags(measures, t, flags)
    columns = flags.columns
    rank = sum(columns[name].astype(int) for name in _IMAGE_FLAGS_FOR_RANK if name in columns)

    context = catalog[[c for c in ("sample_id", "crop", "label", "official_split") if c in catalog.columns]]
    table = pd.concat([measures, context], axis=1)
    # The member of a duplicate group to keep is the one with the fewest image problems.
    dups = find_duplicates(
        table,
        paths,
        radius=t.near_duplicate_radius,
        similarity=t.near_duplicate_similarity,
        quality_rank=pd.Series(np.asarray(rank), index=table.index),
        eligible=~columns.get("blank", pd.Series(False, index=table.index)),
        executor=executor,
        progress=progress,
    )
    duplicate_flags(dups, catalog, flags)
    dicom_flags(catalog, t, flags)
    leakage_flags(catalog, flags)

    front = catalog[["sample_id", "path"]]
    quality = pd.concat([front, measures, dups, flags.to_frame()], axis=1)
    quality.attrs.update(
        scan_version=SCAN_VERSION,
        thresholds=t.to_dict(),
        cached=cache_stats["cached"],
        measured=cache_stats["measured"],
    )
    return quality

