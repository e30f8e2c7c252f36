"""Export throughput with trainer-side preprocessing, against the scan of the same files.

Run:  .venv/bin/python tests/benchmarks/export_speed.py [--data DIR] [--recipe R] [--size 336] [--fit pad] [--workers 2] [--repeat 2]
Real knees (val/test only, re-split by patient):
      --data ../shared/data/knee_kl_valtest --recipe recipes/oai_kl_full.yaml
      --set split.method=new --set 'split.fractions=[0.7,0.1,0.2]' --set split.freeze=null

Builds the full manifest of the demo (recipes/demo_full.yaml: every usable train image
and the official val/test, 8,165 images) from --data (default: the default demo,
generated into a temporary folder), then times, alternating, best of --repeat:
  - `curate scan` of the manifest's files (no cache, duplicates and rules included),
  - `curate export --format llava --size 336 --fit pad` (every image decoded, resized,
    encoded and written as PNG),
with the same number of processes, and prints images/s and their ratio (target: the
export at least 0.5 of the scan). Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a demo data folder [default: generate the default demo]")
    parser.add_argument("--size", type=int, default=336)
    parser.add_argument("--fit", default="pad")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--recipe", type=Path, default=RECIPES / "demo_full.yaml",
                        help="recipe whose manifest is exported, run on --data [default: the demo's full set]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override KEY=VALUE")
    args = parser.parse_args()

    from curate.catalog import read_catalog
    from curate.demo import make_demo
    from curate.export import export_manifest
    from curate.manifest import open_manifest
    from curate.parallel import Executor
    from curate.quality.scan import scan
    from curate.recipe import load_recipe, run_recipe
    from curate.rendering import Preprocessing

    # the outputs go beside the data (the current folder without --data), on the disk the scan
    # reads: creating files in this machine's /tmp costs 0.7 ms each against 0.05 ms in /work
    where = args.data.resolve().parent if args.data and os.access(args.data.resolve().parent, os.W_OK) else Path.cwd()
    with tempfile.TemporaryDirectory(prefix=".curate-export-bench-", dir=where) as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            data = tmp / "demo"
            make_demo(data, seed=0, scale=1.0, workers=args.workers)
        recipe = load_recipe(args.recipe, data_root=data, overrides=["exports=[]", *args.overrides])
        result = run_recipe(recipe, store=tmp / "store", work=tmp / "work")
        manifest = open_manifest(result["ref"], tmp / "store")
        n = len(manifest.rows)
        catalog = read_catalog(next((tmp / "work" / "catalog").rglob("catalog.parquet")))
        catalog = catalog[catalog["sample_id"].isin(manifest.rows["sample_id"])].reset_index(drop=True)
        executor = Executor(workers=args.workers)
        preprocessing = Preprocessing(size=args.size, fit=args.fit)
        print(f"{n:,} images in the manifest {manifest.ref}; {args.workers} processes; "
              f"export preprocessing: size {args.size}, fit {args.fit}")

        scan_best = export_best = float("inf")
        for k in range(args.repeat):
            start = time.perf_counter()
            scan(catalog, executor=executor, cache_dir=False)
            scan_best = min(scan_best, time.perf_counter() - start)
            out = tmp / f"export-{k}"
            start = time.perf_counter()
            record = export_manifest(manifest, "llava", out, preprocessing=preprocessing, executor=executor)
            export_best = min(export_best, time.perf_counter() - start)
            rendered = record["images"]["rendered"]
            shutil.rmtree(out)
        print(f"curate scan                       {n / scan_best:8,.0f} images/s  ({scan_best:.2f} s)")
        print(f"curate export --size {args.size} --fit {args.fit:5s} {rendered / export_best:8,.0f} images/s  "
              f"({export_best:.2f} s, {rendered:,} rendered)")
        print(f"export / scan                     {(rendered / export_best) / (n / scan_best):8.2f}  (target 0.5)")


if __name__ == "__main__":
    main()
