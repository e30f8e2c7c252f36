"""``curate browse`` and ``curate review pull``: a manifest in the FiftyOne App, and back."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, progress_reporter
from curate.cli.manifest import store_option

_DB_HELP = "FiftyOne database and image cache folder [default: $CURATE_FIFTYONE_DIR or ~/.curate/fiftyone]"


def db_option(function):
    return click.option("--db-dir", type=click.Path(path_type=Path), help=_DB_HELP)(function)


def _say(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def _load(target: str, store):
    from curate.manifest import load_manifest

    return load_manifest(target, store)


@click.command("browse")
@click.argument("target")
@store_option
@db_option
@click.option("--dataset-name", help="FiftyOne dataset name [default: NAME@VERSION of the manifest]")
@click.option("--no-launch", is_flag=True, help="only build the dataset, do not start the App")
@click.option("--port", type=int, default=5151, show_default=True, help="App port")
@click.option("--address", default="127.0.0.1", show_default=True, help="App address (0.0.0.0 to share it)")
@click.option("--catalog", type=click.Path(exists=True, path_type=Path), help="catalog table [default: found in the work folder]")
@click.option("--quality", type=click.Path(exists=True, path_type=Path), help="quality table [default: found]")
@click.option("--labels", type=click.Path(exists=True, path_type=Path), help="labels table [default: found]")
@click.option("--data-root", type=click.Path(path_type=Path), help="where the images are now [default: recorded]")
@click.option("--media-dir", type=click.Path(file_okay=False, path_type=Path),
              help="folder of the App's renderings [default: 'media' beside FIFTYONE_DATABASE_DIR, i.e. DB_DIR/media]")
@click.option("--quiet", is_flag=True, help="no progress bar")
def browse(target, store, db_dir, dataset_name, no_launch, port, address, catalog, quality, labels, data_root,
           media_dir, quiet):
    """Build (or refresh) the FiftyOne dataset of manifest TARGET and open it in the App.

    TARGET is NAME, NAME@VERSION or a version folder. Refreshing updates the dataset in
    place: reviewers' tags, saved views and workspaces are kept. Files a browser would
    show wrongly (DICOM, 16-bit, crops) are shown through cached 8-bit PNG renderings.
    Tag samples `exclude` or `relabel:KL2`, then `curate review pull TARGET -o review.csv`.
    """
    from curate.browse.context import find_context
    from curate.browse.dataset import build_dataset
    from curate.browse.db import check_port_free, import_fiftyone, media_folder

    rows = _load(target, store)
    if not no_launch:
        check_port_free(port, address)  # before the build: a taken port should not cost the build's time
    fo = import_fiftyone(db_dir)
    media = media_folder(media_dir)  # after import_fiftyone: FIFTYONE_DATABASE_DIR is then the one in use
    context = find_context(rows, store, catalog=catalog, quality=quality, labels=labels)
    with progress_reporter(not quiet) as progress:
        dataset = build_dataset(rows, name=dataset_name, context=context, media_dir=media, data_root=data_root,
                                progress=progress)
    views = ", ".join(dataset.list_saved_views()) or "none"
    _say(f"dataset {dataset.name}: {len(dataset):,} samples; saved views: {views}")
    if dataset.info.get("unrendered"):
        _say(f"{dataset.info['unrendered']:,} file(s) missing or unreadable: the App shows them as missing")
    if no_launch:
        return
    try:
        session = fo.launch_app(dataset, remote=True, port=port, address=address)
        _say(f"FiftyOne App: http://{address}:{port}  (Ctrl+C to stop)")
        session.wait(-1)
    except KeyboardInterrupt:  # Ctrl+C is how the App is stopped: not an error
        pass


@click.group("review")
def review() -> None:
    """Reviewers' decisions from the FiftyOne App: `exclude` and `relabel:<label>` tags."""


@review.command("pull")
@click.argument("target")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="review CSV to write")
@store_option
@db_option
@click.option("--dataset-name", help="FiftyOne dataset name [default: NAME@VERSION of the manifest]")
def pull(target, output, store, db_dir, dataset_name):
    """Write the decisions tagged on manifest TARGET's dataset to a CSV (sample_id, action, new_label, tag)."""
    from curate.browse.dataset import dataset_name as default_name
    from curate.browse.db import import_fiftyone
    from curate.browse.review import pull_review, write_review
    from curate.errors import CurateError

    name = dataset_name or default_name(_load(target, store).attrs["card"])
    fo = import_fiftyone(db_dir)
    if name not in fo.list_datasets():
        raise CurateError(f"no FiftyOne dataset {name!r}: run `curate browse {target} --no-launch` first")
    table = pull_review(fo.load_dataset(name))
    write_review(table, output)
    counts = table["action"].value_counts().to_dict()
    _say(f"{output}: {counts.get('exclude', 0)} exclude, {counts.get('relabel', 0)} relabel decision(s) from {name}")
