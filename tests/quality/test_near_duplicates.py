from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.quality import near_duplicates as nd
from curate.quality.near_duplicates import brute_force_pairs, group_pairs, hamming_pairs


def flip(hash_value: np.uint64, bits) -> np.uint64:
    """``hash_value`` with the given bit positions inverted."""
    return np.uint64(hash_value) ^ np.uint64(sum(1 << int(b) for b in bits))


def clustered_hashes(n: int, radius: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Random hashes, clusters straddling ``radius``, and planted pairs at every distance 0..radius.

    Returns the hashes and the planted pairs ``(i, j, distance)``.
    """
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    # clusters: copies of a centre with 0..radius+3 bits flipped, so many of their
    # pairs lie just inside or just outside the radius
    cluster_rows = rng.choice(n, size=n // 2, replace=False).reshape(-1, 10)
    for rows in cluster_rows:
        for row in rows[1:]:
            flips = rng.choice(64, size=int(rng.integers(0, radius + 4)), replace=False)
            hashes[row] = flip(hashes[rows[0]], flips)
    free = np.setdiff1d(np.arange(n), cluster_rows.ravel())
    ends = rng.choice(free, size=(3 * (radius + 1), 2), replace=False)
    planted = []
    for k, (i, j) in enumerate(ends):
        distance = k % (radius + 1)
        hashes[j] = flip(hashes[i], rng.choice(64, size=distance, replace=False))
        planted.append((int(min(i, j)), int(max(i, j)), distance))
    return hashes, planted


def as_set(pairs: pd.DataFrame) -> set[tuple[int, int, int]]:
    return set(zip(pairs["i"].tolist(), pairs["j"].tolist(), pairs["distance"].tolist()))


@pytest.mark.parametrize("radius", [0, 1, 5, 8, 12])
def test_equals_brute_force_with_pairs_planted_at_every_distance(radius):
    hashes, planted = clustered_hashes(4000, radius, seed=radius)
    fast = hamming_pairs(hashes, radius)
    slow = brute_force_pairs(hashes, radius)
    pd.testing.assert_frame_equal(fast, slow)
    assert set(planted) <= as_set(fast)
    assert len(fast) > len(planted)  # the clusters add pairs near the radius


def test_output_columns_types_and_order():
    hashes, _ = clustered_hashes(3000, 6, seed=1)
    pairs = hamming_pairs(hashes, 6)
    assert list(pairs.columns) == ["i", "j", "distance"]
    assert pairs["i"].dtype == np.int64 and pairs["j"].dtype == np.int64
    assert pairs["distance"].dtype == np.int8
    assert (pairs["i"] < pairs["j"]).all()
    assert pairs.equals(pairs.sort_values(["i", "j"], ignore_index=True))
    recomputed = np.bitwise_count(hashes[pairs["i"]] ^ hashes[pairs["j"]])
    assert (pairs["distance"].to_numpy() == recomputed).all() and (recomputed <= 6).all()


@pytest.mark.parametrize("radius", [3, 8, 12])
def test_every_index_layout_is_exact(radius):
    # whichever layout the cost model picks, the index must find exactly brute force's pairs
    hashes, _ = clustered_hashes(1000, radius, seed=7)
    distinct = np.unique(hashes)
    expected = nd._block_pairs(distinct, radius)
    expected_keys = expected[0] * distinct.size + expected[1]
    for m in range(1, radius + 2):
        for key_bits in (3, 9, 14):
            a, b = nd._index_pairs(distinct, radius, nd._layout(m, radius, key_bits), chunk_size=500)
            keys = np.minimum(a, b) * distinct.size + np.maximum(a, b)
            assert np.array_equal(np.sort(keys), expected_keys), (m, key_bits)


def test_layout_of_the_default_scale_is_exact():
    # the 2**22-bucket tables used for a million hashes, on a small set
    hashes, _ = clustered_hashes(4000, 8, seed=3)
    distinct = np.unique(hashes)
    a, b = nd._index_pairs(distinct, 8, nd._layout(3, 8, 22), chunk_size=1 << 16)
    i, j = nd._block_pairs(distinct, 8)
    assert np.array_equal(np.sort(np.minimum(a, b) * distinct.size + np.maximum(a, b)), i * distinct.size + j)


def test_the_planner_indexes_large_sets_and_compares_small_ones():
    assert nd._plan(100, 8) is None  # brute force is cheaper than building tables
    assert {sub.bits for sub in nd._plan(1_000_000, 8)} == {21, 22}
    for n in (5_000, 1_000_000):
        for radius in range(1, 13):
            plan = nd._plan(n, radius)
            positions = [p for sub in plan for p in sub.positions]
            assert len(set(positions)) == len(positions)  # disjoint substrings
            # pigeonhole: if every substring differed by more than its radius, the
            # hashes would differ in more than `radius` bits, so no pair is missed
            assert sum(sub.radius + 1 for sub in plan) > radius


def test_many_copies_of_one_hash_and_small_chunks():
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**64, size=3000, dtype=np.uint64)
    copies = rng.choice(3000, size=400, replace=False)
    hashes[copies] = hashes[0]
    near = rng.choice(np.setdiff1d(np.arange(3000), copies), size=40, replace=False)
    for row in near:
        hashes[row] = flip(hashes[0], rng.choice(64, size=int(rng.integers(1, 5)), replace=False))
    slow = brute_force_pairs(hashes, 4)
    assert len(slow) > 400 * 399 // 2
    pd.testing.assert_frame_equal(hamming_pairs(hashes, 4), slow)
    pd.testing.assert_frame_equal(hamming_pairs(hashes, 4, chunk_size=97), slow)


def test_int64_input_equals_uint64_input():
    hashes, _ = clustered_hashes(3000, 8, seed=11)
    assert (hashes.view(np.int64) < 0).any()  # the signed view really has negative values
    unsigned = hamming_pairs(hashes, 8)
    pd.testing.assert_frame_equal(hamming_pairs(hashes.view(np.int64), 8), unsigned)
    pd.testing.assert_frame_equal(hamming_pairs(pd.Series(hashes.view(np.int64)), 8), unsigned)
    pd.testing.assert_frame_equal(brute_force_pairs(hashes.view(np.int64), 8), brute_force_pairs(hashes, 8))


@pytest.mark.parametrize("hashes", [[], np.array([], dtype=np.int64), np.array([2**63 + 5], dtype=np.uint64)])
def test_empty_and_single_input(hashes):
    for pairs in (hamming_pairs(hashes, 8), brute_force_pairs(hashes, 8)):
        assert pairs.empty
        assert list(pairs.columns) == ["i", "j", "distance"]
        assert pairs["i"].dtype == np.int64


def test_identical_hashes_are_pairs_at_distance_zero():
    pairs = hamming_pairs(np.array([7, 7, 8, 7], dtype=np.uint64), 0)
    assert as_set(pairs) == {(0, 1, 0), (0, 3, 0), (1, 3, 0)}


@pytest.mark.parametrize("radius", [-1, 65, 2.5, True, "8"])
def test_radius_out_of_range(radius):
    with pytest.raises(ValueError, match="radius"):
        hamming_pairs([1, 2], radius)


def test_bad_hashes():
    with pytest.raises(TypeError):
        hamming_pairs(np.array([1.0, 2.0]), 2)
    with pytest.raises(ValueError, match="negative"):
        hamming_pairs(np.array([1, -2], dtype=np.int32), 2)
    with pytest.raises(ValueError, match="one-dimensional"):
        hamming_pairs(np.zeros((2, 2), dtype=np.uint64), 2)
    with pytest.raises(ValueError, match="chunk_size"):
        hamming_pairs([1, 2], 2, chunk_size=0)


def test_group_pairs_joins_chains_and_marks_singletons():
    # 0 ~ 2 ~ 4 is one group although 0 and 4 are not a pair; 1 and 5 stand alone
    hashes = np.array(
        [0, 0xFFFF_FFFF_0000_0000, 0b11, (2**64 - 1) ^ (1 << 5), 0b1111, 0x0F0F_0F0F_0F0F_0F0F, 2**64 - 1],
        dtype=np.uint64,
    )
    pairs = hamming_pairs(hashes, 2)
    assert as_set(pairs) == {(0, 2, 2), (2, 4, 2), (3, 6, 1)}
    groups = group_pairs(len(hashes), pairs)
    assert groups.tolist() == [0, -1, 0, 1, 0, -1, 1]
    assert group_pairs(3, np.array([[2, 1], [1, 2]])).tolist() == [-1, 0, 0]
    assert group_pairs(2, pd.DataFrame({"i": [], "j": []}, dtype=np.int64)).tolist() == [-1, -1]
    with pytest.raises(ValueError, match="outside"):
        group_pairs(2, [[0, 2]])


@st.composite
def hash_sets(draw):
    """Small sets mixing random hashes, copies and near copies of a few centres."""
    centres = draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4))
    members = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(centres) - 1),
                st.lists(st.integers(0, 63), max_size=10),  # bits to flip, repeats allowed
            ),
            max_size=40,
        )
    )
    extra = draw(st.lists(st.integers(0, 2**64 - 1), max_size=10))
    hashes = [int(flip(centres[c], set(bits))) for c, bits in members] + centres + extra
    return np.array(draw(st.permutations(hashes)), dtype=np.uint64)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hashes=hash_sets(),
    radius=st.integers(0, 12),
    substrings=st.integers(1, 13),
    key_bits=st.integers(1, 12),
    chunk_size=st.integers(1, 64),
)
def test_property_equals_brute_force(hashes, radius, substrings, key_bits, chunk_size):
    slow = brute_force_pairs(hashes, radius)
    pd.testing.assert_frame_equal(hamming_pairs(hashes, radius, chunk_size=chunk_size), slow)
    # and the index itself, with an arbitrary layout, on the raw hashes (copies included)
    layout = nd._layout(min(substrings, radius + 1), radius, key_bits)
    a, b = nd._index_pairs(hashes, radius, layout, chunk_size)
    n = hashes.size
    found = np.sort(np.minimum(a, b) * n + np.maximum(a, b))
    assert np.array_equal(found, slow["i"].to_numpy() * n + slow["j"].to_numpy())


# --- searching one set of hashes against another -------------------------------------


@pytest.mark.parametrize(("n", "radius"), [(300, 4), (3000, 6), (5000, 8)])
def test_cross_pairs_equal_a_full_comparison(n, radius):
    from curate.quality.near_duplicates import cross_pairs

    rng = np.random.default_rng(n + radius)
    index = rng.integers(0, 2**63, n, dtype=np.int64).view(np.uint64) << np.uint64(1)
    flips = rng.integers(0, radius + 3, n)
    queries = index.copy()
    for k in range(n):  # each query is its index hash with a few bits flipped
        for bit in rng.choice(64, flips[k], replace=False):
            queries[k] ^= np.uint64(1) << np.uint64(bit)
    q, h, d = cross_pairs(queries, index, radius)
    full_q, full_h = np.nonzero(np.bitwise_count(queries[:, None] ^ index[None, :]) <= radius)
    assert sorted(zip(q.tolist(), h.tolist())) == sorted(zip(full_q.tolist(), full_h.tolist()))
    assert np.array_equal(d, np.bitwise_count(queries[q] ^ index[h]).astype(np.int8))


def test_probe_pairs_link_an_image_to_the_one_whose_probe_matches():
    from curate.quality.near_duplicates import probe_pairs

    base = np.array([0, 0xFFFF, 0xFFFF_0000_0000, 0xF0F0_F0F0_F0F0_F0F0], dtype=np.uint64)
    probes = np.stack([base, base ^ np.uint64(1 << 40)], axis=1)
    probes[2, 1] = 0xFFFF ^ 0b111  # image 2 moved a little looks like image 1
    pairs = probe_pairs(base, probes, radius=3)
    assert pairs.to_dict("records") == [{"i": 1, "j": 2, "distance": 3}]


def test_cross_pairs_on_clustered_hashes_pick_wide_keys_and_stay_exact():
    """Hashes of one anatomy share most bits: the planner sees the skew, the result stays exact."""
    from curate.quality.near_duplicates import _collision_skew, _plan, cross_pairs

    rng = np.random.default_rng(7)
    centre = rng.integers(0, 2**63, dtype=np.int64).astype(np.uint64)
    noise = rng.random((5000, 64)) < 0.08  # each hash differs from the common one in ~5 bits
    index = centre ^ np.packbits(noise, axis=1).view(">u8")[:, 0].astype(np.uint64)
    queries = np.concatenate([index, index ^ np.uint64(1 << 9)])
    skew = _collision_skew(queries, index)
    assert skew > 10
    assert min(s.bits for s in _plan(index.size, 4, queries.size, skew)) > min(
        s.bits for s in _plan(index.size, 4, queries.size)
    )
    q, h, _ = cross_pairs(queries, index, 4)
    full = [
        (int(a) + lo, int(b))
        for lo in range(0, queries.size, 1000)
        for a, b in zip(*np.nonzero(np.bitwise_count(queries[lo : lo + 1000, None] ^ index[None, :]) <= 4))
    ]
    assert sorted(zip(q.tolist(), h.tolist())) == sorted(full)


def test_probe_pairs_keep_each_pair_once_at_its_smallest_distance():
    from curate.quality.near_duplicates import probe_pairs

    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, 400, dtype=np.int64).astype(np.uint64) & np.uint64(0xFFF)  # many near pairs
    probes = np.stack([base ^ np.uint64(1 << int(b)) for b in rng.integers(0, 12, 5)] + [base], axis=1)
    pairs = probe_pairs(base, probes, radius=2)
    xor = np.bitwise_count(probes[:, :, None] ^ base[None, None, :]).min(axis=1)  # probe of i vs base of j
    best = np.minimum(xor, xor.T)
    i, j = np.nonzero(np.triu(best <= 2, k=1))
    assert pairs[["i", "j"]].to_numpy().tolist() == np.column_stack([i, j]).tolist()
    assert pairs["distance"].tolist() == best[i, j].tolist()
