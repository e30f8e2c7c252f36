"""What changed between two manifests, and the chain of parents of one."""

from __future__ import annotations

import os


from curate.manifest.model import Manifest
from curate.select._labels import label_text

__all__ = ["diff_manifests", "lineage", "recipe_changes"]

_EXAMPLES = 5


def diff_manifests(a: Manifest, b: Manifest, *, examples: int = _EXAMPLES) -> dict:
    """Samples added, removed, relabelled and moved to another split from ``a`` to ``b``.

    Returns
    -------
    dict
        ``{"a", "b", "added", "removed", "relabelled", "split_changed", "reweighted",
        "recipe_changes"}``; each sample change has a ``count`` and up to ``examples``
        ``examples`` (sample ids, with the old and new value where one changed).
    """
    left = a.rows.set_index(a.rows["sample_id"].astype(str))
    right = b.rows.set_index(b.rows["sample_id"].astype(str))
    added = right.index.difference(left.index, sort=False)
    removed = left.index.difference(right.index, sort=False)
    both = left.index.intersection(right.index, sort=False)
    old, new = left.loc[both], right.loc[both]

    def changed(column: str) -> dict:
        before = label_text(old[column]).fillna("<NA>")
        after = label_text(new[column]).fillna("<NA>")
        ids = both[(before != after).to_numpy()]
        return {
            "count": int(len(ids)),
            "examples": [{"sample_id": i, "from": before[i], "to": after[i]} for i in ids[:examples]],
        }

    reweighted = both[
        ((old["weight"].astype(float) - new["weight"].astype(float)).abs() > 1e-12).to_numpy()
        | (old["repeat"].to_numpy() != new["repeat"].to_numpy())
    ]
    return {
        "a": a.ref,
        "b": b.ref,
        "added": {"count": int(len(added)), "examples": list(added[:examples])},
        "removed": {"count": int(len(removed)), "examples": list(removed[:examples])},
        "relabelled": changed("label"),
        "split_changed": changed("split"),
        "reweighted": {"count": int(len(reweighted)), "examples": list(reweighted[:examples])},
        "recipe_changes": recipe_changes(a.card.get("recipe", {}), b.card.get("recipe", {})),
    }


def recipe_changes(old: dict, new: dict, prefix: str = "") -> list[dict]:
    """The recipe keys whose values differ, as dotted paths with both values."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += recipe_changes(a, b, f"{path}.")
        elif a != b or (key in old) != (key in new):
            out.append({"key": path, "from": a, "to": b})
    return out


def lineage(manifest: Manifest, store: str | os.PathLike | None = None) -> list[dict]:
    """The chain from ``manifest`` back through its parents, newest first, each with what changed.

    A parent missing from the store ends the chain with ``"missing": True``.
    """
    from curate.errors import CurateError
    from curate.manifest.store import open_manifest

    chain = []
    current: Manifest | None = manifest
    seen = set()
    while current is not None and current.ref not in seen:
        seen.add(current.ref)
        entry = {
            "ref": current.ref,
            "created_at": current.card.get("created_at"),
            "samples": current.card.get("samples"),
            "parent": current.card.get("parent"),
        }
        parent = None
        if current.card.get("parent"):
            try:
                parent = open_manifest(current.card["parent"], store)
            except CurateError:
                entry["parent_missing"] = True
        if parent is not None:
            d = diff_manifests(parent, current)
            entry["changes"] = {
                k: d[k]["count"] for k in ("added", "removed", "relabelled", "split_changed", "reweighted")
            }
            entry["recipe_changes"] = d["recipe_changes"]
        chain.append(entry)
        current = parent
    return chain
