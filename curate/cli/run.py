"""``curate run RECIPE [RECIPE ...]``: run whole recipes into versioned manifests."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json, progress_reporter


def _describe(stage: dict) -> str:
    """One line per stage for people."""
    name = stage["stage"]
    if name == "wait":
        return f"  {name:<8} {stage['message']}"
    how = "reused" if stage.get("reused") else f"{stage.get('seconds', 0)} s"
    if name == "ingest":
        text = f"{stage['samples']} samples, {stage['problems']} problems"
        if stage.get("left_out_by_task"):
            text += f", {stage['left_out_by_task']} left out by the task"
    elif name == "scan":
        flags = ", ".join(f"{k} {v}" for k, v in stage["flags"].items() if v) or "no flags"
        text = f"{stage['readable']}/{stage['samples']} readable; {flags}; {stage['redundant_duplicates']} redundant duplicates"
    elif name == "labels":
        text = f"{stage['issues']} label issues"
    elif name == "select":
        text = ", ".join(f"{k} {v}" for k, v in stage["selected"].items()) + f" selected; {stage['excluded']} excluded"
        if stage.get("frozen_split"):
            text += f"; split frozen to {stage['frozen_split']}"
        for note in stage.get("notes") or []:
            text += f"\n           note: {note}"
    elif name == "review":
        text = f"{stage['file']} (sha256 {stage['sha256'][:12]}): {stage['excluded']} excluded by reviewers, relabels applied"
    elif name == "manifest":
        state = "new version" if stage["new_version"] else "already stored, not written again"
        text = f"{stage['ref']} ({state}; {stage['samples']} samples, {stage['rows']} rows"
        text += f"; parent {stage['parent']})" if stage.get("parent") else ")"
    else:
        text = f"{stage['format']} -> {stage['output']}"
    return f"  {name:<8} {text}  [{how}]"


@click.command("run")
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--data-root", type=click.Path(path_type=Path), help="overrides every recipe's source.data_root")
@click.option("--store", type=click.Path(path_type=Path), help="manifest store [default: $CURATE_MANIFEST_STORE or ./manifests]")
@click.option("--work", type=click.Path(path_type=Path), help="work folder of intermediate tables [default: .curate/work beside the store]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a recipe key, e.g. --set sampler.n=100 (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the summaries as JSON")
def run(recipes, data_root, store, work, overrides, as_json) -> None:
    """Run RECIPE files (ingest, scan, labels, select, manifest, exports) and print each manifest name@version.

    Every recipe is checked before any of them runs, so a mistake in the last one
    stops the run before any work is done.
    """
    from curate.recipe import check_data_root, load_recipe, run_recipe

    checked = [load_recipe(path, overrides=overrides, data_root=data_root) for path in recipes]
    for recipe in checked:
        check_data_root(recipe)
    results = []
    for recipe in checked:
        if not as_json:
            console.print(f"[bold]{recipe.path}[/bold] -> {recipe.name}")
        report = None if as_json else (lambda stage: console.print(_describe(stage), highlight=False, markup=False, soft_wrap=True))
        with progress_reporter(enabled=not as_json) as progress:
            summary = run_recipe(recipe, store=store, work=work, report=report, progress=progress)
        results.append({"recipe": str(recipe.path), **summary})
    if as_json:
        print_json(results if len(results) > 1 else results[0])
        return
    for result in results:
        console.print(result["ref"], highlight=False, markup=False)
