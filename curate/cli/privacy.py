"""``curate phi-check DIR --source DICOMS``: is any identifying header value in what was written?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curate.cli._output import console, print_json


def _say(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


@click.command("phi-check")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--source", "sources", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path),
              help="DICOM file or folder whose headers hold the identifying values (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def phi_check(folders, sources, as_json):
    """Search FOLDERS (exports, manifests, work tables) for the sources' identifying DICOM values.

    The values are those of the DICOM PS3.15 basic profile's attributes in every header
    under --source (names, IDs, birth dates, institutions, accession numbers, UIDs,
    dates). Tables, JSON and text files, PNG text chunks, file names and link targets
    are read. Hits name the file and the attribute, never the value. Exit code 1 when
    anything is found.
    """
    from curate.deid import find_phi, phi_values

    files = [p for s in sources for p in ([s] if s.is_file() else sorted(q for q in s.rglob("*") if q.is_file()))]
    values = phi_values(files)
    hits = [hit for folder in folders for hit in find_phi(folder, values)]
    if as_json:
        print_json({"values_searched": sum(map(len, values.values())), "hits": hits})
    else:
        for hit in hits[:50]:
            _say(f"found: {hit['attribute']} in {hit['file']} ({hit['where']})")
        if len(hits) > 50:
            _say(f"... and {len(hits) - 50:,} more")
        searched = sum(map(len, values.values()))
        _say(f"{len(hits):,} identifying value(s) found" if hits else
             f"no identifying value found ({searched:,} values of {len(values)} attributes from {len(files):,} files)")
    if hits:
        sys.exit(1)
