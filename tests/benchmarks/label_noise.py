"""Label-noise findings against the demo's injected label flips, and the probe's speed at scale.

Run:  .venv/bin/python tests/benchmarks/label_noise.py [--scale 1.0] [--seed 0] [--rows 100000]

1. Generates the demo (default scale 1: the default demo), scans it, runs `find_label_noise` with the
   built-in features and prints, for distant flips (grade distance >= 2) and adjacent
   flips separately: injected, flagged, found, recall and precision, plus the probe's
   accuracy, balanced accuracy and quadratic kappa.
2. Times the patient-grouped 5-fold probe and cleanlab on --rows samples with
   256-dimensional synthetic embeddings. Figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def demo_scores(scale: float, seed: int) -> None:
    from curate.demo import make_demo
    from curate.labels.features import compute_features
    from curate.labels.noise import find_label_noise
    from curate.loaders import load
    from curate.parallel import Executor
    from curate.quality.scan import scan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        make_demo(root, seed=seed, scale=scale)
        catalog = load("oai-kl", root).catalog
        quality = scan(catalog, executor=Executor(workers=2), cache_dir=False)
        features = compute_features(catalog, cache_dir=False)
        result = find_label_noise(catalog, features, quality=quality, seed=seed)
        faults = pd.read_csv(root / "faults.csv")
    table = result.table.merge(catalog[["sample_id", "path"]], on="sample_id")
    issues = table[table["is_label_issue"]]
    print(f"demo seed {seed}, scale {scale}: {result.metrics['fitted']:,} samples fitted, probe {result.metrics['classifier']}")
    print(
        "probe: accuracy {accuracy:.3f}, balanced accuracy {balanced_accuracy:.3f}, "
        "quadratic kappa {quadratic_kappa:.3f}".format(**result.metrics)
    )
    for fault, flagged in (
        ("label_flip_distant", issues[issues["grade_distance"] >= 2]),
        ("label_flip_adjacent", issues[issues["grade_distance"] == 1]),
    ):
        truth = set(faults.loc[faults["fault"] == fault, "file"])
        found = truth & set(flagged["path"])
        recall = len(found) / len(truth) if truth else float("nan")
        precision = len(found) / len(flagged) if len(flagged) else float("nan")
        print(
            f"  {fault:<20} injected {len(truth):4d}  flagged {len(flagged):5d}  found {len(found):4d}  "
            f"recall {recall:.3f}  precision {precision:.3f}"
        )


def speed(rows: int, seed: int) -> None:
    from cleanlab.filter import find_label_issues

    from curate.labels.probe import cross_val_probabilities

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, rows)
    x = (rng.normal(0, 1, (rows, 256)) + labels[:, None] * 0.05).astype(np.float32)
    groups = np.arange(rows) // 2  # two knees per patient
    start = time.perf_counter()
    result = cross_val_probabilities(x, labels, groups, n_splits=5, seed=seed)
    probe = time.perf_counter() - start
    start = time.perf_counter()
    find_label_issues(labels=np.searchsorted(result.classes, labels), pred_probs=result.pred_probs)
    lab = time.perf_counter() - start
    print(f"{rows:,} samples x 256-d embeddings: 5-fold probe {probe:.1f} s, cleanlab {lab:.1f} s, total {probe + lab:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    demo_scores(args.scale, args.seed)
    if args.rows:  # --rows 0 skips the timing part
        speed(args.rows, args.seed)


if __name__ == "__main__":
    main()
