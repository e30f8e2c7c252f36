"""The ``curate`` command line: parse, call the Python API, print."""

from __future__ import annotations

import sys

import click

from curate.errors import CurateError


class _CurateGroup(click.Group):
    """Turns a user's mistake (:class:`CurateError`, a bad option) into one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CurateError as exc:
            click.echo(f"curate: error: {exc}", err=True)
            sys.exit(2)
        except click.UsageError as exc:
            # click prints usage, a hint and the message on three lines; one line names it all
            where = exc.ctx.command_path if exc.ctx is not None else "curate"
            click.echo(f"curate: error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(2)


@click.group(cls=_CurateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="curate")
def main() -> None:
    """Curate medical-imaging collections into training sets you can trust and reproduce."""


def _register() -> None:
    # Imported here so that `curate --help` does not pay for every command's imports.
    from curate.cli.browse import browse, review
    from curate.cli.demo import demo
    from curate.cli.export import export
    from curate.cli.ingest import ingest
    from curate.cli.manifest import manifest
    from curate.cli.privacy import phi_check
    from curate.cli.labels import labels
    from curate.cli.run import run
    from curate.cli.scan import quality, scan
    from curate.cli.select import select

    main.add_command(ingest)
    main.add_command(labels)
    main.add_command(demo)
    main.add_command(scan)
    main.add_command(quality)
    main.add_command(select)
    main.add_command(manifest)
    main.add_command(export)
    main.add_command(run)
    main.add_command(browse)
    main.add_command(review)
    main.add_command(phi_check)


_register()
