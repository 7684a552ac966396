"""`rnntool generate`: greedy/top-k/beam agreements, seeds, prompts from stdin, streaming, JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import invoke, rnntool_cmd
from support.lm_fixtures import make_lm_bundle, write_corpus
from rnntool.kinds.lm.generate import IncrementalText


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    return make_lm_bundle(root, write_corpus(root / "corpus.txt"), mode="sentence", steps=150)


@pytest.fixture(scope="module")
def stream_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen-stream")
    return make_lm_bundle(root, write_corpus(root / "corpus.txt"), mode="stream", steps=30, cell="gru")


def gen(bundle, *args, input=None):
    r = invoke("generate", "-m", bundle, *args, input=input)
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("prompt", ["", "the cat"])
def test_top_k_1_and_beam_1_equal_greedy(bundle, prompt):
    greedy = gen(bundle, "--prompt", prompt, "--greedy", "--json")
    top1 = gen(bundle, "--prompt", prompt, "--top-k", "1", "--seed", "7", "--json")
    beam1 = gen(bundle, "--prompt", prompt, "--beam", "1", "--json")
    g, t, b = (json.loads(x) for x in (greedy, top1, beam1))
    assert g["token_ids"] == t["token_ids"] == b["token_ids"]
    assert g["finished"] and g["text"].endswith(".")  # the model learned to stop at <eos>
    assert g["text"].startswith(prompt)


def test_fixed_seed_repeats_exactly_and_seeds_differ(bundle):
    args = ("--prompt", "the", "-n", "4", "--temperature", "3", "--max-tokens", "12")
    first = gen(bundle, *args, "--seed", "1")
    assert first == gen(bundle, *args, "--seed", "1")
    assert first != gen(bundle, *args, "--seed", "2")
    assert len(first.splitlines()) == 4


def test_prompts_from_stdin_one_line_per_sample_in_order(stream_bundle):
    out = gen(stream_bundle, "-n", "2", "--seed", "3", input="the cat\na dog\nmy friend\n")
    lines = out.splitlines()
    assert len(lines) == 6
    for i, prompt in enumerate(["the cat", "the cat", "a dog", "a dog", "my friend", "my friend"]):
        assert lines[i].startswith(prompt)


def test_unconditional_when_stdin_is_empty(bundle):
    out = gen(bundle, "--greedy", input="")
    assert len(out.splitlines()) == 1 and out.strip()


def test_json_lines_carry_token_log_probs_and_max_tokens_caps(bundle):
    objs = [json.loads(x) for x in gen(bundle, "--prompt", "a", "-n", "3", "--seed", "0", "--json",
                                        "--max-tokens", "3").splitlines()]
    assert len(objs) == 3
    for o in objs:
        assert len(o["token_ids"]) <= 3
        assert len(o["token_log_probs"]) == len(o["token_ids"])  # aligned; <eos> apart
        assert (o["eos_log_prob"] is not None) == o["finished"]
        assert o["log_prob"] == pytest.approx(sum(o["token_log_probs"]) + (o["eos_log_prob"] or 0))
        assert all(lp <= 0 for lp in o["token_log_probs"])
        assert o["text"] == o["prompt"] + o["completion"]


def test_beam_n_best_are_distinct_and_ranked(bundle):
    objs = [json.loads(x) for x in gen(bundle, "--prompt", "the", "--beam", "4", "-n", "3", "--json").splitlines()]
    assert len(objs) == 3 and len({tuple(o["token_ids"]) for o in objs}) == 3


def test_tokens_stream_before_input_ends(bundle):
    proc = subprocess.Popen([sys.executable, "-m", "rnntool", "generate", "-m", str(bundle), "--greedy"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("the cat\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("the cat")  # while stdin is still open
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_head_exits_quietly(bundle, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat\n" * 200)
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {rnntool_cmd()} generate -m {bundle} < {prompts} | head -1"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and not r.stderr


@pytest.mark.parametrize("args", [("--greedy", "--beam", "2"), ("--greedy", "-n", "2"), ("--beam", "2", "-n", "3"),
                                  ("--greedy", "--temperature", "0.5"), ("--top-p", "1.5")])
def test_bad_combinations_are_usage_errors(bundle, args):
    r = invoke("generate", "-m", bundle, "--prompt", "x", *args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("rnntool: error:")


def test_incremental_text_waits_for_whole_characters(bundle):
    from rnntool.kinds.lm.model import open_lm

    tok = open_lm(str(bundle), device="cpu").tokenizer
    text = "the café naïve 猫."
    ids = tok.encode(text)
    assert len(ids) > len(text.split())  # byte pieces: some ids end inside a character
    inc = IncrementalText(tok, [])
    pieces = [inc.push(i) for i in ids] + [inc.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


@pytest.mark.parametrize("settings", [dict(greedy=True), dict(beam=2, num_samples=2), dict(top_k=5)])
def test_generate_does_not_switch_gradients_off_for_its_caller(bundle, settings):
    """generate() is a generator: a no_grad held across its yields would leak into the caller's code."""
    import torch

    from rnntool.kinds.lm.model import open_lm
    from rnntool.kinds.lm.generate import GenerateSettings, Sample, generate

    lm = open_lm(str(bundle), device="cpu")
    seen = []
    for item in generate(lm, "the", GenerateSettings(max_tokens=5, **settings), generator=torch.Generator().manual_seed(0)):
        seen.append(torch.is_grad_enabled())
        if isinstance(item, Sample):
            assert all(isinstance(lp, float) for lp in item.token_logprobs)
    assert seen and all(seen)


def test_lines_go_on_across_line_ends_of_a_stream_model(stream_bundle, bundle):
    from rnntool.tokenizers.sentencepiece import EOS_ID

    # --lines 0: only --max-tokens stops it; every <eos> on the way is a newline in the text
    o = json.loads(gen(stream_bundle, "--prompt", "the cat", "--lines", "0", "--max-tokens", "60", "--seed", "1",
                       "--temperature", "1.5", "--json"))
    assert len(o["token_ids"]) == 60 and not o["finished"] and o["eos_log_prob"] is None
    assert o["text"].count("\n") == o["token_ids"].count(EOS_ID) and o["text"] == o["prompt"] + o["completion"]
    assert len(o["token_log_probs"]) == 60
    # --lines N: at most N lines; finished means the N-th line ended
    for seed in ("1", "2", "3"):
        o = json.loads(gen(stream_bundle, "--prompt", "the cat", "--lines", "2", "--max-tokens", "80", "--seed", seed,
                           "--temperature", "1.5", "--json"))
        assert o["text"].count("\n") <= 1 and (not o["finished"] or o["text"].count("\n") == 1)
    out = gen(stream_bundle, "--prompt", "the cat", "--lines", "2", "-n", "2", "--seed", "1")
    assert out.endswith("\n\n")  # a blank line ends each multi-line output
    # one line is the default, and a sentence-mode model has no line ends to go on across
    assert "\n" not in json.loads(gen(stream_bundle, "--prompt", "the cat", "--seed", "1", "--json"))["text"]
    for args in (("-m", bundle, "--lines", "2"), ("-m", stream_bundle, "--lines", "2", "--beam", "2")):
        r = invoke("generate", *args, "--prompt", "x")
        assert r.exit_code == 2 and "--lines" in r.stderr, r.stderr


def test_an_ensemble_of_a_model_with_itself_generates_as_the_model(bundle, stream_bundle):
    one = json.loads(gen(bundle, "--prompt", "the", "--greedy", "--json"))
    two = json.loads(gen(bundle, "-m", bundle, "--prompt", "the", "--greedy", "--json"))
    assert one["token_ids"] == two["token_ids"]
    assert one["token_log_probs"] == pytest.approx(two["token_log_probs"], abs=1e-5)
    r = invoke("generate", "-m", bundle, "-m", stream_bundle, "--prompt", "the")
    assert r.exit_code == 2 and "ensemble" in r.stderr, r.stderr
