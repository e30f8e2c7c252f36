"""Near-duplicate candidates: pairs of images whose 64-bit perceptual hashes are close.

Two images are candidates when the Hamming distance between their hashes is at
most a radius (a few bits). Comparing every pair is quadratic, so
:func:`hamming_pairs` uses multi-index hashing (Norouzi, Punjani and Fleet,
"Fast exact search in Hamming space with multi-index hashing", 2014):

* the 64 bits are split into ``m`` disjoint substrings. By the pigeonhole
  principle, two hashes within distance ``r = m * q + a`` (``0 <= a < m``) agree
  within ``q`` bits on one of the first ``a + 1`` substrings or within ``q - 1``
  bits on one of the others;
* for every substring a direct-address table (counts and offsets over ``2**b``
  buckets) lists the hashes holding each value, and every hash probes the buckets
  within that many bits of its own;
* every candidate is verified on all 64 bits, so the result is exactly what brute
  force returns; a pair found through several substrings is kept only by the
  first that can find it, so nothing needs deduplicating afterwards.

The number of substrings and bucket bits come from a small cost model, so the
search adapts to the radius and to the number of distinct hashes (and falls back
to blockwise brute force where that is cheaper, e.g. for a few hundred hashes).
Identical hashes are collapsed before the search and expanded afterwards, so
thousands of copies of one hash cost only their (quadratic) output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

__all__ = ["hamming_pairs", "brute_force_pairs", "group_pairs", "cross_pairs", "probe_pairs"]

HASH_BITS = 64
#: Default number of candidate pairs (and bucket probes) held in memory at once.
DEFAULT_CHUNK_SIZE = 1 << 17
#: Widest bucket key: 2**22 buckets keep one table (runs and occupancy) near 40 MB.
_MAX_KEY_BITS = 22
#: More substrings than this never pays off for 64-bit hashes.
_MAX_SUBSTRINGS = 16

# Rough costs in nanoseconds, measured with numpy 2 on one core; only their ratios
# matter, to choose between index layouts and brute force.
_NS_BUCKET = 0.5  # one table bucket (its occupancy byte; runs are written for occupied buckets only)
_NS_SORT = 150.0  # extracting a substring and sorting the hashes by it, per hash
_NS_MASK = 5.0  # enumerating one neighbour mask
_NS_PROBE = 2.0  # probing one neighbouring bucket for one hash
_NS_CANDIDATE = 12.0  # verifying one candidate pair
_NS_BRUTE = 4.0  # one pair in blockwise brute force
_NS_SUBSTRING = 2e5  # fixed Python overhead of one substring


@dataclass(frozen=True)
class _Substring:
    """One substring of the index: the hash bits of its key and its search radius."""

    positions: tuple[int, ...]  # hash bit of key bit 0, 1, ...
    radius: int  # probe the buckets within this many key bits

    @property
    def bits(self) -> int:
        return len(self.positions)

    @property
    def mask(self) -> np.uint64:
        return np.uint64(sum(1 << p for p in self.positions))

    def keys(self, hashes: np.ndarray) -> np.ndarray:
        """The bucket of every hash (its key bits gathered into one integer)."""
        # Byte by byte through a 256-entry table of each byte's key bits: eight
        # lookups instead of a shift and a mask per key bit.
        lookup = self._byte_keys()
        octets = np.ascontiguousarray(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8)  # byte b: bits 8b..8b+7
        keys = lookup[0][octets[:, 0]]
        for byte in range(1, 8):
            keys |= lookup[byte][octets[:, byte]]
        return keys

    def _byte_keys(self) -> np.ndarray:
        """(8, 256): the key bits each value of hash byte ``b`` (bits 8b..8b+7) contributes."""
        values = np.arange(256, dtype=np.int64)
        lookup = np.zeros((8, 256), dtype=np.int64)
        for t, p in enumerate(self.positions):
            lookup[p // 8] |= ((values >> (p % 8)) & 1) << t
        return lookup


def hamming_pairs(hashes, radius: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> pd.DataFrame:
    """Find every pair of hashes within a Hamming distance, without comparing all pairs.

    Parameters
    ----------
    hashes : array-like of 64-bit integers
        One perceptual hash per image, ``uint64`` or ``int64`` (as Parquet stores
        them; the bits are reinterpreted, not converted). Other non-negative
        integer types are accepted too.
    radius : int
        Largest Hamming distance reported, 0 to 64. Exact for every radius; fast
        for radius up to about 10 (the work grows quickly beyond).
    chunk_size : int, optional
        Most candidate pairs (and bucket probes) held in memory at once; bounds the
        working memory apart from the output itself.

    Returns
    -------
    DataFrame
        Columns ``i`` and ``j`` (int64 positions into ``hashes``, ``i < j``) and
        ``distance`` (int8), one row per pair within ``radius`` (identical hashes
        included, at distance 0), sorted by ``(i, j)``. Exactly the pairs
        :func:`brute_force_pairs` returns.

    Raises
    ------
    TypeError
        If ``hashes`` is not integral.
    ValueError
        If ``hashes`` is not one-dimensional, holds negative values of a narrow
        type, or ``radius`` or ``chunk_size`` is out of range.

    Notes
    -----
    ``n`` copies of one hash produce ``n * (n - 1) / 2`` rows; the working memory
    stays within a small constant factor of that output.

    Examples
    --------
    >>> hamming_pairs([0b1011, 0b0011, 0b1011, 0xFF00], radius=1)
       i  j  distance
    0  0  1         1
    1  0  2         0
    2  1  2         1
    """
    h = _as_hashes(hashes)
    r = _check_radius(radius)
    chunk = _check_chunk_size(chunk_size)
    if h.size < 2:
        return _frame(h, np.empty(0, np.int64))
    # Copies of one hash are found by grouping, not by the search: the index sees
    # each distinct hash once, so its work does not grow with the duplicates.
    distinct, inverse = np.unique(h, return_inverse=True)
    if r == 0 or distinct.size < 2:
        a = b = np.empty(0, np.int64)
    else:
        plan = _plan(distinct.size, r)
        if plan is None:
            a, b = _block_pairs(distinct, r)
        else:
            a, b = _index_pairs(distinct, r, plan, chunk)
    return _frame(h, _row_keys(inverse.ravel(), a, b, chunk), chunk)


def brute_force_pairs(hashes, radius: int) -> pd.DataFrame:
    """Reference for :func:`hamming_pairs`: compare every pair, in blocks of rows.

    Quadratic in time (about 20 seconds for 100,000 hashes), linear in memory.
    Takes and returns the same as :func:`hamming_pairs`.

    Examples
    --------
    >>> brute_force_pairs([0b1011, 0b0011, 0b1011, 0xFF00], radius=1).equals(
    ...     hamming_pairs([0b1011, 0b0011, 0b1011, 0xFF00], radius=1))
    True
    """
    h = _as_hashes(hashes)
    i, j = _block_pairs(h, _check_radius(radius))
    return _frame(h, i * h.size + j)  # blocks run over rows in order: already sorted


def group_pairs(n: int, pairs) -> np.ndarray:
    """Group the items linked by pairs into connected components.

    Parameters
    ----------
    n : int
        Number of items (e.g. ``len(hashes)``).
    pairs : DataFrame or array of shape (k, 2)
        Links between items: the ``i`` and ``j`` columns of :func:`hamming_pairs`,
        or two integer columns. Links are undirected; repeats are harmless.

    Returns
    -------
    ndarray of int64, shape (n,)
        The group of every item: ``0, 1, ...`` numbered in the order of each
        group's lowest item, and ``-1`` for items linked to no other item, so
        ``groups >= 0`` selects every item with a near duplicate.

    Examples
    --------
    >>> group_pairs(5, [[1, 3], [3, 4]])
    array([-1,  0, -1,  0,  0])
    """
    n = int(n)
    i, j = _pair_columns(pairs)
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"pairs refer to items outside 0..{n - 1}")
    graph = coo_array((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=count)
    _, lowest = np.unique(labels, return_index=True)  # every label 0..count-1 occurs
    linked = np.flatnonzero(sizes > 1)
    linked = linked[np.argsort(lowest[linked], kind="stable")]
    renumber = np.full(count, -1, dtype=np.int64)
    renumber[linked] = np.arange(linked.size)
    return renumber[labels]


def cross_pairs(queries, index, radius: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, index) pair of hashes within ``radius``, by the same multi-index search.

    Returns
    -------
    q, h, distance : ndarray
        Positions into ``queries`` and ``index`` and the distance of each pair, in
        no particular order. Exactly the pairs a full comparison finds.
    """
    q_hashes, h_hashes = _as_hashes(queries), _as_hashes(index)
    r, chunk = _check_radius(radius), _check_chunk_size(chunk_size)
    if q_hashes.size == 0 or h_hashes.size == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, empty.astype(np.int8)
    plan = _plan(h_hashes.size, r, q_hashes.size, _collision_skew(q_hashes, h_hashes))
    found_q, found_h = [], []
    if plan is None:
        rows = max(1, (1 << 22) // h_hashes.size)
        for lo in range(0, q_hashes.size, rows):
            qi, hi = np.nonzero(np.bitwise_count(q_hashes[lo : lo + rows, None] ^ h_hashes[None, :]) <= r)
            found_q.append(qi + lo)
            found_h.append(hi)
    else:
        for k, sub in enumerate(plan):
            table = _Table(h_hashes, sub, r, plan[:k], chunk)
            keys = sub.keys(q_hashes)
            masks = np.concatenate([np.zeros(1, np.int64), _ball(sub.bits, sub.radius)])
            step = max(1, chunk // masks.size)
            for lo in range(0, q_hashes.size, step):
                batch = np.arange(lo, min(lo + step, q_hashes.size))
                targets = (masks[:, None] ^ keys[batch][None, :]).ravel()
                hit = np.flatnonzero(table.occupied[targets])
                if hit.size == 0:
                    continue
                query = batch[hit % batch.size]
                start, count = table.run(targets[hit])
                for part in _slices(count, chunk):
                    cand = _ranges(start[part], count[part])
                    xor = np.repeat(q_hashes[query[part]], count[part]) ^ table.hashes[cand]
                    ok = np.flatnonzero(np.bitwise_count(xor) <= r)
                    if ok.size and table.earlier:
                        near = xor[ok]
                        fresh = np.ones(ok.size, dtype=bool)
                        for mask, sub_radius in table.earlier:  # else an earlier substring reports it
                            fresh &= np.bitwise_count(near & mask) > sub_radius
                        ok = ok[fresh]
                    # the query of each kept candidate, without repeating queries for all of them
                    owner = np.searchsorted(np.cumsum(count[part]), ok, side="right")
                    found_q.append(query[part][owner])
                    found_h.append(table.order[cand[ok]])
    q_pos = np.concatenate(found_q).astype(np.int64) if found_q else np.empty(0, np.int64)
    h_pos = np.concatenate(found_h).astype(np.int64) if found_h else np.empty(0, np.int64)
    distance = np.bitwise_count(q_hashes[q_pos] ^ h_hashes[h_pos]).astype(np.int8)
    return q_pos, h_pos, distance


def probe_pairs(base, probes, radius: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> pd.DataFrame:
    """Pairs of images one of whose probe hashes is within ``radius`` of the other's base hash.

    Parameters
    ----------
    base : array of n 64-bit hashes
        The unshifted hash of every image: the index.
    probes : array of shape (n, p)
        Every image's hashes at several small shifts (the base among them): the
        queries. A copy moved by a few pixels is near one of its original's probes
        even where its base hash is many bits away.
    radius : int
        Largest Hamming distance between a probe and a base hash.

    Returns
    -------
    DataFrame
        ``i < j`` and ``distance`` (the smallest probe-to-base distance either
        way), sorted by ``(i, j)``; no image paired with itself.
    """
    h = _as_hashes(base)
    probes = np.asarray(probes)
    if probes.ndim != 2 or probes.shape[0] != h.size:
        raise ValueError(f"probes must have shape ({h.size}, p), got {probes.shape}")
    owner = np.repeat(np.arange(h.size, dtype=np.int64), probes.shape[1])
    q, j, distance = cross_pairs(probes.reshape(-1), h, radius, chunk_size=chunk_size)
    i = owner[q]
    keep = i != j
    i, j, distance = i[keep], j[keep], distance[keep]
    key = np.minimum(i, j) * h.size + np.maximum(i, j)
    order = np.lexsort((distance, key))  # by pair, the smallest distance first
    key, distance = key[order], distance[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key = key[first]
    return pd.DataFrame({"i": key // h.size, "j": key % h.size, "distance": distance[first].astype(np.int8)})


# --- input checks -----------------------------------------------------------


def _as_hashes(hashes) -> np.ndarray:
    """The hashes as a 1-D ``uint64`` array (``int64`` reinterpreted bit for bit)."""
    if isinstance(hashes, pd.Series | pd.Index):
        if hashes.isna().any():
            raise ValueError("hashes hold missing values")
        hashes = hashes.to_numpy()
    arr = np.asarray(hashes)
    if arr.ndim != 1:
        raise ValueError(f"hashes must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.uint64)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype == np.int64:
        return arr.view(np.uint64)  # Parquet has no unsigned 64-bit: same bits, signed
    if arr.dtype.kind not in "iu":
        raise TypeError(f"hashes must be 64-bit integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and (arr < 0).any():
        raise ValueError(f"hashes of dtype {arr.dtype} must not be negative (pass int64 or uint64)")
    return arr.astype(np.uint64)


def _check_radius(radius: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or not 0 <= radius <= HASH_BITS:
        raise ValueError(f"radius must be an integer from 0 to {HASH_BITS}, got {radius!r}")
    return int(radius)


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def _pair_columns(pairs) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pairs, pd.DataFrame):
        return pairs["i"].to_numpy(np.int64), pairs["j"].to_numpy(np.int64)
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


# --- choosing the index -----------------------------------------------------


def _plan(n: int, radius: int, queries: int | None = None, skew: float = 1.0) -> tuple[_Substring, ...] | None:
    """The cheapest exact index for ``n`` distinct hashes, or None if brute force is cheaper.

    ``queries``: how many hashes are looked up in it (None: the ``n`` hashes against
    each other, each pair once). ``skew``: how many times more often keys collide
    than uniform random hashes would (see :func:`_collision_skew`).
    """
    pairs = n * n / 2 if queries is None else n * queries
    best_cost, best = _NS_BRUTE * pairs, None
    for m in range(1, min(radius + 1, _MAX_SUBSTRINGS) + 1):
        for key_bits in range(1, _MAX_KEY_BITS + 1):
            plan = _layout(m, radius, key_bits)
            cost = sum(_substring_cost(n, sub, queries, skew) for sub in plan)
            if cost < best_cost:
                best_cost, best = cost, plan
    return best


def _layout(m: int, radius: int, key_bits: int) -> tuple[_Substring, ...]:
    """``m`` substrings and their radii by the pigeonhole principle (skipping those at -1).

    Substring ``k`` holds hash bits ``k, k + m, k + 2m, ...``: interleaving mixes
    the DCT frequencies of a perceptual hash, whose low-frequency bits are much more
    alike across images, so no one table collects all the skew. A substring wider
    than ``key_bits`` is keyed on its first ``key_bits`` bits; that only adds
    candidates (distance on a subset of bits is never larger), never loses one.
    """
    q, a = divmod(radius, m)
    subs = []
    for k in range(m):
        sub_radius = q if k <= a else q - 1
        if sub_radius >= 0:
            subs.append(_Substring(tuple(range(k, HASH_BITS, m))[:key_bits], sub_radius))
    return tuple(subs)


def _ball_size(bits: int, radius: int) -> int:
    return sum(math.comb(bits, t) for t in range(min(radius, bits) + 1))


def _substring_cost(n: int, sub: _Substring, queries: int | None = None, skew: float = 1.0) -> float:
    probes = _ball_size(sub.bits, sub.radius)
    buckets = 1 << sub.bits
    if queries is None:  # every neighbouring bucket pair is probed from one side only, hence the halves
        probing, candidates = n * (probes - 1) / 2, n * n * probes / buckets / 2
    else:
        probing, candidates = queries * probes, queries * n * probes / buckets
    return (
        _NS_SUBSTRING
        + _NS_BUCKET * buckets
        + _NS_SORT * (n if queries is None else n + queries)
        + _NS_MASK * probes
        + _NS_PROBE * probing
        + _NS_CANDIDATE * candidates * skew
    )


_SKEW_KEY = tuple(range(0, HASH_BITS, 3))[:16]


def _collision_skew(queries: np.ndarray, index: np.ndarray) -> float:
    """How many times more (query, index) pairs share a 16-bit key than for uniform random hashes.

    Perceptual hashes of one kind of image (centred knees) share many bits, so
    buckets are far fuller than the cost model assumes; measured once on a
    typical key, this steers the plan towards wider keys.
    """
    key = _Substring(_SKEW_KEY, 0)
    buckets = 1 << len(_SKEW_KEY)
    shared = np.bincount(key.keys(queries), minlength=buckets).astype(np.float64) @ np.bincount(
        key.keys(index), minlength=buckets
    )
    return max(1.0, float(shared) / (queries.size * index.size / buckets))


def _ball(bits: int, radius: int) -> np.ndarray:
    """All non-zero ``bits``-bit masks with at most ``radius`` bits set, ascending."""
    levels = [np.zeros(1, dtype=np.int64)]
    for _ in range(min(radius, bits)):
        prev = levels[-1]
        # extend each mask by one bit above its highest, so each mask is made once
        grown = [prev[prev < (1 << p)] | (1 << p) for p in range(bits)]
        levels.append(np.concatenate(grown))
    return np.sort(np.concatenate(levels[1:])) if len(levels) > 1 else np.empty(0, np.int64)


# --- searching --------------------------------------------------------------


def _index_pairs(
    hashes: np.ndarray, radius: int, plan: tuple[_Substring, ...], chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions within ``radius``, once each, in no particular order."""
    found_a, found_b = [], []
    for k, sub in enumerate(plan):
        for a, b in _substring_pairs(hashes, radius, sub, plan[:k], chunk_size):
            if a.size:
                found_a.append(a)
                found_b.append(b)
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_a), np.concatenate(found_b)


def _substring_pairs(
    hashes: np.ndarray, radius: int, sub: _Substring, earlier: tuple[_Substring, ...], chunk_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs this substring finds and no earlier one can (positions into ``hashes``)."""
    table = _Table(hashes, sub, radius, earlier, chunk_size)
    keys = table.keys

    # Same bucket: each hash against those after it, so each pair is seen once.
    pos = np.arange(keys.size)
    start, count = table.run(keys)
    yield from table.check_ranges(pos, pos + 1, start + count - pos - 1)

    # Neighbouring buckets b and b ^ x: probe only from the one whose bit at the
    # highest set bit of x is 0, so each pair of buckets is visited once. Queries
    # stay sorted by bucket, so one batch's probes for one mask hit a narrow band
    # of the table.
    masks = _ball(sub.bits, sub.radius)
    edges = np.searchsorted(masks, 1 << np.arange(sub.bits + 1))
    for high in range(sub.bits):
        group = masks[edges[high] : edges[high + 1]]
        if group.size == 0:
            continue
        queries = np.flatnonzero(((keys >> high) & 1) == 0)
        # a power-of-two batch turns a probe's flat index into its query by a bit mask
        step = 1 << max(0, (chunk_size // group.size).bit_length() - 1)
        for lo in range(0, queries.size, step):
            batch = queries[lo : lo + step]
            targets = group[:, None] ^ keys[batch][None, :]
            hit = np.flatnonzero(np.take(table.occupied, targets))
            if hit.size:
                column = hit & (step - 1) if batch.size == step else hit % batch.size
                yield from table.probe(batch[column], targets.ravel()[hit])


class _Table:
    """One substring's direct-address table: the hashes sorted by key, and each key's run."""

    def __init__(
        self, hashes: np.ndarray, sub: _Substring, radius: int, earlier: tuple[_Substring, ...], chunk_size: int
    ) -> None:
        if hashes.size >= 1 << 31:
            raise ValueError("more than 2**31 distinct hashes: runs of the table would overflow")
        keys = sub.keys(hashes)
        self.order = np.argsort(keys, kind="stable")  # sorted position -> position in hashes
        self.keys = keys[self.order]
        self.hashes = hashes[self.order]
        starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        counts = np.diff(np.r_[starts, keys.size])
        occupied = self.keys[starts]
        self.occupied = np.zeros(1 << sub.bits, dtype=bool)  # 8x smaller than the runs, so probes stay in cache
        self.occupied[occupied] = True
        # Each bucket's run (start << 32 | count) in one word: a probe that hits
        # costs one cache miss, not two. Only occupied buckets are written (and ever
        # read): a few thousand hashes in 2**22 buckets would otherwise cost more to
        # tabulate than to search.
        self.runs = np.empty(1 << sub.bits, dtype=np.int64)
        self.runs[occupied] = (starts << 32) | counts
        self.radius = radius
        self.earlier = [(other.mask, other.radius) for other in earlier]
        self.chunk_size = chunk_size

    def run(self, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted position of the first hash in each bucket, and how many it holds."""
        run = self.runs[bucket]
        return run >> 32, run & 0xFFFFFFFF

    def probe(self, query: np.ndarray, bucket: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Check each ``query`` (sorted position) against every hash in occupied ``bucket``."""
        start, count = self.run(bucket)
        # Most occupied buckets hold one hash: check every bucket's first hash
        # directly, and expand only the rest of the few larger buckets.
        yield self._check(query, start)
        more = np.flatnonzero(count > 1)
        if more.size:
            yield from self.check_ranges(query[more], start[more] + 1, count[more] - 1)

    def check_ranges(
        self, query: np.ndarray, start: np.ndarray, count: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Check each ``query`` against sorted positions ``start .. start + count``."""
        nonempty = count > 0
        query, start, count = query[nonempty], start[nonempty], count[nonempty]
        # About chunk_size candidates at a time; a slice holds at least one query,
        # so one huge bucket costs at most its own size.
        for part in _slices(count, self.chunk_size):
            yield self._check(np.repeat(query[part], count[part]), _ranges(start[part], count[part]))

    def _check(self, query: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (query, candidate) pairs within the radius that no earlier substring finds."""
        xor = self.hashes[query] ^ self.hashes[candidate]
        ok = np.flatnonzero(np.bitwise_count(xor) <= self.radius)
        if ok.size and self.earlier:
            near = xor[ok]
            fresh = np.ones(ok.size, dtype=bool)
            for mask, sub_radius in self.earlier:
                fresh &= np.bitwise_count(near & mask) > sub_radius  # else that substring reports it
            ok = ok[fresh]
        return self.order[query[ok]], self.order[candidate[ok]]


def _block_pairs(hashes: np.ndarray, radius: int, block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j`` within ``radius``, sorted, comparing about ``block`` pairs at a time."""
    n = hashes.size
    rows = max(1, block // max(n, 1))
    found_i, found_j = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        dist = np.bitwise_count(hashes[lo:hi, None] ^ hashes[None, lo:])
        i, j = np.nonzero(dist <= radius)
        i += lo
        j += lo
        upper = j > i
        found_i.append(i[upper])
        found_j.append(j[upper])
    return np.concatenate(found_i).astype(np.int64), np.concatenate(found_j).astype(np.int64)


# --- from distinct hashes back to rows ---------------------------------------


def _slices(count: np.ndarray, budget: int) -> Iterator[slice]:
    """Consecutive slices of items whose counts sum to at most ``budget`` (or one item)."""
    ends = np.cumsum(count)
    lo = 0
    while lo < count.size:
        hi = max(lo + 1, int(np.searchsorted(ends, ends[lo] - count[lo] + budget, side="right")))
        yield slice(lo, hi)
        lo = hi


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``start[0] .. start[0] + count[0]``, then ``start[1] ..``, concatenated."""
    keep = count > 0
    start, count = start[keep], count[keep]
    out = np.ones(int(count.sum()), dtype=np.int64)
    if out.size:
        # steps of one, except a jump to each run's start; one array and a cumsum
        out[0] = start[0]
        out[(np.cumsum(count) - count)[1:]] = start[1:] - (start[:-1] + count[:-1] - 1)
        np.cumsum(out, out=out)
    return out


def _row_keys(inverse: np.ndarray, a: np.ndarray, b: np.ndarray, chunk_size: int) -> np.ndarray:
    """Sorted keys ``i * n + j`` of the row pairs: every copy of ``a`` with every copy of ``b``,
    and every two copies of one hash. Builds them in place, ``chunk_size`` at a time."""
    n = inverse.size
    copies = np.bincount(inverse)
    members = np.argsort(inverse, kind="stable")  # rows grouped by hash, ascending within
    first = np.cumsum(copies) - copies
    across = copies[a] * copies[b]
    pos = np.arange(n)
    after = (first + copies)[inverse[members]] - pos - 1  # copies after each one, same hash
    keys = np.empty(int(across.sum()) + int(after.sum()), dtype=np.int64)
    filled = 0
    for part in _slices(across, chunk_size):
        ca, cb = copies[a[part]], copies[b[part]]
        per_a = np.repeat(np.arange(ca.size), ca)  # one entry per copy of a
        count = cb[per_a]
        x = np.repeat(members[_ranges(first[a[part]], ca)], count)
        y = members[_ranges(first[b[part]][per_a], count)]
        keys[filled : filled + x.size] = np.minimum(x, y) * n + np.maximum(x, y)
        filled += x.size
    for part in _slices(after, chunk_size):
        x = np.repeat(members[part], after[part])
        y = members[_ranges(pos[part] + 1, after[part])]
        keys[filled : filled + x.size] = x * n + y  # members ascend within a hash: x < y
        filled += x.size
    keys.sort()
    return keys


def _frame(hashes: np.ndarray, keys: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE) -> pd.DataFrame:
    """The output table from sorted pair keys; ``keys`` is reused for column ``j``."""
    n = max(hashes.size, 1)
    i = np.empty(keys.size, dtype=np.int64)
    distance = np.empty(keys.size, dtype=np.int8)
    for lo in range(0, keys.size, chunk_size):
        part = slice(lo, lo + chunk_size)
        i[part] = keys[part] // n
        keys[part] -= i[part] * n
        distance[part] = np.bitwise_count(hashes[i[part]] ^ hashes[keys[part]])
    return pd.DataFrame({"i": i, "j": keys, "distance": distance}, copy=False)
