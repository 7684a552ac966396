"""The contract tests' tiny translation model (tests/support/kind_recipe.py)."""

from pathlib import Path

from support.kind_recipe import Recipe, sentences


def _data(d: Path) -> list[str]:
    src = sentences(80)
    (d / "train.en").write_text("".join(f"{s}\n" for s in src), encoding="utf-8")
    (d / "train.de").write_text("".join(" ".join(s.split()[::-1]).upper() + "\n" for s in src), encoding="utf-8")
    return ["--src", str(d / "train.en"), "--tgt", str(d / "train.de")]


RECIPE = Recipe(("train", "translate"), _data,
                ("-q", "--layers", "1", "--embed-dim", "8", "--hidden-dim", "16", "--dropout", "0",
                 "--batch-tokens", "200", "--vocab-size", "290", "--seed", "3"))
