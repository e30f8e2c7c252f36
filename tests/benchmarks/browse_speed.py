"""Seconds to build the FiftyOne dataset of a 10,000-sample manifest (no rendering: PNG paths).

Run:  .venv/bin/python tests/benchmarks/browse_speed.py [--samples 10000]

Starts its own mongod on a free local port (FiftyOne's bundled binary) in a temporary
folder unless FIFTYONE_DATABASE_URI is set, so the figure is the build, not the server's start.
Figures only.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_manifest(n: int) -> pd.DataFrame:
    """Manifest rows with flags, duplicates and label columns; files are not read (PNG paths are used as is)."""
    rng = np.random.default_rng(0)
    ids = [f"{i:016x}" for i in range(n)]
    flags = np.where(rng.random(n) < 0.05, "blurred|outlier_sharpness", "")
    rows = pd.DataFrame({
        "sample_id": ids, "path": [f"{i % 5}/{9000000 + i // 2}{'LR'[i % 2]}.png" for i in range(n)],
        "sha256": [f"{i:064x}" for i in range(n)], "label": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "split": rng.choice(["train", "val", "test"], n, p=[0.7, 0.1, 0.2]),
        "patient_id": [str(9000000 + i // 2) for i in range(n)], "weight": 1.0, "repeat": 1, "flags": flags,
        "label_quality": rng.random(n), "is_label_issue": rng.random(n) < 0.03,
        "suggested_label": pd.array(rng.integers(0, 5, n), dtype="Int64"),
    })
    rows.attrs["card"] = {"name": "browse-bench", "version": f"n{n}", "data_root": "/nonexistent"}
    return rows


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    from curate.browse.db import check_mongod, mongod_path

    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if not os.environ.get("FIFTYONE_DATABASE_URI"):
            check_mongod()
            port = _free_port()
            server = subprocess.Popen([str(mongod_path()), "--dbpath", tmp, "--port", str(port), "--bind_ip",
                                       "127.0.0.1", "--nounixsocket", "--logpath", f"{tmp}/mongod.log"])
            os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
        try:
            from curate.browse.dataset import build_dataset
            from curate.browse.db import import_fiftyone

            import_fiftyone(Path(tmp) / "fo")
            rows = synthetic_manifest(args.samples)
            start = time.perf_counter()
            dataset = build_dataset(rows, media_dir=Path(tmp) / "media")
            seconds = time.perf_counter() - start
            print(f"{len(dataset):,} samples built in {seconds:.1f} s ({len(dataset) / seconds:,.0f} samples/s); "
                  f"saved views: {', '.join(dataset.list_saved_views())}")
            dataset.delete()
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
