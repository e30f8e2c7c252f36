"""``curate select CATALOG -o selection.parquet``: patient-grouped split, exclusion, sampling."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json

_SAMPLER_HELP = (
    "full (every kept sample, class weights), balanced (--n), per-class (--per-class), stratified (--n), "
    "or an imbalanced-learn sampler: RandomUnderSampler, RandomOverSampler, NearMiss, TomekLinks, "
    "EditedNearestNeighbours, ClusterCentroids (nearest real samples)"
)


def _names(values: tuple[str, ...]) -> list[str]:
    """Repeatable, comma-separated names: ('a,b', 'c') -> ['a', 'b', 'c']."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@click.command("select")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="selection Parquet file to write")
@click.option("--quality", type=click.Path(path_type=Path), help="quality table of `curate scan`")
@click.option("--labels", type=click.Path(path_type=Path), help="labels table (sample_id, is_label_issue, ...)")
@click.option("--features", type=click.Path(path_type=Path), help="Parquet of numeric features by sample_id")
@click.option(
    "--split", type=click.Choice(["official", "new"]), help="the source's split or a new one [default: official]"
)
@click.option("--fractions", metavar="TRAIN,VAL,TEST", help="fractions of a new split [default: 0.7,0.1,0.2]")
@click.option("--split-seed", type=click.IntRange(min=0), help="seed of a new split, apart from --seed [default: 0]")
@click.option("--frozen-split", type=click.Path(path_type=Path), help="reuse a frozen split file")
@click.option("--freeze-split", type=click.Path(path_type=Path), help="write the split to this file for reuse")
@click.option("--sampler", default="full", show_default=True, metavar="NAME", help=_SAMPLER_HELP)
@click.option("--n", type=int, help="samples in all (balanced, stratified, imbalanced-learn samplers)")
@click.option("--per-class", metavar="C=N,...", help="samples per class, e.g. 0=100,1=100")
@click.option(
    "--short", type=click.Choice(["fail", "available", "oversample"]), help="when a class is short [default: fail]"
)
@click.option(
    "--strategy",
    type=click.Choice(["random", "quality", "diverse", "k-center", "one-per-patient"]),
    help="which samples a class keeps [default: random]",
)
@click.option(
    "--weighting", type=click.Choice(["inverse", "effective", "none"]), help="class weights of full [default: inverse]"
)
@click.option("--beta", type=float, help="beta of the effective-number weights [default: 0.999]")
@click.option("--exclude", multiple=True, metavar="FLAG,...", help="also exclude samples with these flags")
@click.option("--keep-flag", "keep", multiple=True, metavar="FLAG,...", help="do not exclude these default flags")
@click.option(
    "--min-grade-distance", type=click.IntRange(min=0), help="label issues excluded from this distance [default: 2]"
)
@click.option(
    "--sample-splits", default="train", show_default=True, metavar="SPLIT,...", help="splits the sampler works on"
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="seed of the sampling")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def select(catalog, output, quality, labels, features, split, fractions, split_seed, frozen_split, freeze_split,
           sampler, n, per_class, short, strategy, weighting, beta, exclude, keep, min_grade_distance, sample_splits,
           seed, as_json):
    """Split by patient, exclude flagged samples, and sample the training split.

    Default exclusions: unreadable, exact_duplicate, near_duplicate, blank, wrong_modality,
    wrong_body_part, label_issue (grade distance >= 2). Prints, per split and class, the
    samples available, excluded by reason, and selected.
    """
    from curate.select.io import select_to_file

    report = select_to_file(
        catalog,
        output,
        quality=quality,
        labels=labels,
        features=features,
        split=split,
        fractions=fractions,
        split_seed=split_seed,
        frozen_split=frozen_split,
        freeze_split=freeze_split,
        sampler=sampler,
        n=n,
        per_class=per_class,
        short=short,
        strategy=strategy,
        weighting=weighting,
        beta=beta,
        exclude=_names(exclude),
        keep=_names(keep),
        min_grade_distance=min_grade_distance,
        sample_splits=_names((sample_splits,)),
        seed=seed,
    )
    if as_json:
        print_json(report)
    else:
        print_selection_report(report)


def print_selection_report(report: dict) -> None:
    from rich.table import Table

    title = f"{report['sampler']['sampler']}: {report['selected']:,} of {report['samples']:,} samples selected"
    table = Table(title=title)
    repeated = report["rows"] != report["selected"]  # the rows column only says something when samples repeat
    columns = ("split", "class", "samples", "excluded", "available", "selected", *(("rows",) if repeated else ()))
    for column in columns:
        table.add_column(column, justify="left" if column in ("split", "class") else "right")
    table.add_column("excluded by reason", ratio=1, overflow="fold")
    for split, by_class in report["by_split"].items():
        for label, c in by_class.items():
            reasons = ", ".join(f"{name} {n:,}" for name, n in c["excluded_by"].items())
            counts = [c["samples"], c["excluded"], c["available"], c["selected"], *((c["rows"],) if repeated else ())]
            table.add_row(split, label, *(f"{n:,}" for n in counts), reasons)
        table.add_section()
    console.print(table)
    lines = []
    split = report["split"]
    lines.append(f"split: {split.get('method')}" + (f", seed {split['seed']}" if split.get("seed") is not None else ""))
    sampler = report["sampler"]
    weights = report["class_weights"].get("train")
    if sampler["sampler"] == "full" and weights and sampler["weighting"] != "none":
        shown = ", ".join(f"{k} {v:.3f}" for k, v in weights[sampler["weighting"]].items())
        lines.append(f"train class weights ({sampler['weighting']}): {shown}")
    not_checked = report["exclusion"].get("not_checked", {})
    if not_checked:
        lines.append("not checked: " + ", ".join(f"{k} ({v})" for k, v in not_checked.items()))
    lines += [f"note: {note}" for note in report.get("notes", [])]
    for key, what in (("output", "wrote"), ("frozen_split", "froze the split to")):
        if key in report:
            lines.append(f"{what} {report[key]}")
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)
