"""How the model-kind contract tests (tests/kinds/test_kind_contract.py) train a tiny model of a kind.

Each kind the catalog says rnntool trains has ``tests/kinds/<kind>/recipe.py`` defining ``RECIPE``:
the command, a function writing tiny training data into a directory (returning the data arguments)
and the options that make training take a second or two. The contract test finds it from the
catalog: a new kind adds its catalog line and this file beside its own tests, nothing else.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KINDS_TESTS = Path(__file__).resolve().parent.parent / "kinds"
WORDS = ["cat", "dog", "sees", "likes", "the", "a", "red", "house", "river", "small", "bird", "green", "tree"]


@dataclass
class Recipe:
    """``command`` (("train", "lm")), ``data(dir) -> args`` for the data, ``tiny`` options, ``steps(n)``:
    the options of a run of about n steps, and whether rnntool's loop trains it (``loop``)."""

    command: tuple[str, ...]
    data: Callable[[Path], list[str]]
    tiny: tuple[str, ...]
    steps: Callable[[int], list[str]] = lambda n: ["--max-steps", str(n)]  # a short run
    loop: bool = True  # trained by rnntool's loop: checkpoints, --resume, torchrun (word2vec: gensim's)


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` short sentences over a 13-word vocabulary, the same for a seed."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(n)]


def recipe(kind: str) -> Recipe | None:
    """The ``RECIPE`` of tests/kinds/<kind>/recipe.py, or None when the kind has none."""
    path = KINDS_TESTS / kind / "recipe.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"recipe_{kind}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE
