"""The contract tests' tiny text classifier (tests/support/kind_recipe.py)."""

import random
from pathlib import Path

from support.kind_recipe import Recipe, sentences


def _data(d: Path) -> list[str]:
    rng = random.Random(1)
    lines = [f"__label__{'pets' if rng.random() < 0.5 else 'nature'} {s}" for s in sentences(120)]
    (d / "train.txt").write_text("".join(f"{s}\n" for s in lines), encoding="utf-8")
    return [str(d / "train.txt")]


RECIPE = Recipe(("train", "classify"), _data,
                ("-q", "--embed-dim", "8", "--hidden-dim", "16", "--dropout", "0", "--batch-size", "8",
                 "--vocab-size", "290", "--seed", "3"))
