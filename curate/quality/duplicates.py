"""Exact and near duplicates of samples, grouped, with the member to keep.

Duplicates are about samples, not files: the two knees cropped from one bilateral
radiograph share a file hash but are different samples, and are never paired.

- exact: the same decoded pixels (which covers the same bytes);
- near: perceptual hashes within ``radius`` bits (candidates from a sub-quadratic
  index, probing shifted hashes), confirmed at pixel level by aligned high-pass
  similarity, so different knees of similar shape are not grouped. Candidates
  whose spectral fingerprints differ in many bits are dropped before that check:
  they cannot be copies (see :mod:`curate.quality.similarity`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curate.quality.near_duplicates import probe_pairs
from curate.parallel import Executor, chunked, map_chunks
from curate.quality.similarity import (
    FINGERPRINT_BITS,
    SIZE,
    fingerprint_distances,
    phase_correlation_peak,
    phase_spectra,
    signatures_of_files,
)

__all__ = ["DUPLICATE_COLUMNS", "KEEP_RULE_VERSION", "find_duplicates", "unpack_probes", "unpack_fingerprints"]

DUPLICATE_COLUMNS = (
    "dup_group",
    "dup_kind",
    "dup_keep",
    "dup_of",
    "dup_group_size",
    "dup_similarity",
    "dup_hash_distance",
    "dup_label_conflict",
    "dup_cross_split",
    "dup_keep_reason",
)
#: Bumped when the rule that picks the member to keep changes, so stored scans are not reused.
KEEP_RULE_VERSION = 3
#: Extensions of files a trainer's Pillow reader opens as they are (no DICOM, no other container).
_PLAIN_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _unpack_words(blobs: pd.Series) -> np.ndarray:
    """Rows of little-endian 64-bit words stored as bytes in the quality table, as uint64 (n, words)."""
    return np.vstack([np.frombuffer(b, dtype="<u8") for b in blobs]).astype(np.uint64)


def unpack_probes(blobs: pd.Series) -> np.ndarray:
    """The (n, 25) uint64 probe hashes stored as bytes in the quality table."""
    return _unpack_words(blobs)


def _candidate_pairs(table: pd.DataFrame, radius: int) -> pd.DataFrame:
    base = table["phash"].to_numpy(dtype=np.uint64)
    probes = unpack_probes(table["phash_probes"])
    pairs = probe_pairs(base, probes, radius)
    pairs = pairs[pairs["i"] != pairs["j"]]
    return pairs


def _same_file_other_part(table: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pairs that are two regions of one file (two knees of one radiograph): never duplicates."""
    sha = table["file_sha256"].to_numpy()
    crop = table["crop"].fillna("").to_numpy() if "crop" in table.columns else np.full(len(table), "")
    return (sha[i] == sha[j]) & (crop[i] != crop[j])


_BATCH = 1024
_CHUNK = 256
# Copies (re-encoded, resized, shifted, brightened, 16-bit) differ in at most 17% of
# their fingerprint bits, different knees in 30% or more (29.5% at the very least, of
# 106k demo candidate pairs; 44% on the real knee sample); 27% keeps a wide margin.
_MAX_FINGERPRINT_DISTANCE = round(0.27 * FINGERPRINT_BITS)
# The fingerprint was validated against confirmations at the default similarity
# (0.55): a much lower threshold is met by pairs it was not measured on, so those
# runs check every candidate at pixel level.
_FINGERPRINT_MIN_SIMILARITY = 0.5


def unpack_fingerprints(blobs: pd.Series) -> np.ndarray:
    """The (n, words) uint64 fingerprints stored as bytes in the quality table."""
    return _unpack_words(blobs)


def _plausible(table: pd.DataFrame, pairs: pd.DataFrame, similarity: float) -> pd.DataFrame:
    """The candidate pairs whose fingerprints are close enough for them to be copies."""
    if similarity < _FINGERPRINT_MIN_SIMILARITY or pairs.empty:
        return pairs
    fingerprints = unpack_fingerprints(table["detail_fingerprint"])
    distance = fingerprint_distances(fingerprints, pairs["i"].to_numpy(), pairs["j"].to_numpy())
    return pairs[distance <= _MAX_FINGERPRINT_DISTANCE]


def _confirm(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    paths: pd.Series,
    threshold: float,
    executor: Executor | None,
    progress: Callable[[str, int], Callable[[int], None]] | None,
) -> pd.DataFrame:
    """Keep the candidate pairs whose detail correlates at least ``threshold``."""
    noop = lambda n: None  # noqa: E731
    i_all, j_all = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    rows = np.unique(np.concatenate([i_all, j_all]))
    crops = table["crop"].tolist() if "crop" in table.columns else [None] * len(table)
    path_list = paths.tolist()
    items = [(path_list[k], None if crops[k] is None or pd.isna(crops[k]) else crops[k]) for k in rows]
    # One decode per involved image, in the workers; 4 KB each, so memory stays small.
    advance = progress("reading near-duplicate candidates", len(items)) if progress else noop
    signatures = np.empty((len(items), SIZE, SIZE), dtype=np.int8)
    done = 0
    for chunk in map_chunks(signatures_of_files, chunked(items, _CHUNK), executor):
        signatures[done : done + len(chunk)] = chunk
        done += len(chunk)
        advance(len(chunk))
    where = np.full(len(table), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))

    advance = progress("confirming near duplicates", len(pairs)) if progress else noop
    scores = np.zeros(len(pairs), dtype=np.float32)
    for lo in range(0, len(pairs), _BATCH):
        a, b = where[i_all[lo : lo + _BATCH]], where[j_all[lo : lo + _BATCH]]
        needed, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        spectra = phase_spectra(signatures[needed])
        scores[lo : lo + len(a)] = phase_correlation_peak(spectra[inverse[: len(a)]], spectra[inverse[len(a) :]])
        advance(len(a))
    pairs = pairs.assign(similarity=scores)
    return pairs[pairs["similarity"] >= threshold]


def _distinct_per_component(values: pd.Series, component: np.ndarray) -> np.ndarray:
    """How many distinct known values (compared as text) each connected component holds."""
    text = values.astype("string")
    known = text.notna().to_numpy()
    distinct = pd.DataFrame({"c": component[known], "v": text[known].to_numpy()}).drop_duplicates()
    return np.bincount(distinct["c"].to_numpy(dtype=np.intp), minlength=int(component.max()) + 1)


def find_duplicates(
    table: pd.DataFrame,
    paths: pd.Series,
    *,
    radius: int = 8,
    similarity: float = 0.6,
    quality_rank: pd.Series | None = None,
    eligible: pd.Series | None = None,
    executor: Executor | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> pd.DataFrame:
    """Group exact and near duplicates.

    Parameters
    ----------
    table : DataFrame
        One row per sample with ``sample_id``, ``readable``, ``pixel_hash``,
        ``file_sha256``, ``phash``, ``phash_probes``, ``detail_fingerprint``, ``bits_stored``, ``width``,
        ``height``, ``sharpness`` and, when known, ``crop``, ``label`` and
        ``official_split``.
    paths : Series
        Absolute file path of every row (same index as ``table``).
    radius : int
        Hamming radius of the hash candidates.
    similarity : float
        Aligned high-pass correlation needed to confirm a near duplicate.
    quality_rank : Series, optional
        Number of quality flags per row: the member to keep has the fewest.
    executor : Executor, optional
        Where candidate images are decoded (default: local processes).
    eligible : Series of bool, optional
        Rows that take part (default: the readable ones). Blank images are left
        out by the scan: every blank image "duplicates" every other.
    progress : callable, optional
        ``progress(description, total)`` returning ``advance(n)``, for the pixel checks.

    Returns
    -------
    DataFrame
        :data:`DUPLICATE_COLUMNS` for every row (empty group columns for samples
        without duplicates), same index as ``table``.
    """
    out = pd.DataFrame(index=table.index)
    out["dup_group"] = pd.Series(pd.NA, index=table.index, dtype="string")
    out["dup_kind"] = pd.Series(pd.NA, index=table.index, dtype="string")
    out["dup_keep"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    out["dup_of"] = pd.Series(pd.NA, index=table.index, dtype="string")
    out["dup_group_size"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    out["dup_similarity"] = pd.Series(np.nan, index=table.index, dtype="float32")
    out["dup_hash_distance"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    out["dup_label_conflict"] = False
    out["dup_cross_split"] = False
    out["dup_keep_reason"] = pd.Series(pd.NA, index=table.index, dtype="string")

    take_part = table["readable"].astype(bool)
    if eligible is not None:
        take_part &= eligible.astype(bool)
    readable = table[take_part]
    if len(readable) < 2:
        return out
    pos = readable.reset_index(drop=True)
    n = len(pos)

    # exact: same decoded pixels; every member joined to the first of its hash
    codes = pd.factorize(pos["pixel_hash"])[0]
    anchor = np.unique(codes, return_index=True)[1][codes]  # the first row of each row's pixel hash
    is_copy = anchor != np.arange(n)
    exact_i, exact_j = anchor[is_copy], np.flatnonzero(is_copy)
    exact_keep = ~_same_file_other_part(pos, exact_i, exact_j)
    exact_i, exact_j = exact_i[exact_keep], exact_j[exact_keep]

    # near: hash candidates between different pixel contents (one row per content, so a
    # content copied many times costs one search), confirmed at pixel level
    ph = pos["pixel_hash"].to_numpy()
    reps = np.flatnonzero(~is_copy)
    candidates = _candidate_pairs(pos.iloc[reps], radius)
    candidates["i"], candidates["j"] = reps[candidates["i"].to_numpy()], reps[candidates["j"].to_numpy()]
    i, j = candidates["i"].to_numpy(), candidates["j"].to_numpy()
    candidates = candidates[~_same_file_other_part(pos, i, j)]
    candidates = _plausible(pos, candidates, similarity)
    confirmed = _confirm(pos, candidates, paths.loc[readable.index], similarity, executor, progress)

    rows = np.concatenate([exact_i, confirmed["i"].to_numpy()])
    cols = np.concatenate([exact_j, confirmed["j"].to_numpy()])
    if len(rows) == 0:
        return out
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    in_group = sizes[component] > 1

    # each member's closest confirmed partner: its similarity and hash distance (the first pair on ties)
    sim = np.full(n, np.nan, dtype=np.float32)
    distance = np.full(n, -1, dtype=np.int64)
    scored = confirmed[confirmed["similarity"].notna()]  # a pair without a score names no partner
    if len(scored):
        member = np.column_stack([scored["i"], scored["j"]]).ravel()  # a pair's (a, b) and (b, a) in turn
        score = np.repeat(scored["similarity"].to_numpy(dtype=np.float32), 2)
        pair_distance = np.repeat(scored["distance"].to_numpy(dtype=np.int64), 2)
        first_best = np.lexsort((np.arange(member.size), -score, member))
        first_best = first_best[np.r_[True, member[first_best][1:] != member[first_best][:-1]]]
        sim[member[first_best]] = score[first_best]
        distance[member[first_best]] = pair_distance[first_best]

    rank = (quality_rank.loc[readable.index].to_numpy() if quality_rank is not None else np.zeros(n))
    labels = pos["label"] if "label" in pos.columns else pd.Series(pd.NA, index=pos.index)
    order = pd.DataFrame(
        {
            "component": component,
            "flags": rank,
            "label": ~_carries_agreed_label(labels, component, in_group),
            "plain": ~_read_as_is(pos, paths.loc[readable.index]),
            "pixels": -(pos["width"].astype(float) * pos["height"].astype(float)).to_numpy(),
            "bits": -pos["bits_stored"].astype(float).to_numpy(),
            "sharpness": -pos["sharpness"].astype(float).to_numpy(),
            "sample_id": pos["sample_id"].astype(str).to_numpy(),
        }
    )[in_group]
    ranked = order.sort_values(list(_KEEP_ORDER))
    best = ranked.groupby("component").head(1)
    keeper = np.full(sizes.size, -1, dtype=np.int64)
    keeper[best["component"].to_numpy()] = best.index.to_numpy()
    reason_of = _keep_reasons(ranked, labels, pos)
    group_id = pos.loc[in_group].groupby(component[in_group])["sample_id"].min()

    splits = pos["official_split"] if "official_split" in pos.columns else pd.Series(pd.NA, index=pos.index)
    n_labels = _distinct_per_component(labels, component)
    n_splits = _distinct_per_component(splits, component)

    members = np.flatnonzero(in_group)
    group = component[members]
    kept = keeper[group]
    exact = ph[members] == ph[kept]
    hash_distance = pd.array(np.where(exact, 0, distance[members]), dtype="Int64")
    hash_distance[~exact & (distance[members] < 0)] = pd.NA  # a copy of a confirmed member, no pair of its own
    values = {
        "dup_group": group_id.reindex(group).to_numpy(),
        "dup_keep": members == kept,
        "dup_of": pos["sample_id"].to_numpy()[kept],
        "dup_group_size": sizes[group],
        "dup_kind": np.where(exact, "exact", "near"),
        "dup_similarity": np.where(exact, np.float32(1.0), sim[members]),
        "dup_hash_distance": hash_distance,
        "dup_label_conflict": n_labels[group] > 1,
        "dup_cross_split": n_splits[group] > 1,
        "dup_keep_reason": pd.Series(group).map(reason_of).to_numpy(),
    }
    rows_out = np.flatnonzero(take_part.to_numpy())[members]  # positions in ``out``
    for column, column_values in values.items():
        out.iloc[rows_out, out.columns.get_loc(column)] = column_values
    return out


#: The member kept is the first in this order: fewest quality flags, then the label most
#: members agree on, then a file trainers read as it is (8-bit, no DICOM, no crop: bit depth
#: alone never wins over a readable original), then size, bit depth, sharpness, sample id.
_KEEP_ORDER = ("component", "flags", "label", "plain", "pixels", "bits", "sharpness", "sample_id")


def _carries_agreed_label(labels: pd.Series, component: np.ndarray, in_group: np.ndarray) -> np.ndarray:
    """True for members whose label more than half their group shares (all labelled members of groups without one).

    A member without a label never carries the agreed one: a labelled copy is kept over it.
    """
    frame = pd.DataFrame({"c": component, "label": labels.astype("string").to_numpy()})[in_group]
    size = frame.groupby("c").size()
    counts = frame.dropna().groupby(["c", "label"]).size()
    agreed = counts[counts.to_numpy() * 2 > size.reindex(counts.index.get_level_values("c")).to_numpy()]
    agreed_label = pd.Series(agreed.index.get_level_values("label"), index=agreed.index.get_level_values("c"))
    out = np.ones(len(component), dtype=bool)
    wanted = agreed_label.reindex(frame["c"]).to_numpy()
    has_majority = ~pd.isna(wanted)
    rows = np.flatnonzero(in_group)
    out[rows[has_majority]] = frame["label"].to_numpy()[has_majority] == wanted[has_majority]
    out[rows[frame["label"].isna().to_numpy()]] = False
    return out


def _read_as_is(pos: pd.DataFrame, paths: pd.Series) -> np.ndarray:
    """True for members a trainer's Pillow ``convert("RGB")`` shows correctly: 8-bit image files, no crop."""
    suffix = paths.astype(str).str.rsplit(".", n=1).str[-1].str.lower().radd(".").to_numpy()
    plain = np.isin(suffix, _PLAIN_EXTENSIONS) & (pos["bits_stored"].to_numpy() == 8)
    if "crop" in pos.columns:
        crop = pos["crop"]
        plain &= crop.isna().to_numpy() | (crop.astype("string").str.strip() == "").fillna(True).to_numpy()
    return plain


def _keep_reasons(ranked: pd.DataFrame, labels: pd.Series, pos: pd.DataFrame) -> dict[int, str]:
    """Group -> why its first member was kept: each criterion on which it beat another member, in rule order."""
    criteria = list(_KEEP_ORDER[1:])
    values = ranked[criteria].to_numpy(dtype=object)
    component = ranked["component"].to_numpy()
    starts = np.flatnonzero(np.r_[True, component[1:] != component[:-1]])
    ends = np.r_[starts[1:], len(component)]
    reasons = {}
    for start, end in zip(starts, ends):
        kept_at = ranked.index[start]
        decided = set()
        for other in values[start + 1 : end]:
            differs = [k for k, (a, b) in enumerate(zip(values[start], other)) if a != b]
            decided.add(differs[0] if differs else len(criteria) - 1)
        reasons[int(component[start])] = "; ".join(_why(criteria[k], kept_at, labels, pos, ranked) for k in sorted(decided))
    return reasons


def _why(criterion: str, kept_at: int, labels: pd.Series, pos: pd.DataFrame, ranked: pd.DataFrame) -> str:
    if criterion == "flags":
        return f"fewest quality flags ({int(ranked.at[kept_at, 'flags'])})"
    if criterion == "label":
        return f"label {labels.loc[kept_at]} shared by most members"
    if criterion == "plain":
        return "an 8-bit image file trainers read as it is"
    if criterion == "pixels":
        return f"most pixels ({int(pos.at[kept_at, 'width'])}x{int(pos.at[kept_at, 'height'])})"
    if criterion == "bits":
        return f"highest bit depth ({int(pos.at[kept_at, 'bits_stored'])})"
    if criterion == "sharpness":
        return "sharpest"
    return "members alike: first by sample id"
