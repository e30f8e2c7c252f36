"""Exceptions that describe a user's mistake, shown as one line by the CLI."""

from __future__ import annotations


class CurateError(Exception):
    """A problem with the user's input: shown as one line, never as a traceback."""


class CatalogError(CurateError):
    """A catalog table that does not follow the schema."""


class LoaderError(CurateError):
    """A source that a loader cannot read (missing folder, column, pattern...)."""
