"""How much better ``diverse`` covers a class than ``random``: figures, no assertion.

Run:  .venv/bin/python tests/benchmarks/select_diverse.py [--seeds 10]

For each data set and per-class budget, balanced subsets are drawn with each
strategy over several seeds, and for every class member the distance to the
nearest selected member of its class is measured (features standardised over the
train split, as ``diverse`` sees them). Printed: the mean over members (how far a
typical image is from one trained on) and the maximum (the covering radius), each
averaged over classes and seeds, and diverse / random.

Data sets:
- synthetic: 900 patients, 1-4 samples each, 5 classes of 8 blobs of very unequal
  size in 6 dimensions (a common look and rarer ones);
- knee_kl_sample (when ../shared/data/knee_kl_sample exists): the 200 real train
  radiographs (40 per KL grade), 16x16 thumbnails reduced to 16 principal components.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
KNEE_SAMPLE = ROOT.parent / "shared" / "data" / "knee_kl_sample"
STRATEGIES = ("random", "one-per-patient", "k-center", "diverse")


def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    p = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    rows = []
    for i in range(900):
        split = rng.choice(["train", "val", "test"], p=[0.7, 0.1, 0.2])
        for j in range(int(rng.integers(1, 5))):
            rows.append({"sample_id": f"s{i:04d}_{j}", "path": f"{i}_{j}.png", "label": int(rng.choice(5, p=p)),
                         "patient_id": f"p{i:04d}", "source": "synthetic", "official_split": split})
    catalog = pd.DataFrame(rows)
    dims, blobs = 6, 8
    sizes = 1.0 / np.arange(1, blobs + 1) ** 1.5
    points = np.empty((len(catalog), dims))
    for label in range(5):
        members = np.flatnonzero(catalog["label"].to_numpy() == label)
        centers = rng.normal(scale=4.0, size=(blobs, dims))
        blob = rng.choice(blobs, size=len(members), p=sizes / sizes.sum())
        points[members] = centers[blob] + rng.normal(scale=0.5, size=(len(members), dims))
    features = pd.DataFrame(points, index=pd.Index(catalog["sample_id"], name="sample_id")).add_prefix("f")
    return catalog, features


def knee_sample() -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if not KNEE_SAMPLE.is_dir():
        return None
    from PIL import Image
    from sklearn.decomposition import PCA

    from curate.catalog import absolute_paths
    from curate.imaging import read_image
    from curate.loaders import load

    catalog = load("oai-kl", KNEE_SAMPLE).catalog
    thumbs = []
    for path in absolute_paths(catalog):
        pixels = read_image(path).as_uint8()
        thumbs.append(np.asarray(Image.fromarray(pixels).resize((16, 16), Image.BILINEAR), dtype=float).ravel() / 255)
    components = PCA(n_components=16, random_state=0).fit_transform(np.array(thumbs))
    features = pd.DataFrame(components, index=pd.Index(catalog["sample_id"], name="sample_id")).add_prefix("pc")
    return catalog, features


def measure(
    catalog: pd.DataFrame, features: pd.DataFrame, per_class: int, seeds: int
) -> dict[str, tuple[float, float]]:
    from curate.select import BalancedSampler, coverage, select

    out = {}
    classes = catalog["label"].nunique()
    for strategy in STRATEGIES:
        means, maxima = [], []
        for seed in range(seeds):
            sampler = BalancedSampler(n=per_class * classes, strategy=strategy, short="available")
            table = coverage(select(catalog, features=features, sampler=sampler, seed=seed), features)
            means.append(table["mean_distance"].mean())
            maxima.append(table["max_distance"].mean())
        out[strategy] = (float(np.mean(means)), float(np.mean(maxima)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    datasets = {"synthetic": (synthetic(), (5, 15, 40))}
    knees = knee_sample()
    if knees is None:
        print(f"(knee_kl_sample not found at {KNEE_SAMPLE}: real-data rows skipped)")
    else:
        datasets["knee_kl_sample"] = (knees, (5, 10, 20))

    print(f"{'data':<15} {'per class':>9} {'strategy':<16} {'mean dist':>9} {'max dist':>9} {'mean vs random':>14}")
    for name, ((catalog, features), budgets) in datasets.items():
        for per_class in budgets:
            start = time.perf_counter()
            figures = measure(catalog, features, per_class, args.seeds)
            base = figures["random"][0]
            for strategy, (mean, worst) in figures.items():
                print(f"{name:<15} {per_class:>9} {strategy:<16} {mean:>9.3f} {worst:>9.3f} {mean / base:>14.2f}")
            print(f"{'':<15} {'':>9} ({args.seeds} seeds, {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
