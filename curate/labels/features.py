"""Image features for the label-noise probe: built in, or the user's own embeddings.

The built-in features are computed from the decoder's normalized pixels with numpy
only (no network, no torch), at a fixed scale so any resolution gives the same
length. They are meant to see what a Kellgren-Lawrence grade is made of:

- a 24 x 24 thumbnail (global shape and density);
- intensity and vertical-gradient profiles of the central band (the joint space:
  narrowing shows as a thinner dark band, sclerosis as brighter bone next to it);
- gradient-orientation histograms on a 4 x 4 grid (bony outlines, osteophyte spurs);
- fine-detail energy on a 4 x 4 grid (texture, sharp margins);
- measured knee OA signs (joint-space width per compartment, sclerosis, marginal
  spurs; see :mod:`curate.labels.knee_signs`), which carry most of the grade signal
  on knee radiographs and are ignored by the probe elsewhere.

Features are cached by file content (sha256 of the bytes, crop, feature version).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curate._io import sha256_file
from curate.catalog import absolute_paths, parse_crop
from curate.errors import CurateError
from curate.imaging import DecodeFailure, decode_image
from curate.labels.knee_signs import KNEE_SIGN_NAMES, knee_sign_features
from curate.parallel import Executor, chunked, map_chunks

__all__ = ["FEATURE_VERSION", "SIGN_COLUMNS", "image_features", "compute_features", "read_embeddings"]

FEATURE_VERSION = 7  # 6: a knee margin cut by the image edge is read off the other margin; 7: bright spots at the margins
_WORK = 96
_THUMB = 24
_PROFILE = 48
_GRID = 4
_BINS = 8


def image_features(pixels: np.ndarray) -> np.ndarray:
    """Fixed-length float32 features of one normalized grayscale image (see the module doc)."""
    work = np.asarray(
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F").resize((_WORK, _WORK), Image.Resampling.BOX),
        dtype=np.float32,
    )
    work = (work - work.mean()) / (work.std() + 1e-3)  # exposure does not change a grade
    thumb = work.reshape(_THUMB, _WORK // _THUMB, _THUMB, _WORK // _THUMB).mean(axis=(1, 3)).ravel()

    band = work[:, _WORK * 3 // 10 : _WORK * 7 // 10]
    rows = band.mean(axis=1).reshape(_PROFILE, -1).mean(axis=1)
    halves = [
        work[:, _WORK // 5 : _WORK // 2].mean(axis=1).reshape(_PROFILE, -1).mean(axis=1),  # one compartment
        work[:, _WORK // 2 : _WORK * 4 // 5].mean(axis=1).reshape(_PROFILE, -1).mean(axis=1),  # the other
    ]
    profile = np.concatenate([rows, np.diff(rows), np.sort(halves[0]), np.sort(halves[1]), halves[0] - halves[1]])

    gy, gx = np.gradient(work)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # orientation, not direction
    bins = np.minimum((angle / np.pi * _BINS).astype(int), _BINS - 1)
    cell = _WORK // _GRID
    hog = np.zeros((_GRID, _GRID, _BINS), dtype=np.float32)
    for r in range(_GRID):
        for c in range(_GRID):
            sl = (slice(r * cell, (r + 1) * cell), slice(c * cell, (c + 1) * cell))
            hog[r, c] = np.bincount(bins[sl].ravel(), weights=magnitude[sl].ravel(), minlength=_BINS)
    hog /= np.linalg.norm(hog, axis=2, keepdims=True) + 1e-6

    lap = 4 * work[1:-1, 1:-1] - work[:-2, 1:-1] - work[2:, 1:-1] - work[1:-1, :-2] - work[1:-1, 2:]
    lap = np.pad(np.abs(lap), 1)
    detail = lap.reshape(_GRID, cell, _GRID, cell).mean(axis=(1, 3)).ravel()
    signs = knee_sign_features(pixels)
    return np.concatenate([thumb, profile, hog.ravel(), detail, signs]).astype(np.float32)


N_FEATURES = image_features(np.zeros((8, 8), dtype=np.float32)).size  # the length for any input
#: The columns of :func:`compute_features` that hold measured knee signs (they come last).
SIGN_COLUMNS: tuple[str, ...] = tuple(f"knee_{name}" for name in KNEE_SIGN_NAMES)
_COLUMNS = [f"image_{k}" for k in range(N_FEATURES - len(SIGN_COLUMNS))] + list(SIGN_COLUMNS)


def _features_chunk(items: Sequence[tuple[str, str | None]]) -> list[tuple[str | None, np.ndarray | None, str | None]]:
    out = []
    for path, crop in items:
        try:
            data = Path(path).read_bytes()
            image = decode_image(data, path, parse_crop(crop) if crop else None)
        except (DecodeFailure, OSError) as exc:
            out.append((None, None, str(exc)))
            continue
        out.append((hashlib.sha256(data).hexdigest(), image_features(image.pixels), None))
    return out


def _cache_file(cache_dir: Path) -> Path:
    return cache_dir / f"features-v{FEATURE_VERSION}.parquet"


def compute_features(
    catalog: pd.DataFrame,
    *,
    data_root: str | os.PathLike | None = None,
    executor: Executor | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
    content_hashes: pd.Series | None = None,
    progress=None,
) -> pd.DataFrame:
    """Built-in features of every catalog row, indexed by ``sample_id``.

    Columns ``image_<k>`` describe the image; :data:`SIGN_COLUMNS` are measured
    knee signs, which the ordinal probe may combine non-linearly.

    Rows whose file cannot be decoded are left out (the quality scan reports why).
    With ``cache_dir`` (default: the curate cache folder; False for none), features
    are kept by content hash and reused; ``content_hashes`` (sample_id -> file
    sha256, e.g. the scan's ``file_sha256``) saves hashing the files again.
    """
    from curate.quality.cache import default_cache_dir

    paths = absolute_paths(catalog, data_root)
    crops = catalog["crop"].tolist() if "crop" in catalog.columns else [None] * len(catalog)
    crops = [None if c is None or pd.isna(c) else str(c) for c in crops]
    cache: dict[str, np.ndarray] = {}
    cache_path = None
    if cache_dir is not False:
        cache_path = _cache_file(Path(default_cache_dir() if cache_dir in (None, True) else cache_dir))
        if cache_path.is_file():
            stored = pd.read_parquet(cache_path)
            cache = dict(zip(stored["key"], np.stack(stored["features"].to_numpy())))
    if content_hashes is not None:
        shas = catalog["sample_id"].astype(str).map(content_hashes.astype(object).to_dict()).tolist()
    else:
        shas = [sha256_file(p) if cache and Path(p).is_file() else None for p in paths]
    shas = [None if h is None or pd.isna(h) else h for h in shas]
    keys = [f"{h}:{c or ''}" if h else None for h, c in zip(shas, crops)]
    todo = [k for k, key in enumerate(keys) if key not in cache]
    advance = progress("computing features", len(todo)) if progress else (lambda n: None)
    found: dict[int, np.ndarray] = {k: cache[key] for k, key in enumerate(keys) if key in cache}
    new = {}
    done = 0
    for chunk in map_chunks(_features_chunk, chunked([(paths.iloc[k], crops[k]) for k in todo], 256), executor):
        for sha, vector, _error in chunk:
            k = todo[done]
            done += 1
            if vector is not None:
                found[k] = vector
                new[f"{sha}:{crops[k] or ''}"] = vector
        advance(len(chunk))
    if cache_path is not None and new:
        from curate._io import atomic_path

        merged = {**cache, **new}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_path) as tmp:
            pd.DataFrame({"key": list(merged), "features": [v.tolist() for v in merged.values()]}).to_parquet(tmp)
    order = sorted(found)
    matrix = np.stack([found[k] for k in order]) if order else np.empty((0, N_FEATURES), np.float32)
    return pd.DataFrame(matrix, index=pd.Index(catalog["sample_id"].iloc[order].astype(str), name="sample_id"), columns=_COLUMNS)


def read_embeddings(path: str | os.PathLike, catalog: pd.DataFrame, *, required: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a user's embeddings, keyed by ``sample_id`` or ``path``, aligned to the catalog.

    Accepts Parquet/CSV with a ``sample_id`` or ``path`` column and numeric columns
    (or one list column), or ``.npz`` with an array ``sample_id`` or ``path`` and an
    array ``embeddings``. Rows may come in any order; extra rows are ignored.

    Raises
    ------
    CurateError
        Naming the missing sample ids when ``required`` ones have no embedding.
    """
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"{path}: no such embeddings file")
    if path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        key = "sample_id" if "sample_id" in data else "path" if "path" in data else None
        if key is None or "embeddings" not in data:
            raise CurateError(f"{path}: an .npz of embeddings needs arrays 'sample_id' (or 'path') and 'embeddings'")
        table = pd.DataFrame(np.asarray(data["embeddings"], dtype=np.float32))
        table.insert(0, key, data[key].astype(str))
    else:
        from curate.tables import read_table

        table = read_table(path)
        key = "sample_id" if "sample_id" in table.columns else "path" if "path" in table.columns else None
        if key is None:
            raise CurateError(f"{path}: embeddings need a 'sample_id' or 'path' column")
    values = table.drop(columns=[key])
    if values.shape[1] == 1 and isinstance(values.iloc[0, 0], (list, np.ndarray)):
        values = pd.DataFrame(np.stack(values.iloc[:, 0].to_numpy()), index=values.index)
    try:
        values = values.apply(pd.to_numeric).astype(np.float32)
    except (ValueError, TypeError):
        raise CurateError(f"{path}: embedding columns must be numeric") from None
    if table[key].duplicated().any():
        raise CurateError(f"{path}: {key} repeats, e.g. {table.loc[table[key].duplicated(), key].iloc[0]!r}")
    ids = table[key].astype(str)
    if key == "path":
        to_id = dict(zip(catalog["path"].astype(str), catalog["sample_id"].astype(str)))
        ids = ids.map(to_id)
    values.index = pd.Index(ids, name="sample_id")
    values = values[values.index.notna()]
    wanted = [str(s) for s in (required if required is not None else catalog["sample_id"])]
    missing = [s for s in wanted if s not in values.index]
    if missing:
        raise CurateError(
            f"{path}: no embedding for {len(missing)} sample(s): {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    values.columns = [str(c) for c in values.columns]
    return values.loc[wanted]
