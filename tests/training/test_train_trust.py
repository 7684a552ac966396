"""What a cron job relies on from `train`: no wrong model shipped, resumes that do what was asked
once, a --max-time that covers the whole command, and absurd sizes refused before allocating."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import invoke, kill_once_checkpointed
from rnntool.errors import CorruptBundle
from rnntool.registry.store import Registry
from rnntool.training.time_budget import TimeBudget
from rnntool.training.trainer import train
from rnntool.layers.weights import read_safetensors_header

from support.toy_training import make_task, Sleepy, toy_config as cfg

TINY = ["-q", "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--dropout", "0",
        "--batch-size", "4", "--bptt", "12", "--vocab-size", "300"]


def strict_json(text: str):
    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


def rewrite_manifest(bundle_dir: Path, edit) -> None:
    """Edit a manifest and re-seal its own checksum, as a hostile co-user of the registry could."""
    p = bundle_dir / "manifest.json"
    m = json.loads(p.read_text())
    edit(m)
    body = {k: v for k, v in m.items() if k != "manifest_sha256"}
    canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    m["manifest_sha256"] = hashlib.sha256(canon).hexdigest()
    p.write_text(json.dumps(m, indent=2))


# -- sizes: checked before anything is allocated ------------------------------------------------------
def test_an_absurd_hidden_dim_is_a_clear_error_before_any_work(corpus, registry):
    r = invoke("train", "lm", corpus, "--name", "big", "--hidden-dim", "1000000", "--max-steps", "1")
    assert r.exit_code == 2, r.output
    assert "the model would have" in r.stderr and "lower --hidden-dim" in r.stderr
    assert "internal error" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (registry / "models").exists()  # not even the tokenizer was trained


def test_a_manifest_asking_for_a_huge_model_is_refused_before_allocating(tiny_lm_bundle):
    bundle = tiny_lm_bundle(steps=2)
    rewrite_manifest(bundle, lambda m: m["config"]["model"].update(hidden_dim=100_000))  # ~160 GB of LSTM
    r = invoke("evaluate", "perplexity", "-m", bundle, input="a line\n")
    assert r.exit_code == 1, r.output
    assert "weights do not match the model config" in r.stderr and "internal error" not in r.stderr


def test_a_safetensors_header_cannot_claim_more_than_the_file_holds(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]}}).encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    with pytest.raises(CorruptBundle, match="cannot read the model weights .* has shape .* but 16 bytes"):
        read_safetensors_header(p)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    p.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    assert read_safetensors_header(p) == {"w": ("F32", (4,))}


# -- a diverged run ships nothing -------------------------------------------------------------------
def test_a_diverged_run_publishes_and_promotes_nothing(corpus, registry):
    r = invoke("train", "lm", corpus, "--name", "boom", *TINY, "--lr", "1e6", "--max-steps", "6",
               "--eval-every", "3", "--promote", "prod", "--json")
    assert r.exit_code == 1, r.output
    assert r.stdout == ""
    error = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "diverged" in error[0] and "nothing was published" in error[0]
    reg = Registry(registry)
    assert reg.versions("boom") == [] and reg.versions("boom-tokenizer") == []


def test_manifests_and_json_output_never_hold_infinity(tmp_path):
    from rnntool.registry.store import write_bundle

    src = tmp_path / "src"
    src.mkdir()
    (src / "tokenizer.model").write_text("x")
    b = write_bundle(src, tmp_path / "out", name="inf", kind="tokenizer",
                     metrics={"val_ppl": float("inf"), "nested": [float("nan"), 1.0]})
    manifest = strict_json((b.path / "manifest.json").read_text())
    assert manifest["metrics"] == {"val_ppl": None, "nested": [None, 1.0]}
    assert b.verify().metrics["val_ppl"] is None


# -- resume: once, and everything the command asked ---------------------------------------------------
def test_resume_does_what_the_original_command_asked_promote_included(corpus, tmp_path, registry):
    run = tmp_path / "run"
    kill_once_checkpointed(["train", "lm", corpus, "--name", "cron", *TINY, "--max-steps", "400", "--save-every", "2",
                            "--eval-every", "200", "--promote", "prod", "--run-dir", run], run)
    assert Registry(registry).versions("cron") == []
    r = invoke("train", "lm", "--resume", run)
    assert r.exit_code == 0, r.output
    assert "promoted to @prod" in r.stdout
    assert Registry(registry).aliases("cron") == {"prod": 1}


def test_resume_of_a_run_that_published_publishes_nothing_again(corpus, tmp_path, registry):
    run = tmp_path / "run"
    r = invoke("train", "lm", corpus, "--name", "once", *TINY, "--max-steps", "4", "--promote", "prod",
               "--run-dir", run)
    assert r.exit_code == 0, r.output
    assert json.loads((run / "published.json").read_text())["ref"] == "once@1"
    r = invoke("train", "lm", "--resume", run, "--json")
    assert r.exit_code == 0, r.output
    assert strict_json(r.stdout)["status"] == "already_published" and "once@1" in r.stderr
    # killed in the window after the rename, before the run could record it or move the alias:
    reg = Registry(registry)
    (run / "published.json").unlink()
    (reg.model_dir("once") / "aliases" / "prod").unlink()
    r = invoke("train", "lm", "--resume", run)
    assert r.exit_code == 0, r.output
    assert "already published" in r.stdout and "moved @prod to once@1" in r.stderr
    assert [b.version for b in reg.versions("once")] == [1] and reg.aliases("once") == {"prod": 1}


def test_a_resume_needs_a_raised_budget_to_train_a_published_run_on(corpus, tmp_path, registry):
    run = tmp_path / "run"
    assert invoke("train", "lm", corpus, "--name", "on", *TINY, "--max-steps", "4", "--run-dir", run).exit_code == 0
    r = invoke("train", "lm", "--resume", run, "--max-steps", "4")  # the same budget: nothing new to do
    assert r.exit_code == 0 and "already published" in r.stdout, r.output
    r = invoke("train", "lm", "--resume", run, "--max-steps", "6")
    assert r.exit_code == 0 and "published on@2" in r.stdout and "(6 steps" in r.stdout, r.output


def test_two_processes_cannot_resume_one_run_at_once(corpus, tmp_path):
    from rnntool.registry.locking import FileLock

    run = tmp_path / "run"
    assert invoke("train", "lm", corpus, "-o", tmp_path / "out", "--run-dir", run, *TINY, "--max-steps", "2",
                  "--save-every", "1").exit_code == 0
    with FileLock(run / "run.lock").acquire():
        proc = subprocess.run([sys.executable, "-m", "rnntool", "train", "lm", "--resume", run, "--max-steps", "4"],
                              capture_output=True, text=True)
    assert proc.returncode == 75, proc.stderr
    assert f"training run {run}" in proc.stderr


def test_a_registry_busy_at_publish_time_keeps_the_run_to_publish_later(corpus, tmp_path, registry):
    """Training is done when the publish lock times out: exit 1 (not 75, which cron reads as 'skipped')
    and the way to publish it."""
    from conftest import kill, spawn

    run = tmp_path / "run"
    (registry / "locks").mkdir(parents=True)
    holder = spawn("import sys, time\nfrom rnntool.registry.locking import FileLock\n"
                   "FileLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)",
                   str(registry / "locks" / "busy@publish.lock"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = invoke("train", "lm", corpus, "--name", "busy", *TINY, "--max-steps", "2", "--run-dir", run,
                   env={"RNNTOOL_LOCK_TIMEOUT": "1"})
    finally:
        kill(holder)
    assert r.exit_code == 1, r.output
    assert "trained, but not published" in r.stderr and f"rnntool train lm --resume {run}" in r.stderr
    r = invoke("train", "lm", "--resume", run)
    assert r.exit_code == 0 and "published busy@1" in r.stdout, r.output


# -- --max-time covers the whole command ------------------------------------------------------------
class SlowValidation:
    """A toy task whose validation takes ``seconds`` (as a large validation set would)."""

    def __init__(self, task, seconds: float) -> None:
        self.task, self.seconds = task, seconds

    def __getattr__(self, name):
        return getattr(self.task, name)

    def evaluate(self, model):
        time.sleep(self.seconds)
        return self.task.evaluate(model)


def test_max_time_leaves_room_for_the_final_validation(tmp_path):
    torch.set_num_threads(1)
    budget = TimeBudget(limit=5.0)
    task = SlowValidation(make_task(0), seconds=1.0)
    result = train(task, cfg(max_time=5.0, eval_every=40), run_dir=tmp_path / "r", callbacks=[Sleepy(0.01)],
                   budget=budget)
    assert result.stop_reason == "max_time"
    assert budget.elapsed() <= 5.0  # the old loop trained 5 s, then validated 1 s more
    assert budget.spent["validating"] >= 2.0  # a scheduled (or the half-time) validation, and the final one
    assert budget.spent["training"] > 0 and "time: 5s budget" in budget.report()


@pytest.mark.parametrize("eval_every", [None, 1])  # 1: the run ends on a step that validated and saved
def test_a_resumed_budget_is_extra_time_and_a_spent_one_says_so(tmp_path, eval_every):
    torch.set_num_threads(1)
    run = tmp_path / "r"
    first = train(make_task(0), cfg(max_time=2.5, eval_every=eval_every), run_dir=run, callbacks=[Sleepy(0.01)],
                  budget=TimeBudget(limit=2.5))
    assert first.stop_reason == "max_time"

    class Notes:
        note = None

        def on_train_start(self, info):
            Notes.note = info.note

    again = train(make_task(0), cfg(max_time=2.5), run_dir=run, resume=True, callbacks=[Notes()],
                  budget=TimeBudget())
    assert again.steps == first.steps and "time budget is spent" in Notes.note
    more = train(make_task(0), cfg(max_time=2.5), run_dir=run, resume=True, callbacks=[Sleepy(0.01)],
                 budget=TimeBudget(limit=2.5, extends_run=True))
    assert more.steps > first.steps


# -- a full disk is one clear line ------------------------------------------------------------------
def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_publishing_says_where_and_that_nothing_was_published(corpus, registry, monkeypatch):
    monkeypatch.setattr("rnntool.kinds.lm.model.save_lm", _disk_full)
    r = invoke("train", "lm", corpus, "--name", "full", *TINY, "--max-steps", "2")
    assert r.exit_code == 1, r.output
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("rnntool: error: no space left on device writing ") and "nothing was published" in line
    assert str(registry / ".staging") in line and "internal error" not in r.stderr
    assert Registry(registry).versions("full") == []


def test_a_full_disk_while_checkpointing_names_the_run_directory(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr("rnntool.training.loop.save_loop_checkpoint", _disk_full)
    run = tmp_path / "run"
    r = invoke("train", "lm", corpus, "-o", tmp_path / "out", "--run-dir", run, *TINY, "--max-steps", "2")
    assert r.exit_code == 1, r.output
    assert f"no space left on device writing {run}" in r.stderr and "nothing was published" in r.stderr
    assert not (tmp_path / "out").exists()
