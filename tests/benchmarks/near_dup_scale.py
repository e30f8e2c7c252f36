"""Scale check for :func:`curate.quality.near_duplicates.hamming_pairs`.

Plants near pairs among random 64-bit hashes, finds all pairs within the radius,
checks that every planted pair is found, and compares with brute force on a
subset that contains planted pairs. Prints figures; asserts no timings.

Run from the repository root::

    .venv/bin/python tests/benchmarks/near_dup_scale.py [--n 1000000] [--radius 8]
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time

import numpy as np

from curate.quality.near_duplicates import brute_force_pairs, hamming_pairs


def planted_hashes(
    n: int, planted: int, radius: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random hashes where ``planted`` pairs ``(i, j)`` differ in 1..radius random bits."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    ends = rng.choice(n, size=2 * planted, replace=False)  # every item in one planted pair at most
    i, j = np.sort(ends.reshape(planted, 2), axis=1).T
    for a, b in zip(i, j):
        flips = rng.choice(64, size=int(rng.integers(1, radius + 1)), replace=False)
        hashes[b] = hashes[a] ^ np.uint64(sum(1 << int(bit) for bit in flips))
    return hashes, i.astype(np.int64), j.astype(np.int64)


def pair_keys(i, j, n: int) -> np.ndarray:
    return np.asarray(i, dtype=np.int64) * n + np.asarray(j, dtype=np.int64)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of hashes")
    parser.add_argument("--radius", type=int, default=8, help="Hamming radius")
    parser.add_argument("--planted", type=int, default=1_000, help="number of planted near pairs")
    parser.add_argument("--subset", type=int, default=20_000, help="hashes compared with brute force")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.radius < 1:
        parser.error("--radius must be at least 1 (planted pairs differ in 1..radius bits)")

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    t = time.perf_counter()
    hashes, pi, pj = planted_hashes(args.n, args.planted, args.radius, args.seed)
    print(f"{args.n:,} hashes, {args.planted:,} planted pairs at distance 1..{args.radius} "
          f"(generated in {time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    pairs = hamming_pairs(hashes, args.radius)
    elapsed = time.perf_counter() - t
    found = np.isin(pair_keys(pi, pj, args.n), pair_keys(pairs["i"], pairs["j"], args.n))
    print(f"hamming_pairs, radius {args.radius}: {elapsed:.2f} s, {len(pairs):,} pairs found")
    print(f"planted pairs found: {int(found.sum()):,} of {args.planted:,} "
          f"({'all' if found.all() else 'SOME MISSING'})")

    # Subset: the ends of the first planted pairs (so it holds some) plus random others.
    rng = np.random.default_rng(args.seed + 1)
    size = min(args.subset, args.n)
    inside = np.concatenate([pi, pj]).reshape(2, -1).T[: size // 20].ravel()
    rest = np.setdiff1d(np.arange(args.n), inside)
    subset = np.sort(np.concatenate([inside, rng.choice(rest, size - inside.size, replace=False)]))
    sub = hashes[subset]
    t = time.perf_counter()
    fast = hamming_pairs(sub, args.radius)
    fast_time = time.perf_counter() - t
    t = time.perf_counter()
    slow = brute_force_pairs(sub, args.radius)
    slow_time = time.perf_counter() - t
    print(f"subset of {size:,} hashes holding {inside.size // 2:,} planted pairs: "
          f"hamming_pairs {fast_time:.3f} s, brute force {slow_time:.2f} s, "
          f"{len(fast):,} vs {len(slow):,} pairs, identical: {fast.equals(slow)}")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
