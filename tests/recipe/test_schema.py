"""Recipe validation: every mistake is one line with file, line and key, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.recipe import RecipeError, load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

GOOD = """\
name: tiny
seed: 0
source:
  loader: oai-kl
  data_root: {root}
scan:
  thresholds:
    dark_mean: 0.08
split:
  method: official
sampler:
  name: balanced
  n: 10
"""


def _write(tmp_path: Path, text: str, root: str = "data") -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text.format(root=root))
    return path


def _run_cli(args: list[str]):
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(recipe: Path) -> None:
    checked = load_recipe(recipe)
    assert checked.name and checked.data["source"]["loader"]


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, GOOD))
    assert recipe.data["labels"]["enabled"] is False
    assert recipe.data["sampler"] == {**recipe.data["sampler"], "name": "balanced", "n": 10}
    assert recipe.data["exports"] == []


def test_typo_in_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  n: 10", "  nn: 10"))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value) == f"{path}:13: unknown key 'sampler.nn' (did you mean 'n'?)"


def test_typo_cli_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  n: 10", "  nn: 10"), root=str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    result = _run_cli(["run", str(path), "--store", str(tmp_path / "store"), "--work", str(tmp_path / "work")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"curate: error: {path}:13: unknown key 'sampler.nn' (did you mean 'n'?)"]
    assert not (tmp_path / "store").exists() and not (tmp_path / "work").exists()


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("n: 10", "n: ten"))
    result = _run_cli(["run", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"curate: error: {path}:13: 'sampler.n' must be a whole number, got text 'ten'"
    )


def test_unknown_loader_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("loader: oai-kl", "loader: oai-kll"))
    result = _run_cli(["run", str(path)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert line.startswith(f"curate: error: {path}:4: unknown source.loader 'oai-kll' (did you mean 'oai-kl'?)")


def test_missing_data_root_refused_before_work(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, root=str(tmp_path / "nowhere"))
    result = _run_cli(["run", str(path), "--store", str(tmp_path / "store"), "--work", str(tmp_path / "work")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"curate: error: {path}:5: data root {tmp_path / 'nowhere'} does not exist (pass --data-root)"
    )
    assert not (tmp_path / "store").exists() and not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("method: official", "method: random"), "10: unknown split.method 'random'"),
        (("method: official", "method: new\n  fractions: [0.7, 0.1, 0.1]"), "11: split.fractions:"),
        (("name: balanced", "name: balancd"), "12: unknown sampler.name 'balancd' (did you mean 'balanced'?)"),
        (("dark_mean: 0.08", "dark_man: 0.08"), "7: scan.thresholds: unknown scan threshold(s) dark_man"),
        (("seed: 0", "seed: yes"), "2: 'seed' must be a whole number, got a boolean True"),
        (("split:", "labels:\n  classifier: ordinl\nsplit:"), "10: unknown labels.classifier 'ordinl' (did you mean 'ordinal'?)"),
        (("  data_root: {root}", "  data_root: {root}\n  options: {{sourcename: x}}"), "6: source.options:"),
    ],
)
def test_bad_values_are_one_line(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}:{expected}")
    assert "\n" not in str(err.value)


def test_export_entries_checked(tmp_path: Path) -> None:
    text = GOOD + "exports:\n  - format: lava\n    output: out\n"
    with pytest.raises(RecipeError, match=r"recipe.yaml:15: unknown exports\[0\].format 'lava'"):
        load_recipe(_write(tmp_path, text))


def test_overrides_and_data_root() -> None:
    recipe = parse_recipe(GOOD.format(root="x"), overrides=["sampler.n=20"], data_root="elsewhere")
    assert recipe.data["sampler"]["n"] == 20
    assert recipe.data["source"]["data_root"] == "elsewhere"
    with pytest.raises(RecipeError, match="unknown key 'sampler.nn'"):
        parse_recipe(GOOD.format(root="x"), overrides=["sampler.nn=20"])


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nsource: [unclosed\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml:\d+: not valid YAML"):
        load_recipe(path)
