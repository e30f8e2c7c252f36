"""The card of a manifest for people (``card.md``) and the JSON Schema of ``card.json``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["card_markdown", "card_schema", "SCHEMA_FILE"]

#: The JSON Schema of ``card.json``, shipped inside the package (a copy lives in ``manifests/``).
SCHEMA_FILE = Path(__file__).with_name("card.schema.json")


def card_schema() -> dict:
    """The JSON Schema of a manifest card."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def card_markdown(card: dict) -> str:
    """A short Markdown card: what the manifest is, where it came from, what it holds."""
    lines = [
        f"# {card['name']} @ {card['version']}",
        "",
        f"- created: {card.get('created_at')} with curate {card.get('curate_version')}",
        f"- parent: {card.get('parent') or 'none'}",
        f"- samples: {card.get('samples')} ({card.get('rows')} rows with repeats)",
        f"- seed: {card.get('seed')}",
        f"- recipe sha256: `{card.get('recipe_sha256')}`",
        f"- catalog fingerprint: `{card.get('catalog_fingerprint')}`",
        f"- data root: `{card.get('data_root')}`",
        "",
        "| split | class | samples | rows |",
        "| --- | --- | ---: | ---: |",
    ]
    for split, by_class in card.get("counts", {}).items():
        for label, c in by_class.items():
            lines.append(f"| {split} | {label} | {c['samples']} | {c['rows']} |")
    exclusions = card.get("exclusions") or {}
    if exclusions:
        lines += ["", "Excluded: " + ", ".join(f"{k} {v}" for k, v in exclusions.items())]
    return "\n".join(lines) + "\n"
