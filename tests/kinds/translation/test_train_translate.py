"""`rnntool train translate`: checks before training, the published bundle, tokenizers, resume."""

from __future__ import annotations

import json
import random

import pytest

from conftest import invoke
from rnntool.registry.store import Registry

TINY = ["-q", "--layers", "1", "--embed-dim", "8", "--hidden-dim", "16", "--dropout", "0",
        "--batch-tokens", "200", "--lr", "0.01", "--vocab-size", "290"]
WORDS = ["cat", "dog", "sees", "likes", "the", "a", "red", "house", "river", "small", "bird", "green", "tree"]


@pytest.fixture
def pairs(tmp_path):
    """80 short English-like sentences and their reversals in capitals, as two aligned files."""
    rng = random.Random(0)
    src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))) for _ in range(80)]
    src[5] = " ".join(["tree"] * 40)  # too long for --max-len 30
    tgt = [" ".join(line.split()[::-1]).upper() for line in src]
    (tmp_path / "train.en").write_text("".join(f"{s}\n" for s in src), encoding="utf-8")
    (tmp_path / "train.de").write_text("".join(f"{t}\n" for t in tgt), encoding="utf-8")
    return tmp_path / "train.en", tmp_path / "train.de"


def train(*args, input=None):
    r = invoke("train", "translate", *args, input=input)
    assert r.exit_code == 0, r.output
    return r


def test_line_count_mismatch_fails_before_training(tmp_path, registry):
    src, tgt = tmp_path / "ten.en", tmp_path / "eleven.de"
    src.write_text("".join(f"source {i}\n" for i in range(10)), encoding="utf-8")
    tgt.write_text("".join(f"target {i}\n" for i in range(11)), encoding="utf-8")
    r = invoke("train", "translate", "--src", src, "--tgt", tgt, "--name", "x", "--run-dir", tmp_path / "run")
    assert r.exit_code == 1
    assert r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert f"{src} has 10 lines" in errors[0] and f"{tgt} has 11" in errors[0]
    assert not (tmp_path / "run").exists()  # no tokenizer trained, no checkpoint written
    assert Registry.open(registry).names() == []


@pytest.mark.parametrize("args,message", [
    (["--name", "x", "-o", "out"], "--name NAME"),
    (["--name", "x", "--src", "a.en"], "--tgt"),
    (["--name", "x", "--tsv", "p.tsv", "--src", "a.en", "--tgt", "a.de"], "--tsv"),
    (["--name", "x", "--tsv", "p.tsv", "--valid-src", "v.en"], "--valid-tgt"),
    (["--name", "x", "--tsv", "p.tsv", "-t", "spm", "--src-tokenizer", "s"], "-t/--tokenizer"),
    (["--name", "x", "--tsv", "p.tsv", "--attention", "luong"], "'--attention': 'luong' is not one of"),
    (["--name", "x", "--tsv", "p.tsv", "--hidden-dim", "15"], "--hidden-dim must be even"),
    (["--name", "x", "--tsv", "p.tsv", "--select", "chrf"], "'--select': 'chrf' is not one of"),
    (["--name", "x", "--tsv", "p.tsv", "--select", "span-f1"], "--select span-f1: this model kind offers bleu, loss"),
    (["--name", "Bad Name", "--tsv", "p.tsv"], "invalid model name"),
    (["--name", "x", "--tsv", "p.tsv", "--sample-alpha", "2"], "--sample-alpha must be in [0, 1]"),
])
def test_bad_options_are_usage_errors_before_any_data_is_read(args, message):
    r = invoke("train", "translate", *args)  # the files do not exist: options fail first
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr


def test_publishes_a_complete_translation_bundle(pairs, registry):
    src, tgt = pairs
    r = train("--src", src, "--tgt", tgt, "--name", "rev", "--max-len", "30", "--max-steps", "4",
              "--valid-fraction", "0.1", "--json", *TINY)
    summary = json.loads(r.stdout)  # stdout is the JSON summary and nothing else
    assert summary["ref"] == "rev@1" and summary["steps"] == 4 and summary["stop_reason"] == "max_steps"
    assert summary["data"]["dropped_long"] == 1 and summary["data"]["pairs"] == 71
    assert summary["data"]["valid_pairs"] == 8
    reg = Registry.open(registry)
    b = reg.load("rev", kind="translation")
    assert set(b.files) == {"model.safetensors", "tokenizer.src.model", "tokenizer.tgt.model", "metrics.jsonl",
                            "shortlist.safetensors"}
    config = b.manifest["config"]
    assert config["model"]["attention"] == "general" and config["model"]["hidden_dim"] == 16
    assert config["train"]["max_steps"] == 4 and config["train"]["best_metric"] == "bleu"
    assert config["data"]["max_len"] == 30
    assert {"val_loss", "val_ppl", "val_bleu", "tokens_per_s"} <= set(b.metrics)
    from rnntool.textio import sha256_file

    assert [d["sha256"] for d in b.manifest["data"]] == [sha256_file(src), sha256_file(tgt)]
    assert b.parents == {"src_tokenizer": "rev-src-tokenizer@1", "tgt_tokenizer": "rev-tgt-tokenizer@1"}
    assert b.files["tokenizer.src.model"]["sha256"] != b.files["tokenizer.tgt.model"]["sha256"]
    # human summary and the published model works with `translate`
    r = train("--src", src, "--tgt", tgt, "--name", "rev", "--max-steps", "2", *TINY)
    assert r.stdout.startswith("published rev@2: val BLEU ")
    # the tokenizers it trained are in the registry too, and it says so (and `models show` says for what)
    assert "with src tokenizer rev-src-tokenizer@2, tgt tokenizer rev-tgt-tokenizer@2" in r.stdout, r.stdout
    shown = invoke("models", "show", "rev-src-tokenizer@1").stdout
    assert "for:" in shown and "rev (trained with it" in shown, shown
    out = invoke("translate", "-m", "rev", "-q", "--greedy", input="the red cat\n")
    assert out.exit_code == 0 and out.stdout.count("\n") == 1
    # and its lexical table, built from the training pairs, serves --shortlist
    from rnntool.kinds.translation.shortlist import LexicalTable

    table = LexicalTable.load(b.file("shortlist.safetensors"), config["model"]["src_vocab_size"],
                              config["model"]["tgt_vocab_size"])
    assert table.info["pairs"] == 71 and len(table.frequent) > 10
    out = invoke("translate", "-m", "rev", "-q", "--shortlist", "10", input="the red cat\n")
    assert out.exit_code == 0 and out.stdout.count("\n") == 1


def test_joint_vocab_from_stdin_tsv_to_output_dir(pairs, tmp_path):
    src, tgt = pairs
    tsv = "".join(f"{s}\t{t}\n" for s, t in zip(src.read_text().splitlines(), tgt.read_text().splitlines()))
    out = tmp_path / "bundle"
    r = train("--tsv", "-", "-o", out, "--joint-vocab", "--max-steps", "2", "--select", "loss", "--json", *TINY,
              "--vocab-size", "320",
              input=tsv)
    summary = json.loads(r.stdout)
    assert summary["path"] == str(out) and summary["tokenizers"] == {}
    b = Registry.open(tmp_path / "reg").load(str(out), kind="translation")
    assert b.files["tokenizer.src.model"]["sha256"] == b.files["tokenizer.tgt.model"]["sha256"]
    assert b.manifest["config"]["model"]["share_embeddings"] is True
    assert b.manifest["config"]["train"]["best_metric"] == "loss"


def test_registry_tokenizer_is_used_and_named(pairs, tmp_path, registry):
    from rnntool.tokenizers.training import train_tokenizer

    src, tgt = pairs
    reg = Registry.open(registry)
    with reg.staging() as stage:
        train_tokenizer([src, tgt], stage / "tokenizer.model", vocab_size=320)
        reg.publish(stage, name="spm", kind="tokenizer")
    train("--src", src, "--tgt", tgt, "--name", "rev", "-t", "spm", "--max-steps", "2", *TINY)
    b = reg.load("rev")
    assert b.parents == {"tokenizer": "spm@1"}
    assert b.files["tokenizer.src.model"]["sha256"] == reg.load("spm").files["tokenizer.model"]["sha256"]
    assert reg.names() == ["rev", "spm"]  # no tokenizer trained on the fly


def test_resume_continues_the_run(pairs, tmp_path, registry):
    src, tgt = pairs
    run = tmp_path / "run"
    train("--src", src, "--tgt", tgt, "--name", "rev", "--run-dir", run, "--max-steps", "3", *TINY)
    r = train("--resume", run, "--max-steps", "6", "--json", "-q")
    summary = json.loads(r.stdout)
    assert summary["ref"] == "rev@2" and summary["steps"] == 6
    first, second = Registry.open(registry).load("rev@1"), Registry.open(registry).load("rev@2")
    assert first.files["tokenizer.src.model"] == second.files["tokenizer.src.model"]  # same tokenizer file
    r = invoke("train", "translate", "--resume", run, "--src", src)
    assert r.exit_code == 2 and "--resume" in r.stderr


def test_subword_regularisation_samples_each_epoch_and_resumes_exactly(pairs, tmp_path, registry):
    import torch
    from safetensors.torch import load_file

    from conftest import kill_once_checkpointed
    from rnntool.kinds.catalog import WEIGHTS_FILE

    src, tgt = pairs
    args = ["train", "translate", "--src", src, "--tgt", tgt, *TINY, "--sample-alpha", "0.1", "--max-steps", "16",
            "--save-every", "2", "--eval-every", "8"]
    run = tmp_path / "run"
    kill_once_checkpointed([*args, "-o", tmp_path / "resumed", "--run-dir", run], run)
    assert invoke("train", "translate", "--resume", run, "-q").exit_code == 0
    r = invoke(*args, "-o", tmp_path / "straight", "--json")
    assert r.exit_code == 0, r.output
    resumed, straight = (load_file(tmp_path / d / WEIGHTS_FILE) for d in ("resumed", "straight"))
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    data = Registry.open(registry).load(str(tmp_path / "straight")).manifest["config"]["data"]
    assert data["sample_alpha"] == 0.1
    plain = invoke("train", "translate", "--src", src, "--tgt", tgt, *TINY, "--max-steps", "16", "--eval-every", "8",
                   "-o", tmp_path / "plain")
    assert plain.exit_code == 0
    plain = load_file(tmp_path / "plain" / WEIGHTS_FILE)
    assert not all(torch.equal(plain[k], straight[k]) for k in straight)  # the sampling changed training


def test_two_process_torchrun_trains_and_publishes_once(pairs, tmp_path, registry):
    import os
    import subprocess
    import sys

    src, tgt = pairs
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "rnntool", "train", "translate", "--src", str(src), "--tgt", str(tgt), "--name", "ddp",
           "--max-steps", "4", "--run-dir", str(tmp_path / "run"), "--json", "--device", "cpu", *TINY]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('"ref": "ddp@1"') == 1  # one summary: rank 0's
    reg = Registry.open(registry)
    assert [b.ref for b in reg.versions("ddp")] == ["ddp@1"]
    b = reg.load("ddp", kind="translation")
    assert b.manifest["extra"]["world_size"] == 2 and b.metrics["steps"] == 4


def test_existing_non_bundle_output_fails_before_any_data_is_read(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n")
    r = invoke("train", "translate", "--src", tmp_path / "missing.en", "--tgt", tmp_path / "missing.de",
               "-o", taken)
    assert r.exit_code == 2, r.output
    assert "is not an rnntool bundle" in r.stderr and "missing.en" not in r.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]


def test_relative_output_is_written_where_the_command_ran(pairs, tmp_path, monkeypatch):
    src, tgt = pairs
    monkeypatch.chdir(tmp_path)
    r = train("--src", src, "--tgt", tgt, "-o", "rel-bundle", "--max-steps", "1", "--json", *TINY)
    assert json.loads(r.stdout)["path"] == str(tmp_path / "rel-bundle")
    assert (tmp_path / "rel-bundle" / "manifest.json").is_file()


def test_warm_start_reports_tokenizers_apart_from_the_parent(pairs, registry):
    src, tgt = pairs
    train("--src", src, "--tgt", tgt, "--name", "rev", "--max-steps", "1", *TINY)
    r = train("--src", src, "--tgt", tgt, "--name", "warm", "--init-from", "rev", "--max-steps", "1", "--json",
              *TINY)
    summary = json.loads(r.stdout)
    assert summary["tokenizers"] == {"src_tokenizer": "rev-src-tokenizer@1", "tgt_tokenizer": "rev-tgt-tokenizer@1"}
    assert Registry.open(registry).load("warm").parents == {**summary["tokenizers"], "init": "rev@1"}


def test_manifest_names_the_run_directory_only_when_it_is_kept(pairs, tmp_path, registry):
    src, tgt = pairs
    train("--src", src, "--tgt", tgt, "--name", "rev", "--max-steps", "1", *TINY)
    reg = Registry.open(registry)
    assert reg.load("rev@1").manifest["extra"]["run_dir"] is None  # the default one is removed
    assert not any((registry / "runs").iterdir())
    train("--src", src, "--tgt", tgt, "--name", "rev", "--max-steps", "1", "--run-dir", tmp_path / "run", *TINY)
    assert reg.load("rev@2").manifest["extra"]["run_dir"] == str(tmp_path / "run")
    assert (tmp_path / "run").is_dir()


def test_if_changed_skips_before_reading_the_pairs(pairs, registry, monkeypatch):
    from rnntool.kinds.translation import train as seq2seq_train

    src, tgt = pairs
    args = ["--src", src, "--tgt", tgt, "--name", "rev", "--max-steps", "1", "--if-changed", "--json", *TINY]
    assert json.loads(train(*args).stdout)["status"] == "published"

    def read_corpora(spec, log):
        raise AssertionError("an unchanged run read the training pairs")

    monkeypatch.setattr(seq2seq_train, "read_corpora", read_corpora)
    assert json.loads(train(*args).stdout)["status"] == "skipped"
