"""The contract tests' tiny word2vec model (tests/support/kind_recipe.py)."""

from pathlib import Path

from support.kind_recipe import Recipe, sentences


def _data(d: Path) -> list[str]:
    (d / "corpus.txt").write_text("".join(f"{s}\n" for s in sentences(200)), encoding="utf-8")
    return [str(d / "corpus.txt")]


RECIPE = Recipe(("train", "word2vec"), _data, ("-q", "--embed-dim", "8", "--min-count", "1", "--threads", "1",
                                               "--seed", "3"),
                steps=lambda n: ["--epochs", str(n)], loop=False)
