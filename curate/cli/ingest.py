"""``curate ingest LOADER SOURCE -o catalog.parquet``: one subcommand per registered loader."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, counts_table, print_json
from curate.errors import CurateError
from curate.loaders.base import Loader, Option, available_loaders, loader_class

_TYPES = {str: click.STRING, int: click.INT, float: click.FLOAT, bool: click.BOOL}


class _LoaderGroup(click.Group):
    """Builds a subcommand for each loader from its declared options, so plug-ins get one too."""

    def list_commands(self, ctx):
        return list(available_loaders())

    def get_command(self, ctx, name):
        if name not in available_loaders():
            return None
        try:
            cls = loader_class(name)
        except CurateError as exc:
            return _broken_command(name, str(exc))
        return _loader_command(name, cls)


def _broken_command(name: str, message: str) -> click.Command:
    def callback(**_):
        raise CurateError(message)

    return click.Command(
        name, callback=callback, params=[click.Argument(["args"], nargs=-1)], short_help="(broken) " + message
    )


def _click_option(opt: Option) -> click.Option:
    flag = "--" + opt.name.replace("_", "-")
    if opt.type is Path:
        kind = click.Path(path_type=Path)
    elif opt.choices:
        kind = click.Choice(opt.choices)
    else:
        kind = _TYPES.get(opt.type, click.STRING)
    default_help = f" [default: {opt.default}]" if opt.default not in (None, ()) else ""
    return click.Option(
        [flag], opt.name, type=kind, multiple=opt.multiple, default=None, help=opt.help + default_help
    )


def _loader_command(name: str, loader_cls: type[Loader]) -> click.Command:
    def callback(source: Path, output: Path, as_json: bool, deid_key_file: Path | None, deid_dates: str, **options):
        ingest_to_file(name, source, output, as_json=as_json, deid_key_file=deid_key_file, deid_dates=deid_dates,
                       **options)

    params = [
        click.Argument(["source"], type=click.Path(path_type=Path)),
        click.Option(["-o", "--output"], type=click.Path(path_type=Path), required=True, help="catalog Parquet file to write"),
        click.Option(["--json", "as_json"], is_flag=True, help="print the summary as JSON"),
        click.Option(["--deid-key-file"], type=click.Path(path_type=Path),
                     help="de-identify with this secret key (kept outside the repository): keyed patient "
                          "pseudonyms, shifted dates, no identifying columns"),
        click.Option(["--deid-dates"], type=click.Choice(["shift", "drop"]), default="shift", show_default=True,
                     help="with --deid-key-file: shift each patient's dates by one amount, or drop them"),
        *(_click_option(opt) for opt in loader_cls.options),
    ]
    return click.Command(name, callback=callback, params=params, help=loader_cls.__doc__, short_help=loader_cls.summary)


def ingest_to_file(
    name: str,
    source: Path,
    output: Path,
    *,
    as_json: bool = False,
    deid_key_file: Path | None = None,
    deid_dates: str = "shift",
    **options,
) -> None:
    """Run a loader, de-identify when asked, write the catalog (and its problems, if any) and print the summary."""
    from curate.catalog import write_catalog
    from curate.loaders import load
    from curate.summary import catalog_summary
    from curate._io import atomic_path

    from curate._io import refuse_foreign

    refuse_foreign(output)  # before the loader's work
    options = {k: (v if v != () else None) for k, v in options.items() if v is not None and v != ()}
    deid = None
    if deid_key_file is not None:
        from curate.deid import Deid, read_key

        deid = Deid(read_key(deid_key_file), dates=deid_dates)  # checked before the loader's work
    result = load(name, source, **options)
    catalog = result.catalog
    if deid is not None:
        from curate.deid import deidentify_catalog

        catalog, _ = deidentify_catalog(catalog, deid)
    write_catalog(catalog, output, result.data_root)
    problems_path = output.with_name(output.stem + ".problems.csv")
    if len(result.problems):
        with atomic_path(problems_path) as tmp:
            result.problems.to_csv(tmp, index=False)
    elif problems_path.exists():
        problems_path.unlink()  # a stale list from an earlier run would mislead
    summary = catalog_summary(catalog, result.problems)
    summary.update(catalog=str(output), data_root=str(result.data_root))
    if deid is not None:
        summary["deid"] = catalog.attrs["deid"]
    if len(result.problems):
        summary["problems_file"] = str(problems_path)
    if as_json:
        print_json(summary)
        return
    console.print(counts_table(f"{summary['samples']:,} samples, {summary['patients']:,} patients", summary["by_split"]))
    if "sides" in summary:
        console.print("sides: " + ", ".join(f"{k} {v:,}" for k, v in summary["sides"].items()))
    if summary["problems"]:
        console.print(f"[yellow]problems ({len(result.problems):,}), all listed in {problems_path}:[/yellow]")
        for kind, info in summary["problems"].items():
            console.print(f"  {kind}: {info['count']:,}  e.g. {info['examples'][0]}")
    else:
        console.print("problems: none")
    if deid is not None:
        record = summary["deid"]
        console.print(f"de-identified with key {record['key_id']}: pseudonymized {', '.join(record['pseudonymized'])}; "
                      f"dates {record['dates']} ({', '.join(record['shifted']) or 'none found'}); "
                      f"dropped {', '.join(record['dropped']) or 'nothing'}", highlight=False, markup=False)
    console.print(f"wrote {output} (data root {result.data_root})")


@click.group("ingest", cls=_LoaderGroup)
def ingest() -> None:
    """Read a source into a catalog (one row per sample). See `curate ingest LOADER --help`."""
