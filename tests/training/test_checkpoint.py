"""Checkpoints: safetensors + JSON only, verified on load, clear refusals, atomic pointer, pruning."""

from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from rnntool.training.checkpoint import CheckpointWriter, list_checkpoints, load_checkpoint, read_run_info
from rnntool.training.state_codec import capture_rng, flatten_state, restore_rng, unflatten_state
from rnntool.errors import CheckpointError
from rnntool.training.trainer import train

from support.toy_training import make_task, toy_config as cfg, ToyLM

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("template") / "run"
    torch.set_num_threads(1)
    train(make_task(0), cfg(max_steps=6, eval_every=2, save_every=1, keep_checkpoints=2), run_dir=d,
          model_config={"toy": 1}, run_meta={"data": "train.txt"})
    return d


@pytest.fixture
def run_dir(trained_run, tmp_path) -> Path:
    """A fresh copy of a finished 6-step run (checkpoints at every step, 2 kept)."""
    d = tmp_path / "run"
    shutil.copytree(trained_run, d)
    return d


def test_run_dir_holds_only_safetensors_and_json(run_dir):
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files
    for p in files:
        head = p.read_bytes()[:2]
        assert head[:1] != b"\x80" and head != b"PK", f"{p} looks like a pickle / torch.save file"
        if p.suffix == ".safetensors":
            (n,) = struct.unpack("<Q", p.read_bytes()[:8])
            json.loads(p.read_bytes()[8: 8 + n])  # the safetensors header is JSON
            with safe_open(str(p), framework="pt") as f:
                assert list(f.keys()) is not None
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                json.loads(line)
        else:
            assert p.name == "checkpoint" and p.read_text().strip().startswith("ckpt-"), p


def test_pointer_names_the_newest_and_old_checkpoints_are_pruned(run_dir):
    names = [p.name for p in list_checkpoints(run_dir)]
    assert names == ["ckpt-00000005", "ckpt-00000006"]
    assert (run_dir / "checkpoint").read_text().strip() == "ckpt-00000006"
    assert not list(run_dir.glob(".tmp-*"))


def test_checkpoint_contents_and_best_weights(run_dir):
    ckpt = load_checkpoint(run_dir)
    assert ckpt.step == 6 and ckpt.state["loop"]["step"] == 6
    assert ckpt.state["model_config"] == {"toy": 1}
    assert ckpt.best_step == ckpt.state["loop"]["best_step"]
    assert set(ckpt.model_state) == set(ToyLM().state_dict())
    # tied weights are stored once and come back tied-equal
    with safe_open(str(ckpt.path / "model.safetensors"), framework="pt") as f:
        assert len(list(f.keys())) == len(ckpt.model_state) - 1
    assert torch.equal(ckpt.model_state["out.weight"], ckpt.model_state["embed.weight"])
    assert ckpt.best_state is not None and set(ckpt.best_state) == set(ckpt.model_state)
    assert read_run_info(run_dir)["meta"] == {"data": "train.txt"}
    assert read_run_info(run_dir)["train"]["max_steps"] == 6


def test_best_weights_in_the_run_dir_match_the_returned_model(tmp_path):
    task = make_task(0, valid_losses=[3.0, 1.0, 2.0, 2.5])
    train(task, cfg(max_steps=8, eval_every=2), run_dir=tmp_path / "r")
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt.best_step == 4
    for k, v in task.model.state_dict().items():
        assert torch.equal(ckpt.best_state[k], v), k
    assert not torch.equal(ckpt.model_state["rnn.weight_hh_l0"], ckpt.best_state["rnn.weight_hh_l0"])


def test_resume_without_checkpoint_refuses(tmp_path):
    (tmp_path / "empty").mkdir()
    for d in (tmp_path / "empty", tmp_path / "nope"):
        with pytest.raises(CheckpointError) as exc:
            train(make_task(0), cfg(max_steps=3), run_dir=d, resume=True)
        msg = str(exc.value)
        assert str(d) in msg and "without --resume" in msg and "\n" not in msg


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_over(tmp_path):
    from rnntool.training.checkpoint import write_run_info

    straight = train(make_task(0), cfg(max_steps=5), run_dir=tmp_path / "straight")
    (tmp_path / "started").mkdir()
    write_run_info(tmp_path / "started", train=cfg(max_steps=5).to_dict(), model=None, meta={})
    notes = []

    class Note:
        def on_train_start(self, info):
            notes.append(info.note)

    task = make_task(0)
    resumed = train(task, cfg(max_steps=5), run_dir=tmp_path / "started", resume=True, callbacks=[Note()])
    assert resumed.steps == straight.steps == 5 and resumed.best_metrics == straight.best_metrics
    assert "holds no checkpoint yet: training the run from its start" in notes[0]


def test_a_run_killed_before_its_first_pointer_resumes_from_the_checkpoint_directory(tmp_path):
    straight = train(make_task(0), cfg(max_steps=6), run_dir=tmp_path / "straight")
    first = train(make_task(0), cfg(max_steps=3), run_dir=tmp_path / "r")
    (tmp_path / "r" / "checkpoint").unlink()  # the kill came after the rename, before the pointer
    resumed = train(make_task(0), cfg(max_steps=6), run_dir=tmp_path / "r", resume=True)
    assert first.steps == 3 and resumed.steps == 6 and resumed.best_metrics == straight.best_metrics


def test_corrupt_checkpoint_file_refuses_naming_it(run_dir):
    target = run_dir / "ckpt-00000006" / "state.safetensors"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as exc:
        train(make_task(0), cfg(max_steps=9), run_dir=run_dir, resume=True)
    msg = str(exc.value)
    assert str(target) in msg and "checksum mismatch" in msg and "older" in msg


@pytest.mark.parametrize("damage", ["pointer_garbage", "manifest_missing", "truncated"])
def test_damaged_checkpoint_refuses(run_dir, damage):
    ckpt = run_dir / "ckpt-00000006"
    if damage == "pointer_garbage":
        (run_dir / "checkpoint").write_text("ckpt-00000099\n")
        needle = "checkpoint"
    elif damage == "manifest_missing":
        (ckpt / "manifest.json").unlink()
        needle = "manifest.json"
    else:
        p = ckpt / "state.safetensors"
        p.write_bytes(p.read_bytes()[:20])
        needle = "state.safetensors"
    with pytest.raises(CheckpointError) as exc:
        train(make_task(0), cfg(max_steps=9), run_dir=run_dir, resume=True)
    assert needle in str(exc.value)


def test_resume_refuses_a_different_model_config(run_dir):
    with pytest.raises(CheckpointError, match="model config differs.*toy"):
        train(make_task(0), cfg(max_steps=9), run_dir=run_dir, resume=True, model_config={"toy": 2})


def test_resume_refuses_a_model_that_does_not_fit(run_dir):
    task = make_task(0)
    task.model = ToyLM(vocab=13)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train(task, cfg(max_steps=9), run_dir=run_dir, resume=True)


def test_resume_refuses_a_different_optimizer(run_dir):
    with pytest.raises(CheckpointError, match="optimizer"):
        train(make_task(0), cfg(max_steps=9, optimizer="sgd"), run_dir=run_dir, resume=True,
              model_config={"toy": 1})


def test_read_run_info_of_a_non_run_dir(tmp_path):
    with pytest.raises(CheckpointError, match="run.json"):
        read_run_info(tmp_path)


def test_nested_state_round_trip():
    random.seed(3)
    np.random.seed(4)
    state = {
        "optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]},
        "hidden": (torch.zeros(1, 2, 4), torch.ones(1, 2, 4)),
        "nothing": None, "inf": float("inf"), "text": "ä",
    }
    state["rng"] = capture_rng()
    tensors: dict = {}
    meta = json.loads(json.dumps(flatten_state(state, tensors)))
    back = unflatten_state(meta, tensors)
    assert back["optimizer"]["state"][0]["step"].item() == 3.0
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert isinstance(back["hidden"], tuple) and torch.equal(back["hidden"][1], torch.ones(1, 2, 4))
    assert back["inf"] == float("inf") and back["text"] == "ä" and back["nothing"] is None
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(back["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_writer_replaces_pointer_only_after_complete_checkpoint(tmp_path, monkeypatch):
    model = ToyLM()
    writer = CheckpointWriter(tmp_path, keep=3)
    writer.save(1, model_state=model.state_dict(), best_state=None, best_step=None, state={"x": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    import rnntool.training.checkpoint as ck

    monkeypatch.setattr(ck, "_write_json", boom)
    with pytest.raises(OSError):
        writer.save(2, model_state=model.state_dict(), best_state=None, best_step=None, state={"x": 2})
    assert (tmp_path / "checkpoint").read_text().strip() == "ckpt-00000001"
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000001"]
    assert not list(tmp_path.glob(".tmp-*"))
    assert load_checkpoint(tmp_path).state == {"x": 1}
