"""Shared printing: progress bars and tables on stderr/stdout, JSON for machines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["progress_bar", "progress_reporter", "print_json", "console", "counts_table"]

console = Console()
err_console = Console(stderr=True)


def _columns() -> tuple:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )


@contextlib.contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield ``start(description, total) -> advance(n)``: one live display on stderr, a bar per phase.

    The API's long functions take such a ``progress`` factory. The display starts
    with the first phase (an error before any work prints nothing else) and is
    closed with the block, whatever happened inside it; its bars are transient, the
    command prints what was done.
    """
    holder: dict[str, Progress] = {}

    def start(description: str, total: int) -> Callable[[int], None]:
        if not enabled or total <= 0:  # nothing to show (e.g. everything came from the cache)
            return lambda n=1: None
        if "live" not in holder:
            holder["live"] = Progress(*_columns(), console=err_console, transient=True)
            holder["live"].start()
        progress = holder["live"]
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int = 1) -> None:
            progress.advance(task, n)
            speed = progress.tasks[task].speed
            if speed:
                progress.update(task, rate=f"{speed:,.0f}/s")

        return advance

    try:
        yield start
    finally:
        if "live" in holder:
            holder["live"].stop()


@contextlib.contextmanager
def progress_bar(total: int, description: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)`` for a single bar with its rate."""
    with progress_reporter(enabled) as start:
        yield start(description, total)


def print_json(data: object) -> None:
    """Print ``data`` as JSON on stdout (nothing else goes to stdout in --json mode)."""
    click_echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def click_echo(text: str) -> None:
    import click

    click.echo(text)


def counts_table(title: str, by_split: dict[str, dict[str, int]]) -> Table:
    """A split x label table of counts with totals."""
    labels = sorted({label for row in by_split.values() for label in row}, key=_natural)
    table = Table(title=title)
    table.add_column("split")
    for label in labels:
        table.add_column(str(label), justify="right")
    table.add_column("total", justify="right")
    for split, row in by_split.items():
        table.add_row(split, *(f"{row.get(label, 0):,}" for label in labels), f"{sum(row.values()):,}")
    return table


def _natural(text: str) -> tuple[int, float, str]:
    try:
        return 0, float(text), text
    except ValueError:
        return 1, 0.0, text
