"""``curate manifest list|show|diff|verify|lineage``: look into the manifest store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curate.cli._output import console, print_json

_STORE_HELP = "manifest store [default: $CURATE_MANIFEST_STORE or ./manifests]"


def store_option(function):
    return click.option("--store", type=click.Path(path_type=Path), help=_STORE_HELP)(function)


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="print JSON")(function)


def _say(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


@click.group("manifest")
def manifest() -> None:
    """Versioned manifests: list, show, diff, verify, trace them, and check the store (fsck).

    M is NAME (its latest version), NAME@VERSION (a unique prefix will do) or a version folder.
    """


@manifest.command("list")
@store_option
@json_option
def list_command(store, as_json):
    """Every stored version: name, version, created, samples per split."""
    from rich.table import Table

    from curate.manifest import list_manifests

    entries = list_manifests(store)
    if as_json:
        print_json(entries)
        return
    if not entries:
        _say("no manifests in the store")
        return
    table = Table()
    for column in ("name", "version", "created", "samples", "rows", "per split"):
        table.add_column(
            column, justify="right" if column in ("samples", "rows") else "left", no_wrap=column != "per split"
        )
    for e in entries:
        splits = ", ".join(f"{s} {n:,}" for s, n in e["splits"].items())
        version = e["version"] + (" (latest)" if e["latest"] else "")
        table.add_row(e["name"], version, str(e["created_at"]), f"{e['samples']:,}", f"{e['rows']:,}", splits)
    console.print(table)


@manifest.command("show")
@click.argument("ref", metavar="M")
@store_option
@json_option
def show(ref, store, as_json):
    """The card of manifest M, and the exports made of it (with what they did to pixels)."""
    from curate.cli._output import counts_table
    from curate.manifest.exports import describe_export, read_export_log
    from curate.manifest import open_manifest

    found = open_manifest(ref, store)
    card = found.card
    exports = read_export_log(found.folder)
    if as_json:
        print_json({**card, "exports": exports})
        return
    _say(f"{card['name']}@{card['version']}  created {card['created_at']} with curate {card['curate_version']}")
    _say(f"parent: {card.get('parent') or 'none'}   seed: {card.get('seed')}")
    _say(f"recipe sha256: {card['recipe_sha256']}")
    _say(f"catalog fingerprint: {card['catalog_fingerprint']}")
    _say(f"data root: {card['data_root']}")
    by_split = {s: {k: c["rows"] for k, c in by.items()} for s, by in card["counts"].items()}
    console.print(counts_table(f"{card['samples']:,} samples, {card['rows']:,} rows with repeats", by_split))
    if card.get("exclusions"):
        _say("excluded: " + ", ".join(f"{k} {v:,}" for k, v in card["exclusions"].items()))
    for entry in exports:
        _say("export: " + describe_export(entry))


@manifest.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@store_option
@json_option
def diff(a, b, store, as_json):
    """Samples added, removed, relabelled and moved between splits from A to B."""
    from curate.manifest import diff_manifests, open_manifest

    result = diff_manifests(open_manifest(a, store), open_manifest(b, store))
    if as_json:
        print_json(result)
        return
    _say(f"{result['a']} -> {result['b']}")
    for key in ("added", "removed", "relabelled", "split_changed", "reweighted"):
        entry = result[key]
        shown = [e if isinstance(e, str) else f"{e['sample_id']} ({e['from']} -> {e['to']})" for e in entry["examples"]]
        more = f": {', '.join(shown)}" + (" ..." if entry["count"] > len(shown) else "") if shown else ""
        _say(f"{key.replace('_', ' ')}: {entry['count']:,}{more}")
    for change in result["recipe_changes"]:
        _say(f"recipe {change['key']}: {change['from']!r} -> {change['to']!r}")


@manifest.command("verify")
@click.argument("ref", metavar="M")
@store_option
@click.option("--data-root", type=click.Path(path_type=Path), help="where the files are now [default: recorded]")
@json_option
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the private catalog of a de-identified manifest [default: found in the work folder]")
def verify(ref, store, data_root, catalog, as_json):
    """Re-hash M's files; exit code 1 when any is missing or modified."""
    from curate.manifest import open_manifest, verify_manifest

    from curate.recipe.runner import private_catalog

    found = open_manifest(ref, store)
    result = verify_manifest(found, data_root, private_catalog(found, store, catalog))
    if as_json:
        print_json(result)
    else:
        _say(f"{result['ref']}: {result['files']:,} files under {result['data_root']}")
        for kind in ("missing", "modified"):
            for item in result[kind][:20]:
                _say(f"{kind}: {item['path']} (samples {', '.join(item['sample_ids'])})")
            if len(result[kind]) > 20:
                _say(f"... and {len(result[kind]) - 20:,} more {kind}")
        if result["rows"] != "match the card":
            _say(f"rows: {result['rows']}")
        _say("ok" if result["ok"] else f"{len(result['missing']):,} missing, {len(result['modified']):,} modified")
    if not result["ok"]:
        sys.exit(1)


@manifest.command("fsck")
@store_option
@click.option("--repair", is_flag=True, help="remove killed runs' temporaries and repair LATEST")
@json_option
def fsck(store, repair, as_json):
    """Check the store: killed runs' leftovers, LATEST, unreadable or inconsistent versions, parents.

    Exit code 1 while a problem is left unrepaired.
    """
    from curate.manifest.fsck import check_store
    from curate.manifest.store import _store

    problems = check_store(store, repair=repair)
    if as_json:
        print_json({"store": str(_store(store)), "problems": problems})
    else:
        for p in problems:
            state = "repaired" if p["repaired"] else "found"
            _say(f"{state}: {p['name'] or '(store)'}: {p['problem']}: {p['detail']}")
        left = sum(not p["repaired"] for p in problems)
        _say(f"{_store(store)}: " + ("ok" if not problems else f"{len(problems)} problem(s), {left} left"))
    if any(not p["repaired"] for p in problems):
        sys.exit(1)


@manifest.command("lineage")
@click.argument("ref", metavar="M")
@store_option
@json_option
def lineage(ref, store, as_json):
    """M and its parents, newest first, with what changed at each step."""
    from curate.manifest import lineage as trace
    from curate.manifest import open_manifest

    chain = trace(open_manifest(ref, store), store)
    if as_json:
        print_json(chain)
        return
    for entry in chain:
        _say(f"{entry['ref']}  created {entry['created_at']}  {entry['samples']:,} samples")
        if "changes" in entry:
            _say("  from parent: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in entry["changes"].items()))
            for change in entry["recipe_changes"]:
                _say(f"  recipe {change['key']}: {change['from']!r} -> {change['to']!r}")
        elif entry.get("parent_missing"):
            _say(f"  parent {entry['parent']} is not in the store")
