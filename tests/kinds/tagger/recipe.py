"""The contract tests' tiny tagger (tests/support/kind_recipe.py): NER-like BIO tags on toy sentences."""

from pathlib import Path

from support.kind_recipe import Recipe, sentences

NAMES = {"cat": "B-ANIMAL", "dog": "B-ANIMAL", "bird": "B-ANIMAL", "house": "B-PLACE", "river": "B-PLACE"}


def _data(d: Path) -> list[str]:
    blocks = []
    for s in sentences(120):
        blocks.append("".join(f"{w}\t{NAMES.get(w, 'O')}\n" for w in s.split()))
    (d / "train.conll").write_text("\n".join(blocks), encoding="utf-8")
    return [str(d / "train.conll")]


RECIPE = Recipe(("train", "tag"), _data,
                ("-q", "--embed-dim", "8", "--char-hidden", "8", "--hidden-dim", "16", "--layers", "1",
                 "--dropout", "0", "--batch-size", "8", "--seed", "3"))
