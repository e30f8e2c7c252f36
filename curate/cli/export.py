"""``curate export M --format F -o DIR``: write a manifest in a format a trainer reads."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json
from curate.cli.manifest import json_option, store_option

_FORMATS = ("llava", "hf-imagefolder", "imagefolder", "csv", "jsonl")


@click.command("export")
@click.argument("ref", metavar="M")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True, help="the trainer format")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="new (or empty) folder")
@store_option
@click.option(
    "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink", show_default=True,
    help="how image files are put in place (DICOM and crops are always written as PNG)",
)
@click.option("--data-root", type=click.Path(path_type=Path), help="where the images are now [default: recorded]")
@click.option("--question", help="llava question template [default: the KL question]")
@click.option("--answer", help="llava answer template, e.g. 'KL grade {label}'")
@json_option
def export(ref, fmt, output, store, link, data_root, question, answer, as_json):
    """Export manifest M (NAME, NAME@VERSION or a version folder) for a trainer.

    A sample repeated n times appears n times in llava lists and hf-imagefolder
    metadata; imagefolder, csv and jsonl hold it once (with its repeat column in csv/jsonl).
    """
    from curate.export import export_manifest
    from curate.manifest import open_manifest

    record = export_manifest(
        open_manifest(ref, store), fmt, output, link=link, data_root=data_root, question=question, answer=answer
    )
    if as_json:
        print_json(record)
    else:
        console.print(f"exported {record['ref']} as {fmt} to {output}", soft_wrap=True, markup=False, highlight=False)
