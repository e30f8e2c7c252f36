"""``curate export M --format F -o DIR``: write a manifest in a format a trainer reads."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json, progress_reporter
from curate.cli.manifest import json_option, store_option

_FORMATS = ("llava", "hf-imagefolder", "imagefolder", "csv", "jsonl", "croissant")


@click.command("export")
@click.argument("ref", metavar="M")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True, help="the trainer format")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="new (or empty) folder")
@store_option
@click.option(
    "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink", show_default=True,
    help="how plain 8-bit image files are put in place (16-bit, DICOM and crops are always rendered)",
)
@click.option("--data-root", type=click.Path(path_type=Path), help="where the images are now [default: recorded]")
@click.option("--question", help="llava question template [default: the KL question]")
@click.option("--answer", help="llava answer template, e.g. 'KL grade {label}'")
@click.option("--size", type=click.IntRange(min=1, max=16384), help="square output side in pixels, e.g. 336")
@click.option("--fit", type=click.Choice(["pad", "crop", "stretch"]), help="how --size is reached [default: pad]")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), help="bits per pixel written [default: 8]")
@click.option("--window", type=click.Choice(["decoder", "percentile"]),
              help="decoder: the DICOM window, else the stored range; percentile: --percentiles [default: decoder]")
@click.option("--percentiles", help="low,high grey-level percentiles of the percentile window [default: 0.5,99.5]")
@click.option("--clahe/--no-clahe", default=None, help="contrast-limited adaptive histogram equalization")
@click.option("--image-format", type=click.Choice(["png", "jpeg"]), help="file format of rendered images [default: png]")
@click.option("--workers", type=click.IntRange(min=1), help="local processes rendering images [default: all cores]")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the private catalog of a de-identified manifest [default: found in the work folder]")
@click.option("--quiet", is_flag=True, help="no progress bar")
@json_option
def export(ref, fmt, output, store, link, data_root, question, answer, size, fit, bit_depth, window, percentiles,
           clahe, image_format, workers, catalog, quiet, as_json):
    """Export manifest M (NAME, NAME@VERSION or a version folder) for a trainer.

    A sample repeated n times appears n times in llava lists and hf-imagefolder
    metadata; imagefolder, csv, jsonl and croissant hold it once (with its repeat column in
    csv/jsonl/croissant). croissant writes a Croissant JSON-LD description with every file's sha256.
    Images a plain Pillow reader shows correctly (8-bit gray or RGB) are linked; the rest,
    and every image when a preprocessing option is given, are rendered by curate's decoder.
    What was done to pixels is recorded in the export and in the manifest's export log.
    """
    from curate.export import export_manifest
    from curate.manifest import open_manifest
    from curate.parallel import Executor
    from curate.rendering import Preprocessing

    preprocessing = Preprocessing.from_dict(
        {"size": size, "fit": fit, "bit_depth": int(bit_depth) if bit_depth else None, "window": window,
         "percentiles": percentiles, "clahe": clahe, "image_format": image_format}
    )
    from curate.recipe.runner import private_catalog

    manifest = open_manifest(ref, store)
    sources = private_catalog(manifest, store, catalog)
    with progress_reporter(not quiet and not as_json) as progress:
        record = export_manifest(
            manifest, fmt, output, link=link, data_root=data_root, question=question, answer=answer,
            preprocessing=preprocessing, executor=Executor(workers=workers), progress=progress, catalog=sources,
        )
    if as_json:
        print_json(record)
        return
    images = record["images"]
    console.print(
        f"exported {record['ref']} as {fmt} to {output}: {images['linked']:,} image(s) linked, "
        f"{images['rendered']:,} rendered; pixels {record['pixels_id']}",
        soft_wrap=True, markup=False, highlight=False,
    )
    for reason, count in images["why_rendered"].items():
        console.print(f"  rendered ({reason}): {count:,}", soft_wrap=True, markup=False, highlight=False)
