"""Label-noise findings against the demo's injected label flips, and the probe's speed at scale.

Run:  .venv/bin/python tests/benchmarks/label_noise.py [--scale 1.0] [--seed 0 [1 2 ...]] [--rows 100000]
          [--ceiling] [--no-prune]

1. Generates the demo (default scale 1: the default demo), scans it, runs `find_label_noise` with the
   built-in features and prints, for distant flips (grade distance >= 2) and adjacent
   flips separately: injected, flagged, found, recall and precision, plus the probe's
   accuracy, balanced accuracy and quadratic kappa. With several seeds (one demo each),
   also the totals over all of them: a single demo's 40 distant flips move the figures
   by 0.025 per knee. --no-prune fits each fold on all its training samples (see
   `find_label_noise(prune_distant=...)`), for comparison.
2. With --ceiling, how well the grades can be read at all: the same patient-grouped
   probe fitted on the signs each knee was drawn with (joint-space widths, spur sizes,
   sclerosis, deformity, cysts; see `curate.demo.knee_truth`) instead of on the built-in
   features, as the share of each shown grade read as each grade by both probes.
3. Times the patient-grouped 5-fold probe and cleanlab on --rows samples with
   256-dimensional synthetic embeddings. Figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def demo_scores(scale: float, seed: int, ceiling: bool, prune: bool) -> dict[str, tuple[int, int, int]]:
    """Print the demo's figures; return (injected, flagged, found) per kind of flip."""
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
        result = find_label_noise(catalog, features, quality=quality, seed=seed, prune_distant=prune)
        faults = pd.read_csv(root / "faults.csv")
    table = result.table.merge(catalog[["sample_id", "path", "patient_id"]], on="sample_id")
    issues = table[table["is_label_issue"]]
    print(f"demo seed {seed}, scale {scale}: {result.metrics['fitted']:,} samples fitted, probe {result.metrics['classifier']}")
    pruned = result.metrics["pruned_per_fold"]
    print(f"distant training labels left out per fold: {pruned}" if pruned else "no training labels left out")
    print(
        "probe: accuracy {accuracy:.3f}, balanced accuracy {balanced_accuracy:.3f}, "
        "quadratic kappa {quadratic_kappa:.3f}".format(**result.metrics)
    )
    counts = {}
    for fault, flagged in (
        ("label_flip_distant", issues[issues["grade_distance"] >= 2]),
        ("label_flip_adjacent", issues[issues["grade_distance"] == 1]),
    ):
        truth = set(faults.loc[faults["fault"] == fault, "file"])
        found = truth & set(flagged["path"])
        counts[fault] = (len(truth), len(flagged), len(found))
        _print_scores(fault, *counts[fault])
    if ceiling:
        _print_ceiling(table[table["fitted"]], scale, seed, prune)
    return counts


def _print_scores(fault: str, injected: int, flagged: int, found: int) -> None:
    recall = found / injected if injected else float("nan")
    precision = found / flagged if flagged else float("nan")
    print(
        f"  {fault:<20} injected {injected:4d}  flagged {flagged:5d}  found {found:4d}  "
        f"recall {recall:.3f}  precision {precision:.3f}"
    )


def _print_ceiling(fitted: pd.DataFrame, scale: float, seed: int, prune: bool) -> None:
    """Shown grade -> suggested grade, for the built-in probe and a probe on the drawn signs."""
    from curate.demo import knee_truth, plan_demo
    from curate.labels.probe import cross_val_probabilities

    truth = knee_truth(plan_demo(seed=seed, scale=scale)).set_index("relpath")
    rows = fitted[fitted["path"].isin(truth.index)]
    drawn = truth.loc[rows["path"]]
    signs = drawn.drop(columns=["grade", "severity"]).to_numpy(dtype=np.float64)
    given = rows["given_label"].to_numpy(dtype=np.int64)
    probe = cross_val_probabilities(
        signs, given, rows["patient_id"].astype(str).to_numpy(), classifier="ordinal", seed=seed,
        nonlinear_columns=list(range(signs.shape[1])), prune_distant=prune,
    )
    on_signs = probe.classes[probe.pred_probs.argmax(axis=1)]
    shown = drawn["grade"].to_numpy()
    print("  shown grade -> suggested grade (share of the shown grade's fitted knees)")
    for name, suggested in (("built-in features", rows["suggested_label"].to_numpy(dtype=np.int64)), ("drawn signs", on_signs)):
        shares = pd.crosstab(pd.Series(shown, name="shown"), pd.Series(suggested, name="suggested"), normalize="index")
        print(f"  probe on {name}:")
        print("    " + shares.round(3).to_string().replace("\n", "\n    "))


def speed(rows: int, seed: int, prune: bool) -> None:
    from cleanlab.filter import find_label_issues

    from curate.labels.probe import cross_val_probabilities

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, rows)
    x = (rng.normal(0, 1, (rows, 256)) + labels[:, None] * 0.05).astype(np.float32)
    groups = np.arange(rows) // 2  # two knees per patient
    start = time.perf_counter()
    result = cross_val_probabilities(x, labels, groups, n_splits=5, seed=seed, prune_distant=prune)
    probe = time.perf_counter() - start
    start = time.perf_counter()
    find_label_issues(labels=np.searchsorted(result.classes, labels), pred_probs=result.pred_probs)
    lab = time.perf_counter() - start
    kind = "pruning each fold's distant labels" if prune else "no pruning"
    print(f"{rows:,} samples x 256-d embeddings, {kind}: 5-fold probe {probe:.1f} s, cleanlab {lab:.1f} s, total {probe + lab:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one demo per seed")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--ceiling", action="store_true", help="also fit the probe on the drawn signs")
    parser.add_argument("--no-prune", dest="prune", action="store_false", help="fit each fold on all its training labels")
    args = parser.parse_args()
    totals: dict[str, list[int]] = {}
    for seed in args.seed:
        for fault, counts in demo_scores(args.scale, seed, args.ceiling, args.prune).items():
            totals[fault] = [a + b for a, b in zip(totals.get(fault, [0, 0, 0]), counts)]
    if len(args.seed) > 1:
        print(f"all {len(args.seed)} demos:")
        for fault, counts in totals.items():
            _print_scores(fault, *counts)
    if args.rows:  # --rows 0 skips the timing part
        speed(args.rows, args.seed[0], args.prune)


if __name__ == "__main__":
    main()
