"""The contract tests' tiny language model (tests/support/kind_recipe.py)."""

from pathlib import Path

from support.kind_recipe import Recipe, sentences


def _data(d: Path) -> list[str]:
    (d / "corpus.txt").write_text("".join(f"{s}\n" for s in sentences(200)), encoding="utf-8")
    return [str(d / "corpus.txt")]


RECIPE = Recipe(("train", "lm"), _data,
                ("-q", "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--dropout", "0",
                 "--batch-size", "4", "--bptt", "12", "--vocab-size", "290", "--seed", "3"))
