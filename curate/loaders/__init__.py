"""Loaders turn a source on disk into a catalog; one module per source format."""

from __future__ import annotations

import os
from typing import Any

from curate.loaders.base import LoadResult, Loader, Option, available_loaders, get_loader

__all__ = ["Loader", "LoadResult", "Option", "available_loaders", "get_loader", "load"]


def load(loader: str, source: str | os.PathLike, **options: Any) -> LoadResult:
    """Run the loader called ``loader`` on ``source``.
    ``load("oai-kl", "knee_kl_sample").catalog`` is the catalog of that folder;
    the options are the loader's (see ``curate ingest LOADER --help``).
    """
    return get_loader(loader).load(source, **options)
