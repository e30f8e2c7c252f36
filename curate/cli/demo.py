"""``curate demo OUT_DIR``: write the synthetic knee dataset with known faults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from curate.cli._output import console, print_json, progress_bar


@click.command("demo")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="random seed: same seed, same bytes")
@click.option("--scale", type=float, default=1.0, show_default=True, help="multiply the published class counts")
@click.option("--overwrite", is_flag=True, help="replace OUT_DIR if it exists")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def demo(out_dir: Path, seed: int, scale: float, overwrite: bool, as_json: bool) -> None:
    """Write synthetic knee radiographs in the public KL layout, with injected faults listed in faults.csv."""
    from curate.demo import make_demo, plan_demo

    total = plan_demo(seed=seed, scale=scale).total
    with progress_bar(total, "generating", enabled=not as_json) as advance:
        summary = make_demo(out_dir, seed=seed, scale=scale, overwrite=overwrite, progress=advance)
    if as_json:
        data = dataclasses.asdict(summary)
        data["out_dir"] = str(summary.out_dir)
        print_json(data)
        return
    console.print(str(summary), highlight=False)
