"""`rnntool train lm`: overfitting a tiny corpus, the published bundle, tokenizers, cache, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import invoke, kill_once_checkpointed
from rnntool.registry.store import Registry

TINY = ["-q", "--embed-dim", "24", "--hidden-dim", "32", "--layers", "1", "--dropout", "0",
        "--batch-size", "4", "--bptt", "12", "--lr", "0.02"]


@pytest.fixture
def chain(tmp_path):
    """Every word appears once, so each token is predictable from the one before: loss can reach ~0."""
    words = [f"w{i:03d}" for i in range(60)]
    lines = [" ".join(words[i : i + 6]) for i in range(0, 60, 6)]
    p = tmp_path / "chain.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def train(*args, input=None):
    r = invoke("train", "lm", *args, input=input)
    assert r.exit_code == 0, r.output
    return r


def test_tiny_corpus_is_overfit_and_metrics_match_evaluate_perplexity(chain, registry):
    r = train(chain, "--name", "chain", "--valid", chain, "--model-type", "word", "--vocab-size", "64",
              "--max-steps", "200", "--eval-every", "50", "--json", *TINY, "--batch-size", "1", "--lr", "0.03")
    summary = json.loads(r.stdout)
    assert summary["ref"] == "chain@1"
    metrics = summary["metrics"]
    assert metrics["val_loss"] < 0.1, metrics  # near zero: memorized
    assert metrics["val_ppl"] == pytest.approx(math.exp(metrics["val_loss"]))
    # the published validation numbers are what `evaluate perplexity` says on the same text
    ppl = json.loads(invoke("evaluate", "perplexity", "-m", "chain", chain, "--json").stdout)
    assert ppl["nats_per_token"] == pytest.approx(metrics["val_loss"], rel=1e-4, abs=1e-6)
    assert ppl["bits_per_character"] == pytest.approx(metrics["val_bpc"], rel=1e-4, abs=1e-6)


def test_bundle_files_manifest_and_tokenizer_parent(corpus, registry):
    r = train(corpus, "--name", "eng", "--vocab-size", "320", "--max-steps", "6", "--mode", "sentence", *TINY)
    assert r.stdout.startswith("published eng@1: val ppl ")
    reg = Registry.open(registry)
    b = reg.load("eng", kind="lm")
    assert set(b.files) == {"model.safetensors", "tokenizer.model", "metrics.jsonl"}
    config = b.manifest["config"]
    assert config["model"]["cell"] == "lstm" and config["model"]["vocab_size"] == 320
    assert config["data"]["mode"] == "sentence" and config["train"]["max_steps"] == 6
    assert {"val_loss", "val_ppl", "val_bpc"} <= set(b.metrics)
    assert b.manifest["data"][0]["sha256"] and b.manifest["data"][0]["lines"] == 600
    assert b.parents == {"tokenizer": "eng-tokenizer@1"}
    tok = reg.load("eng-tokenizer@1", kind="tokenizer")
    assert tok.files["tokenizer.model"]["sha256"] == b.files["tokenizer.model"]["sha256"]
    assert [json.loads(line)["type"] for line in b.file("metrics.jsonl").read_text().splitlines()]
    # a second run with the same tokenizer reuses the published tokenizer and the token cache
    train(corpus, "--name", "eng", "--vocab-size", "320", "--max-steps", "2", "--mode", "sentence", *TINY)
    assert len(list((registry / "cache" / "lm-tokens").iterdir())) == 1  # the second run hit the cache
    assert reg.load("eng@2").parents == {"tokenizer": "eng-tokenizer@1"}


def test_registry_tokenizer_stdin_and_output_dir(corpus, tmp_path, registry):
    from rnntool.tokenizers.training import train_tokenizer

    reg = Registry.open(registry)
    with reg.staging() as stage:
        train_tokenizer([corpus], stage / "tokenizer.model", vocab_size=300)
        reg.publish(stage, name="spm", kind="tokenizer")
    out = tmp_path / "bundle"
    train("-t", "spm", "-o", out, "--max-steps", "4", "--cell", "gru", *TINY, input=corpus.read_text())
    b = Registry.open(registry).load(str(out), kind="lm")
    assert b.version is None and b.parents == {"tokenizer": "spm@1"}
    assert b.manifest["config"]["model"]["vocab_size"] == 300 and b.manifest["data"][0]["lines"] == 600
    assert not (registry / "models" / "bundle-tokenizer").exists()
    gen = invoke("generate", "-m", out, "--greedy", "--max-tokens", "5")
    assert gen.exit_code == 0 and gen.stdout.count("\n") == 1, gen.output


def test_same_seed_same_weights(corpus, tmp_path):
    for d in ("a", "b"):
        train(corpus, "-o", tmp_path / d, "--vocab-size", "320", "--max-steps", "5", "--seed", "3", *TINY)
    a, b = (load_file(tmp_path / d / "model.safetensors") for d in ("a", "b"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_weight_drop_is_recorded_repeatable_and_changes_training(corpus, tmp_path):
    common = [corpus, "--vocab-size", "320", "--max-steps", "5", "--seed", "3", *TINY]
    for d in ("a", "b"):
        train(*common, "-o", tmp_path / d, "--weight-drop", "0.4")
    train(*common, "-o", tmp_path / "plain")
    a, b, plain = (load_file(tmp_path / d / "model.safetensors") for d in ("a", "b", "plain"))
    assert all((a[k] == b[k]).all() for k in a)  # the masks come from the seed
    assert not (a["rnn.weight_hh_l0"] == plain["rnn.weight_hh_l0"]).all()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["config"]["model"]["weight_drop"] == 0.4
    plain_manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert "weight_drop" not in plain_manifest["config"]["model"]  # off: as before the option existed


def test_locked_dropout_is_recorded_repeatable_and_changes_training(corpus, tmp_path):
    common = [corpus, "--vocab-size", "320", "--max-steps", "5", "--seed", "3", *TINY, "--layers", "2",
              "--dropout", "0.3"]
    for d in ("a", "b"):
        train(*common, "-o", tmp_path / d, "--locked-dropout")
    train(*common, "-o", tmp_path / "plain")
    a, b, plain = (load_file(tmp_path / d / "model.safetensors") for d in ("a", "b", "plain"))
    assert a.keys() == plain.keys() and all((a[k] == b[k]).all() for k in a)
    assert not (a["rnn.weight_hh_l1"] == plain["rnn.weight_hh_l1"]).all()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["config"]["model"]["locked_dropout"] is True
    plain_manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert "locked_dropout" not in plain_manifest["config"]["model"]  # off: as before the option existed


def test_locked_dropout_resumed_after_a_kill_gives_the_uninterrupted_weights(corpus, tmp_path):
    """Its masks come from the seeded generator, and nothing else draws from it on the way (the layers run
    apart need a one-layer module, made on the meta device)."""
    args = [corpus, "--vocab-size", "320", "--seed", "3", *TINY, "--layers", "2", "--dropout", "0.3",
            "--locked-dropout", "--weight-drop", "0.2", "--max-steps", "30", "--save-every", "2",
            "--eval-every", "15", "--threads", "1"]
    run = tmp_path / "run"
    kill_once_checkpointed(["train", "lm", *args, "-o", tmp_path / "resumed", "--run-dir", run], run)
    train("--resume", run, "-q")
    train(*args, "-o", tmp_path / "straight")
    resumed, straight = (load_file(tmp_path / d / "model.safetensors") for d in ("resumed", "straight"))
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--cell", "lstn"), 2, "lstm"),
        (("-t", "no-such-tokenizer"), 1, "no-such-tokenizer"),
        (("--mode", "lines"), 2, "--mode"),
        (("--name", "x", "-o", "d"), 2, "not both"),
        (("-o", "."), 2, "not an rnntool bundle"),
        (("--weight-drop", "1"), 2, "weight-drop"),
    ],
)
def test_bad_settings_are_one_line_errors(corpus, args, code, words):
    base = ["--name", "bad"] if "--name" not in args and "-o" not in args else []
    r = invoke("train", "lm", corpus, *base, "--max-steps", "1", *args)
    assert r.exit_code == code, r.output
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("rnntool: error:") and words in lines[-1], r.stderr
    assert "Traceback" not in r.output


def test_no_destination_says_where_a_model_can_go(corpus):
    r = invoke("train", "lm", corpus, "--max-steps", "1")
    assert r.exit_code == 2 and "say where the model goes: --name NAME" in r.stderr, r.stderr
    assert "not both" not in r.stderr and "run directory" not in r.stderr  # no run was started


def test_empty_training_file_is_a_one_line_error(tmp_path, registry):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = invoke("train", "lm", empty, "--name", "e", "-q", "--max-steps", "1")
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "empty" in r.stderr
    assert not (registry / "models" / "e").exists()


def test_resume_after_sigkill_gives_the_same_weights(corpus, tmp_path):
    args = [corpus, "--vocab-size", "320", "--max-steps", "300", "--save-every", "5", "--eval-every", "100",
            "--seed", "5", *TINY]
    run = tmp_path / "run"
    kill_once_checkpointed(["train", "lm", *args, "-o", tmp_path / "resumed", "--run-dir", run], run,
                           marker="ckpt-00000010")
    assert not (tmp_path / "resumed").exists()
    train("--resume", run, "-q")
    train(*args, "-o", tmp_path / "straight")
    resumed, straight = (load_file(tmp_path / d / "model.safetensors") for d in ("resumed", "straight"))
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)
    history = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if r["type"] == "eval"] == [100, 200, 300]
