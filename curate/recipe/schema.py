"""Recipes: read a YAML recipe, check every key and value before any work, fill in defaults.

A mistake is one line naming the file, the line and the key, e.g.
``recipes/demo.yaml:12: unknown key 'sampler.nn' (did you mean 'n'?)``.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curate.errors import CurateError

__all__ = ["RecipeError", "Recipe", "load_recipe", "parse_recipe", "apply_overrides", "SPLIT_METHODS"]

SPLIT_METHODS = ("official", "new", "frozen")
_SHORT = ("fail", "available", "oversample")


class RecipeError(CurateError):
    """A recipe that cannot be run: one line with the file, the line and the key."""


@dataclass
class Recipe:
    """A checked recipe.

    Attributes
    ----------
    data : dict
        Every section with its defaults filled in (what the card records).
    path : Path or None
        The file it was read from.
    lines : dict
        Dotted key -> line number in the file (for messages about values checked later).
    """

    data: dict
    path: Path | None = None
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.data["name"]

    def where(self, key: str) -> str:
        """``file:line`` of ``key`` (or of its closest recorded parent)."""
        parts = key.split(".")
        while parts and ".".join(parts) not in self.lines:
            parts.pop()
        line = self.lines.get(".".join(parts))
        return f"{self.path or '<recipe>'}" + (f":{line}" if line else "")


# --- the schema: key -> (type check, default); nested dicts are sections -------------------------


@dataclass(frozen=True)
class _Key:
    kind: str  # str | int | float | bool | dict | list | strlist | any
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    nullable: bool = True


_SCHEMA: dict[str, Any] = {
    "name": _Key("str", required=True, nullable=False),
    "description": _Key("str"),
    "seed": _Key("int", 0, nullable=False),
    "license": _Key("str"),  # of the data, for dataset cards (hf-imagefolder, croissant)
    "citation": _Key("str"),
    "review": _Key("str"),
    # de-identification (curate.deid): keyed pseudonyms, dates shifted or dropped, no paths out
    "deid": {
        "enabled": _Key("bool", False, nullable=False),
        "key_file": _Key("str"),
        "dates": _Key("str", "shift", nullable=False, choices=("shift", "drop")),
        "keep": _Key("strlist", []),
    },
    "source": {
        "loader": _Key("str", required=True, nullable=False, choices=lambda: _loaders()),
        "data_root": _Key("str"),
        "options": _Key("dict", {}),
    },
    "task": _Key("dict"),
    "scan": {
        "enabled": _Key("bool", True, nullable=False),
        "thresholds": _Key("dict", {}),
        "workers": _Key("int"),
    },
    "labels": {
        "enabled": _Key("bool", False, nullable=False),
        "folds": _Key("int", 5, nullable=False),
        "classifier": _Key("str", "auto", nullable=False, choices=lambda: _classifiers()),
        "embeddings": _Key("str"),
        "pred_probs": _Key("str"),
    },
    "exclude": {
        "add": _Key("strlist", []),
        "keep": _Key("strlist", []),
        "min_grade_distance": _Key("int"),
    },
    "split": {
        "method": _Key("str", "official", nullable=False, choices=SPLIT_METHODS),
        "fractions": _Key("list"),
        "seed": _Key("int"),
        "frozen": _Key("str"),
        "freeze": _Key("str"),
    },
    "sampler": {
        "name": _Key("str", "full", nullable=False, choices=lambda: _samplers()),
        "n": _Key("int"),
        "per_class": _Key("dict"),
        "short": _Key("str", choices=_SHORT),
        "strategy": _Key("str", choices=lambda: _strategies()),
        "weighting": _Key("str", choices=("inverse", "effective", "none")),
        "beta": _Key("float"),
    },
    "exports": _Key("list", []),
}

_EXPORT_SCHEMA: dict[str, _Key] = {
    "format": _Key("str", required=True, nullable=False, choices=lambda: _formats()),
    "output": _Key("str", required=True, nullable=False),
    "link": _Key("str", "symlink", nullable=False, choices=("symlink", "hardlink", "copy")),
    "question": _Key("str"),
    "answer": _Key("str"),
    # trainer-side preprocessing, as `curate export` options (curate.rendering.Preprocessing)
    "size": _Key("int"),
    "fit": _Key("str", choices=("pad", "crop", "stretch")),
    "bit_depth": _Key("int"),
    "window": _Key("str", choices=("decoder", "percentile")),
    "percentiles": _Key("list"),
    "clahe": _Key("bool"),
    "image_format": _Key("str", choices=("png", "jpeg")),
}
#: The keys of an export item that are preprocessing options.
PREPROCESSING_KEYS = ("size", "fit", "bit_depth", "window", "percentiles", "clahe", "image_format")


def _loaders() -> list[str]:
    from curate.loaders import available_loaders

    return available_loaders()


def _samplers() -> tuple[str, ...]:
    from curate.select.samplers import SAMPLER_NAMES

    return SAMPLER_NAMES


def _preprocessing(item: dict):
    from curate.rendering import Preprocessing

    return Preprocessing.from_dict({k: item[k] for k in PREPROCESSING_KEYS})


def _classifiers() -> list[str]:
    from curate.labels.probe import CLASSIFIER_NAMES

    return list(CLASSIFIER_NAMES)


def _strategies() -> list[str]:
    from curate.select.strategies import STRATEGIES

    return list(STRATEGIES)


def _formats() -> list[str]:
    from curate.export import FORMATS

    return list(FORMATS)


# --- reading YAML with the line of every key ----------------------------------------------------


def _to_python(node: yaml.Node, key: str, lines: dict[str, int], where: Callable[[int], str]) -> Any:
    """Plain Python values from a composed node tree, recording each key's line."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            name = yaml.safe_load(yaml.serialize(knode)) if not isinstance(knode, yaml.ScalarNode) else knode.value
            if not isinstance(name, str):
                raise RecipeError(f"{where(knode.start_mark.line + 1)}: key {name!r} is not text")
            dotted = f"{key}.{name}" if key else name
            if name in out:
                raise RecipeError(f"{where(knode.start_mark.line + 1)}: duplicate key '{dotted}'")
            lines[dotted] = knode.start_mark.line + 1
            out[name] = _to_python(vnode, dotted, lines, where)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            dotted = f"{key}[{i}]"
            lines[dotted] = item.start_mark.line + 1
            items.append(_to_python(item, dotted, lines, where))
        return items
    # Scalars get YAML's own typing (int, float, bool, null) through the safe constructor.
    return yaml.SafeLoader.construct_object(yaml.SafeLoader(""), node, deep=True)


def _read_yaml(text: str, path: Path | None) -> tuple[Any, dict[str, int]]:
    label = str(path) if path is not None else "<recipe>"
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{label}{line}: not valid YAML ({problem})") from None
    if node is None:
        raise RecipeError(f"{label}: the recipe is empty")
    lines: dict[str, int] = {}
    data = _to_python(node, "", lines, lambda line: f"{label}:{line}")
    if not isinstance(data, dict):
        raise RecipeError(f"{label}:{node.start_mark.line + 1}: a recipe is a mapping of keys to values")
    return data, lines


# --- checking ---------------------------------------------------------------------------------------


def _type_ok(kind: str, value: Any) -> Any:
    """The value in the expected type, or raise TypeError."""
    if kind == "str" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "dict" and isinstance(value, dict):
        return value
    if kind == "list" and isinstance(value, list):
        return value
    if kind == "strlist":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    raise TypeError


_KIND_TEXT = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "dict": "a mapping",
    "list": "a list",
    "strlist": "a list of names",
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _check_section(
    values: Any, schema: dict, prefix: str, recipe: Recipe, *, line_key: str | None = None
) -> dict:
    if not isinstance(values, dict):
        raise RecipeError(f"{recipe.where(line_key or prefix)}: '{prefix}' must be a mapping, got {_type_name(values)}")
    unknown = [k for k in values if k not in schema]
    if unknown:
        key = unknown[0]
        dotted = f"{prefix}.{key}" if prefix else key
        close = difflib.get_close_matches(key, list(schema), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(schema)}"
        raise RecipeError(f"{recipe.where(dotted)}: unknown key '{dotted}'{hint}")
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(spec, dict):
            out[key] = _check_section(values.get(key) if values.get(key) is not None else {}, spec, dotted, recipe)
            continue
        value = values.get(key)
        if value is None:
            if spec.required:
                raise RecipeError(f"{recipe.where(prefix)}: missing key '{dotted}'")
            if key in values and not spec.nullable:
                raise RecipeError(f"{recipe.where(dotted)}: '{dotted}' is empty; expected {_KIND_TEXT[spec.kind]}")
            out[key] = copy.deepcopy(spec.default)
            continue
        try:
            value = _type_ok(spec.kind, value)
        except TypeError:
            raise RecipeError(
                f"{recipe.where(dotted)}: '{dotted}' must be {_KIND_TEXT[spec.kind]}, got {_type_name(value)} {value!r}"
            ) from None
        if spec.choices is not None:
            choices = list(spec.choices() if callable(spec.choices) else spec.choices)
            if value not in choices:
                close = difflib.get_close_matches(str(value), choices, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RecipeError(
                    f"{recipe.where(dotted)}: unknown {dotted} {value!r}{hint}; choose one of {', '.join(choices)}"
                )
        out[key] = value
    return out


def _check_values(data: dict, recipe: Recipe) -> None:
    """What the types alone do not say: the stages' own parameter checks, up front."""
    from curate.manifest.store import check_name
    from curate.quality.rules import Thresholds
    from curate.select.samplers import make_sampler
    from curate.select.splits import parse_fractions

    def wrap(key: str, check: Callable[[], Any]) -> Any:
        try:
            return check()
        except CurateError as exc:
            raise RecipeError(f"{recipe.where(key)}: {key}: {exc}") from None

    wrap("name", lambda: check_name(data["name"]))
    wrap("scan.thresholds", lambda: Thresholds.from_dict(data["scan"]["thresholds"]))
    if data["task"] is not None:
        from curate.tasks import Task

        wrap("task", lambda: Task.from_dict(data["task"]))
    source = data["source"]
    wrap("source.options", lambda: _check_loader_options(source["loader"], source["options"]))
    sampler = data["sampler"]
    per_class = {str(k): v for k, v in sampler["per_class"].items()} if sampler["per_class"] else None
    wrap(
        "sampler",
        lambda: make_sampler(
            sampler["name"], n=sampler["n"], per_class=per_class, short=sampler["short"],
            strategy=sampler["strategy"], weighting=sampler["weighting"], beta=sampler["beta"],
        ),
    )
    split = data["split"]
    if split["frozen"] is not None:
        split["method"] = "frozen"
    if split["method"] == "frozen" and split["frozen"] is None:
        raise RecipeError(f"{recipe.where('split.method')}: split.method frozen needs split.frozen: PATH")
    if split["method"] != "new" and (split["fractions"] is not None or split["seed"] is not None):
        raise RecipeError(f"{recipe.where('split')}: split.fractions and split.seed make a new split: add method: new")
    if split["fractions"] is not None:
        wrap("split.fractions", lambda: parse_fractions(split["fractions"]))
    if data["deid"]["enabled"] and not data["deid"]["key_file"]:
        raise RecipeError(f"{recipe.where('deid')}: deid.enabled needs deid.key_file: PATH (a secret kept outside the repository)")
    labels = data["labels"]
    if labels["embeddings"] is not None and labels["pred_probs"] is not None:
        raise RecipeError(f"{recipe.where('labels')}: give labels.embeddings or labels.pred_probs, not both")
    if labels["folds"] < 2:
        raise RecipeError(f"{recipe.where('labels.folds')}: labels.folds must be 2 or more")
    exports = []
    for i, item in enumerate(data["exports"]):
        key = f"exports[{i}]"
        checked = _check_section(item, _EXPORT_SCHEMA, key, recipe, line_key=key)
        if (checked["question"] is not None or checked["answer"] is not None) and checked["format"] != "llava":
            raise RecipeError(f"{recipe.where(key)}: {key}: question and answer are templates of the llava format")
        wrap(key, lambda: _preprocessing(checked))
        exports.append(checked)
    data["exports"] = exports


def _check_loader_options(loader: str, options: dict) -> None:
    from curate.loaders import get_loader

    instance = get_loader(loader)
    known = {opt.name: opt for opt in instance.options}
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; its options are {', '.join(known) or 'none'}"
            raise CurateError(f"loader '{loader}' has no option '{name}'{hint}")
        opt = known[name]
        if opt.choices is not None and value not in opt.choices:
            raise CurateError(f"option '{name}' is {value!r}, expected one of {', '.join(opt.choices)}")


# --- overrides and entry points ---------------------------------------------------------------------


def apply_overrides(data: dict, overrides: Iterable[str], lines: dict[str, int]) -> dict:
    """Set dotted keys from ``KEY=VALUE`` texts (VALUE read as YAML), e.g. ``sampler.n=100``."""
    data = copy.deepcopy(data)
    for text in overrides:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. sampler.n=100")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = value
        lines.pop(key, None)
    return data


def parse_recipe(
    text: str,
    path: str | os.PathLike | None = None,
    *,
    overrides: Iterable[str] = (),
    data_root: str | os.PathLike | None = None,
) -> Recipe:
    """Check a recipe's text; ``overrides`` (``KEY=VALUE``) and ``data_root`` replace what it says.

    Raises
    ------
    RecipeError
        On the first unknown key, wrong type or impossible value, naming file, line and key.
    """
    path = Path(path) if path is not None else None
    raw, lines = _read_yaml(text, path)
    raw = apply_overrides(raw, overrides, lines)
    recipe = Recipe(data={}, path=path, lines=lines)
    data = _check_section(raw, _SCHEMA, "", recipe)
    if data_root is not None:
        data["source"]["data_root"] = str(data_root)
    if data["source"]["data_root"] is None:
        raise RecipeError(f"{recipe.where('source')}: missing key 'source.data_root' (or pass --data-root)")
    _check_values(data, recipe)
    recipe.data = data
    return recipe


def load_recipe(
    path: str | os.PathLike,
    *,
    overrides: Iterable[str] = (),
    data_root: str | os.PathLike | None = None,
) -> Recipe:
    """Read and check the recipe file at ``path`` (see :func:`parse_recipe`)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    return parse_recipe(path.read_text(encoding="utf-8"), path, overrides=overrides, data_root=data_root)
