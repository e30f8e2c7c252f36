"""Manifests: the rows a trainer consumes plus a card, stored as immutable, content-addressed versions.

::

    from curate.manifest import build_manifest, write_manifest, load_manifest

    manifest = build_manifest(catalog, selection, name="kl-balanced", recipe=recipe, quality=quality)
    write_manifest(manifest, "manifests")          # manifests/kl-balanced/<version>/
    rows = load_manifest("kl-balanced")             # the latest version; rows.attrs["card"]
"""

from curate.manifest.card import card_markdown, card_schema
from curate.manifest.compare import diff_manifests, lineage, recipe_changes
from curate.manifest.model import ROW_COLUMNS, Manifest, build_manifest, recipe_hash, version_id
from curate.manifest.store import (
    DEFAULT_STORE,
    default_store,
    latest_version,
    list_manifests,
    name_lock,
    load_manifest,
    open_manifest,
    read_manifest,
    resolve,
    versions,
    write_manifest,
)
from curate.manifest.verify import verify_manifest
from curate.select.frozen import catalog_fingerprint

__all__ = [
    "Manifest",
    "ROW_COLUMNS",
    "build_manifest",
    "version_id",
    "recipe_hash",
    "name_lock",
    "catalog_fingerprint",
    "write_manifest",
    "read_manifest",
    "open_manifest",
    "load_manifest",
    "resolve",
    "versions",
    "latest_version",
    "list_manifests",
    "default_store",
    "DEFAULT_STORE",
    "diff_manifests",
    "lineage",
    "recipe_changes",
    "verify_manifest",
    "card_markdown",
    "card_schema",
]
