"""``curate labels CATALOG -o labels.parquet``: probably wrong labels, by cleanlab on out-of-sample probabilities."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli._output import console, print_json, progress_reporter


@click.command("labels")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="labels Parquet file to write")
@click.option("--quality", type=click.Path(path_type=Path), help="quality table: unreadable, blank and duplicate samples stay out")
@click.option("--embeddings", type=click.Path(path_type=Path), help="your encoder's embeddings (Parquet/CSV/.npz by sample_id or path)")
@click.option("--pred-probs", type=click.Path(path_type=Path), help="your model's out-of-sample probabilities, one column per class")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="patient-grouped folds")
@click.option(
    "--classifier",
    default="auto",
    show_default=True,
    help="probe: auto (ordinal for integer grades, else logistic), logistic, ordinal or gradient-boosting",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--prune-distant/--no-prune-distant",
    default=True,
    show_default=True,
    help="leave training labels two or more grades off out of each fold's fit (nested, by patient; about 3x the fit time)",
)
@click.option("--workers", type=click.IntRange(min=1), help="processes for the built-in features [default: all cores]")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def labels(catalog, output, quality, embeddings, pred_probs, folds, classifier, seed, prune_distant, workers, as_json):
    """Flag images whose label is probably wrong, with the suggested label and the grade distance."""
    from curate.labels.io import labels_to_file

    with progress_reporter(enabled=not as_json) as progress:
        summary = labels_to_file(
            catalog,
            output,
            quality_path=quality,
            embeddings=embeddings,
            pred_probs=pred_probs,
            n_splits=folds,
            classifier=classifier,
            seed=seed,
            prune_distant=prune_distant,
            workers=workers,
            progress=progress,
        )
    if as_json:
        print_json(summary)
        return
    from rich.table import Table

    metrics = ", ".join(
        f"{name.replace('_', ' ')} {summary[name]:.3f}"
        for name in ("accuracy", "balanced_accuracy", "quadratic_kappa")
        if name in summary
    )
    source = f"{summary['classifier']} on {summary['features']}" if summary["classifier"] else summary["features"]
    console.print(f"probe ({source}, {summary['n_splits']}-fold by patient): {metrics}")
    console.print(f"fitted {summary['fitted']:,} samples; left out: " + (", ".join(f"{k} {v}" for k, v in summary["excluded"].items()) or "none"))
    if summary.get("pruned_per_fold"):
        counts = ", ".join("-" if n is None else str(n) for n in summary["pruned_per_fold"])
        console.print(f"training labels two or more grades off, left out of each fold's fit: {counts}")
    line = f"label issues: {summary['issues']:,}"
    if "issues_distance_2_or_more" in summary:
        line += f" ({summary['issues_distance_2_or_more']:,} at grade distance >= 2, {summary['issues_adjacent']:,} adjacent)"
    console.print(line)
    console.print("per given label: " + ", ".join(f"{k}: {v}" for k, v in summary["issues_per_given_label"].items()))
    table = Table(title="worst labels")
    for column in ("path", "given", "suggested", "label quality", "distance"):
        table.add_column(column)
    for row in summary["worst"]:
        table.add_row(row["path"], row["given"], row["suggested"], f"{row['label_quality']:.3f}", str(row["grade_distance"] or ""))
    console.print(table)
    console.print(f"wrote {output} in {summary['seconds']:.1f} s")
