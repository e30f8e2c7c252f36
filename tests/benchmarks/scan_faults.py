"""Recall and precision of the scan against the demo's injected faults.

Run:  .venv/bin/python tests/benchmarks/scan_faults.py [--scale 1.0] [--seed 0] [--workers 2]

Generates the demo dataset (default scale: 8,260 images) in a temporary folder,
ingests and scans it, and prints one row per fault type the scan is meant to
catch (see curate.quality.evaluate.SCAN_FAULTS). Figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from curate.demo import make_demo
    from curate.loaders import load
    from curate.parallel import Executor
    from curate.quality.evaluate import score_scan
    from curate.quality.scan import scan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        make_demo(root, seed=args.seed, scale=args.scale)
        catalog = load("oai-kl", root).catalog
        start = time.perf_counter()
        quality = scan(catalog, executor=Executor(workers=args.workers), cache_dir=False)
        seconds = time.perf_counter() - start
        scores = score_scan(quality, pd.read_csv(root / "faults.csv"), catalog)
    pd.set_option("display.width", 160)
    print(f"demo seed {args.seed}, scale {args.scale}: {len(catalog):,} images scanned in {seconds:.1f} s")
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"lowest recall {scores['recall'].min():.3f}, lowest precision {scores['precision'].min():.3f}")


if __name__ == "__main__":
    main()
