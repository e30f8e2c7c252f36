"""``curate scan CATALOG -o quality.parquet``: measure, flag, group duplicates, report leakage."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json, progress_reporter
from curate.errors import CurateError


def _parse_thresholds(values: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--threshold")
        parsed[name.strip()] = value.strip()
    return parsed


@click.command("scan")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="quality Parquet file to write")
@click.option("--workers", type=click.IntRange(min=1), help="local worker processes [default: all cores]")
@click.option("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
@click.option("--dask-local", is_flag=True, help="start a Dask LocalCluster with --workers processes")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE", help="override a rule threshold (repeatable)")
@click.option("--data-root", type=click.Path(path_type=Path), help="folder the catalog's paths are relative to")
@click.option("--no-cache", is_flag=True, help="measure every file again, ignoring the cache")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="measure cache folder [default: ~/.cache/curate]")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def scan(catalog, output, workers, scheduler, dask_local, thresholds, data_root, no_cache, cache_dir, as_json):
    """Measure every image once; flag quality problems, duplicates, DICOM issues and leakage."""
    from curate.quality.io import scan_to_file
    from curate.quality.scan import NoFileFound

    try:
        with progress_reporter(enabled=not as_json) as progress:
            summary = scan_to_file(
                catalog,
                output,
                workers=workers,
                scheduler=scheduler,
                dask_local=dask_local,
                thresholds=_parse_thresholds(thresholds),
                data_root=data_root,
                cache_dir=False if no_cache else cache_dir,
                progress=progress,
            )
    except NoFileFound as exc:
        if data_root is not None or _records_data_root(catalog):
            raise
        # The usual cause: a catalog written by other tools, whose files were then looked for beside it.
        raise CurateError(
            f"{catalog}: records no data root (it was not written by `curate ingest`), so its files were "
            f"looked for beside it, in {exc.root}, where none of its {exc.count:,} is (first: {exc.first}); "
            "pass --data-root"
        ) from None
    if as_json:
        print_json(summary)
    else:
        print_quality_summary(summary)
        console.print(f"wrote {output}")


def _records_data_root(catalog: Path) -> bool:
    """Whether the catalog file records its data root (only its Parquet footer is read)."""
    import pyarrow.parquet as pq

    from curate.catalog import _METADATA_KEY  # private there: curate.catalog offers no public test of it

    try:
        metadata = pq.read_schema(catalog).metadata or {}
    except (OSError, ValueError):  # unreadable: scan_to_file has said so already
        return True
    return _METADATA_KEY in metadata


@click.group("quality")
def quality() -> None:
    """Inspect a quality table written by `curate scan`."""


@quality.command("show")
@click.argument("quality_file", type=click.Path(path_type=Path))
@click.option("--catalog", type=click.Path(path_type=Path), help="the catalog, for the leakage report")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def show(quality_file, catalog, as_json):
    """Print counts per flag and per reason."""
    from curate.quality.io import read_quality_summary

    summary = read_quality_summary(quality_file, catalog)
    if as_json:
        print_json(summary)
    else:
        print_quality_summary(summary)


def print_quality_summary(summary: dict) -> None:
    from rich.table import Table

    console.print(f"{summary['samples']:,} samples, {summary['readable']:,} readable")
    if summary["errors"]:
        console.print("unreadable: " + ", ".join(f"{k} {v:,}" for k, v in summary["errors"].items()))
    table = Table(title="flags")
    table.add_column("flag")
    table.add_column("samples", justify="right")
    table.add_column("example")
    for name, info in summary["flags"].items():
        table.add_row(name, f"{info['count']:,}", info["examples"][0] if info["examples"] else "")
    console.print(table)
    d = summary["duplicates"]
    console.print(
        f"duplicate groups: {d['groups']:,} ({d['groups_with_near_members']:,} with near duplicates), "
        f"{d['redundant_samples']:,} redundant samples, "
        f"{d['label_conflict_groups']:,} with conflicting labels, {d['cross_split_groups']:,} crossing splits"
    )
    if "leakage" in summary:
        leak = summary["leakage"]
        console.print(f"patients in more than one split: {leak['patients_in_several_splits']:,}")
    if "timing" in summary:
        tm = summary["timing"]
        console.print(
            f"{tm['measured']:,} images measured, {tm['cached']:,} from cache, {tm['seconds']:.1f} s ({tm['executor']})"
        )
