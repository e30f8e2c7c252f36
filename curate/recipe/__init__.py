"""Recipes: one YAML file that runs the whole chain into a versioned manifest.

::

    from curate.recipe import load_recipe, run_recipe

    recipe = load_recipe("recipes/demo.yaml", data_root="demo_data", overrides=["sampler.n=50"])
    summary = run_recipe(recipe)        # summary["ref"] == "kl-demo-balanced-500@<version>"

Every key is documented in ``recipes/README.md``.
"""

from curate.recipe.runner import check_data_root, default_work, recorded_recipe, run_recipe
from curate.recipe.schema import Recipe, RecipeError, apply_overrides, load_recipe, parse_recipe

__all__ = [
    "Recipe",
    "RecipeError",
    "load_recipe",
    "parse_recipe",
    "apply_overrides",
    "run_recipe",
    "check_data_root",
    "default_work",
    "recorded_recipe",
]
