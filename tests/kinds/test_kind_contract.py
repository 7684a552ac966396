"""The model-kind contract, checked for every kind the catalog says rnntool trains.

A new kind gets these checks from its catalog line (rnntool/kinds/catalog.py) and the recipe beside
its own tests (tests/kinds/<kind>/recipe.py: how to make tiny training data and train it in a second
or two; tests/support/kind_recipe.py); this file is not edited for it. Each check goes through the
real CLI: publish, load, verify (the bundle holds exactly the catalog's files), the retrain key
stable across processes (``--if-changed`` in a second process skips), and kill-then-resume giving
the same weights as an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import invoke, kill_once_checkpointed, run_cli
from rnntool.kinds.catalog import CATALOG, WEIGHTS_FILE, model_kind
from rnntool.registry.store import Registry
from support.kind_recipe import recipe

TRAINED = sorted(k for k, e in CATALOG.items() if e.implementation)
RECIPES = {kind: recipe(kind) for kind in TRAINED}


def test_every_trained_kind_has_a_recipe_and_an_implementation():
    assert TRAINED
    for kind in TRAINED:
        assert RECIPES[kind] is not None, f"tests/kinds/{kind}/recipe.py is missing"
        impl = model_kind(kind)
        assert impl.name == kind and impl.command == " ".join(RECIPES[kind].command)


@pytest.fixture(params=TRAINED)
def kind(request) -> str:
    return request.param


def _train(kind: str, tmp_path: Path, *args) -> list[str]:
    recipe = RECIPES[kind]
    return [*recipe.command, *recipe.data(tmp_path), *recipe.tiny, *map(str, args)]


def test_publish_load_verify(kind, tmp_path, registry):
    r = invoke(*_train(kind, tmp_path, "--name", "c", *RECIPES[kind].steps(3)))
    assert r.exit_code == 0, r.output
    b = Registry.open().load("c", kind=kind)
    assert sorted(b.files) == sorted(CATALOG[kind].files)  # exactly the catalog's files
    assert b.version == 1 and b.kind == kind and b.manifest["extra"]["run_id"]
    assert invoke("models", "verify", "c").exit_code == 0


def test_retrain_key_is_stable_across_processes(kind, tmp_path, registry):
    args = _train(kind, tmp_path, "--name", "c", *RECIPES[kind].steps(2), "--if-changed")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args)  # another process: same data and settings, so the same key
    assert again.returncode == 0 and again.stdout.startswith("skipped: data and settings unchanged since c@1"), \
        again.stdout + again.stderr
    assert [b.version for b in Registry.open().versions("c")] == [1]


def test_kill_and_resume_give_the_uninterrupted_weights(kind, tmp_path):
    if not RECIPES[kind].loop:
        pytest.skip(f"{kind} is not trained by rnntool's loop: no checkpoints to resume from")
    run = tmp_path / "run"
    args = _train(kind, tmp_path, "--max-steps", "40", "--save-every", "2", "--eval-every", "20")
    kill_once_checkpointed([*args, "-o", tmp_path / "resumed", "--run-dir", run], run)
    r = invoke(*RECIPES[kind].command, "--resume", run, "-q")
    assert r.exit_code == 0, r.output
    r = invoke(*args, "-o", tmp_path / "straight")
    assert r.exit_code == 0, r.output
    resumed, straight = (load_file(tmp_path / d / WEIGHTS_FILE) for d in ("resumed", "straight"))
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)
    # and the same retrain key: a cron run with --if-changed after a resumed run still skips
    keys = [Registry.open().load(str(tmp_path / d)).manifest["extra"]["retrain_key"] for d in ("resumed", "straight")]
    assert keys[0] == keys[1]


def test_torchrun_two_processes_train_and_rank_0_alone_publishes(kind, tmp_path, registry):
    if not RECIPES[kind].loop:
        pytest.skip(f"{kind} is not trained by rnntool's loop: one process")
    import os
    import subprocess
    import sys

    # two CPU processes (gloo), also where a GPU is (one GPU takes one process)
    args = _train(kind, tmp_path, "--name", "ddp", "--max-steps", "4", "--run-dir", tmp_path / "run", "--json",
                  "--device", "cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "rnntool",
           *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    reg = Registry.open(registry)
    assert [b.ref for b in reg.versions("ddp")] == ["ddp@1"]
    b = reg.load("ddp", kind=kind)
    assert b.manifest["extra"]["world_size"] == 2 and b.metrics["steps"] == 4
    for parent in b.manifest["parents"].values():  # tokenizers trained on the fly: published once
        name = parent.split("@")[0]
        assert [v.ref for v in reg.versions(name)] == [f"{name}@1"]
    assert r.stdout.count('"ref": "ddp@1"') == 1  # one summary: rank 0's


def test_init_range_starts_every_weight_uniform_and_is_recorded(kind, tmp_path):
    if not RECIPES[kind].loop:
        r = invoke(*_train(kind, tmp_path, "--init-range", "0.05", *RECIPES[kind].steps(1)))
        assert r.exit_code == 2 and "--init-range" in r.stderr  # a kind that trains itself does not offer it
        return
    # one SGD step of a negligible rate: the published weights are the initial ones, to float precision
    step = ["--optimizer", "sgd", "--lr", "1e-9", "--max-steps", "1", "--seed", "5"]
    r = invoke(*_train(kind, tmp_path, *step, "--init-range", "0.05", "-o", tmp_path / "uniform"))
    assert r.exit_code == 0, r.output
    r = invoke(*_train(kind, tmp_path, *step, "-o", tmp_path / "default"))
    assert r.exit_code == 0, r.output
    uniform, default = (load_file(tmp_path / d / WEIGHTS_FILE) for d in ("uniform", "default"))
    assert uniform.keys() == default.keys()
    assert all(w.abs().max() <= 0.05 + 1e-6 for w in uniform.values() if w.is_floating_point())
    assert max(w.abs().max() for w in default.values() if w.is_floating_point()) > 0.2  # torch's own start
    big = [k for k, w in uniform.items() if w.is_floating_point() and w.numel() >= 200]
    assert big and all(uniform[k].abs().max() > 0.04 for k in big)  # drawn over the whole range
    configs = [Registry.open().load(str(tmp_path / d)).config["train"] for d in ("uniform", "default")]
    assert configs[0]["init_range"] == 0.05 and "init_range" not in configs[1]  # default: as before it existed
    # killed before its first checkpoint, a run starts over on --resume: with its --init-range too
    run = tmp_path / "run"
    long = ["--optimizer", "sgd", "--lr", "1e-9", "--max-steps", "300", "--eval-every", "100000", "--seed", "5"]
    kill_once_checkpointed([*_train(kind, tmp_path, *long, "--init-range", "0.05", "-o", tmp_path / "restarted",
                                    "--run-dir", run)], run, marker="run.json")
    assert not (run / "checkpoint").exists()
    r = invoke(*RECIPES[kind].command, "--resume", run, "-q")
    assert r.exit_code == 0, r.output
    restarted = load_file(tmp_path / "restarted" / WEIGHTS_FILE)
    assert all(w.abs().max() <= 0.05 + 1e-6 for w in restarted.values() if w.is_floating_point())
