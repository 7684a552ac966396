"""The model-kind contract, checked for every kind the catalog says rnntool trains.

A new kind gets these checks by adding its catalog line (rnntool/kinds/catalog.py) and a recipe
here: how to make tiny training data and train it in a second or two. Each check goes through the
real CLI: publish, load, verify (the bundle holds exactly the catalog's files), the retrain key
stable across processes (``--if-changed`` in a second process skips), and kill-then-resume giving
the same weights as an uninterrupted run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import invoke, kill_once_checkpointed, run_cli
from rnntool.kinds.catalog import CATALOG, WEIGHTS_FILE, model_kind
from rnntool.registry.store import Registry

WORDS = ["cat", "dog", "sees", "likes", "the", "a", "red", "house", "river", "small", "bird", "green", "tree"]


@dataclass
class Recipe:
    """How the contract tests train a tiny model of one kind: ``data(dir) -> args`` for the data."""

    command: tuple[str, ...]
    data: Callable[[Path], list[str]]
    tiny: tuple[str, ...]


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(n)]


def _lm_data(d: Path) -> list[str]:
    (d / "corpus.txt").write_text("".join(f"{s}\n" for s in _sentences(200)), encoding="utf-8")
    return [str(d / "corpus.txt")]


def _translation_data(d: Path) -> list[str]:
    src = _sentences(80)
    (d / "train.en").write_text("".join(f"{s}\n" for s in src), encoding="utf-8")
    (d / "train.de").write_text("".join(" ".join(s.split()[::-1]).upper() + "\n" for s in src), encoding="utf-8")
    return ["--src", str(d / "train.en"), "--tgt", str(d / "train.de")]


RECIPES = {
    "lm": Recipe(("train", "lm"), _lm_data,
                 ("-q", "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--dropout", "0",
                  "--batch-size", "4", "--bptt", "12", "--vocab-size", "290", "--seed", "3")),
    "translation": Recipe(("train", "translate"), _translation_data,
                          ("-q", "--layers", "1", "--embed-dim", "8", "--hidden-dim", "16", "--dropout", "0",
                           "--batch-tokens", "200", "--vocab-size", "290", "--seed", "3")),
}
TRAINED = sorted(k for k, e in CATALOG.items() if e.implementation)


def test_every_trained_kind_has_a_recipe_and_an_implementation():
    assert TRAINED and set(TRAINED) == set(RECIPES)
    for kind in TRAINED:
        impl = model_kind(kind)
        assert impl.name == kind and impl.command == " ".join(RECIPES[kind].command)


@pytest.fixture(params=TRAINED)
def kind(request) -> str:
    return request.param


def _train(kind: str, tmp_path: Path, *args) -> list[str]:
    recipe = RECIPES[kind]
    return [*recipe.command, *recipe.data(tmp_path), *recipe.tiny, *map(str, args)]


def test_publish_load_verify(kind, tmp_path, registry):
    r = invoke(*_train(kind, tmp_path, "--name", "c", "--max-steps", "3"))
    assert r.exit_code == 0, r.output
    b = Registry.open().load("c", kind=kind)
    assert sorted(b.files) == sorted(CATALOG[kind].files)  # exactly the catalog's files
    assert b.version == 1 and b.kind == kind and b.manifest["extra"]["run_id"]
    assert invoke("models", "verify", "c").exit_code == 0


def test_retrain_key_is_stable_across_processes(kind, tmp_path, registry):
    args = _train(kind, tmp_path, "--name", "c", "--max-steps", "2", "--if-changed")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args)  # another process: same data and settings, so the same key
    assert again.returncode == 0 and again.stdout.startswith("skipped: data and settings unchanged since c@1"), \
        again.stdout + again.stderr
    assert [b.version for b in Registry.open().versions("c")] == [1]


def test_kill_and_resume_give_the_uninterrupted_weights(kind, tmp_path):
    run = tmp_path / "run"
    args = _train(kind, tmp_path, "--max-steps", "40", "--save-every", "2", "--eval-every", "20")
    kill_once_checkpointed([*args, "-o", tmp_path / "resumed", "--run-dir", run], run)
    r = invoke(*RECIPES[kind].command, "--resume", run, "-q")
    assert r.exit_code == 0, r.output
    r = invoke(*args, "-o", tmp_path / "straight")
    assert r.exit_code == 0, r.output
    resumed, straight = (load_file(tmp_path / d / WEIGHTS_FILE) for d in ("resumed", "straight"))
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)
