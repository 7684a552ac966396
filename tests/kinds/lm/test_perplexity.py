"""`rnntool evaluate perplexity`: numbers equal an independent computation from the model's logits,
--per-line is one line per input line in order (and streams), signatures, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from conftest import invoke, rnntool_cmd
from support.lm_fixtures import make_lm_bundle, write_corpus
from rnntool.kinds.lm.model import open_lm
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID

TEXT = ["the cat sees the ball.", "", "a dog finds a small bird. Extra words here!", "the cat sees the ball."]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppl")
    corpus = write_corpus(root / "corpus.txt")
    return {mode: make_lm_bundle(root, corpus, mode=mode, name=f"lm-{mode}") for mode in ("sentence", "stream")}


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    return p


def reference_line_nll(bundle, lines, mode) -> list[float]:
    """Per-line NLL straight from the model's logits: one forward pass per line (sentence mode) or
    over the whole text (stream mode)."""
    lm = open_lm(str(bundle), device="cpu")
    encoded = [lm.tokenizer.encode(line) + [EOS_ID] for line in lines]
    with torch.no_grad():
        if mode == "sentence":
            out = []
            for ids in encoded:
                logits, _ = lm.model(torch.tensor([[BOS_ID] + ids[:-1]]))
                logp = torch.log_softmax(logits[0].double(), -1)
                out.append(-float(logp[torch.arange(len(ids)), torch.tensor(ids)].sum()))
            return out
        flat = [t for ids in encoded for t in ids]
        logits, _ = lm.model(torch.tensor([[EOS_ID] + flat[:-1]]))
        nll = -torch.log_softmax(logits[0].double(), -1)[torch.arange(len(flat)), torch.tensor(flat)]
        bounds = [0]
        for ids in encoded:
            bounds.append(bounds[-1] + len(ids))
        return [float(nll[a:b].sum()) for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("mode", ["sentence", "stream"])
def test_perplexity_equals_exp_mean_nll_from_logits(bundles, text_file, mode):
    r = invoke("evaluate", "perplexity", "-m", bundles[mode], text_file, "--json", "--batch-size", "2")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    lm = open_lm(str(bundles[mode]), device="cpu")
    nll = sum(reference_line_nll(bundles[mode], TEXT, mode))
    tokens = sum(len(lm.tokenizer.encode(line)) + 1 for line in TEXT)
    chars = sum(len(line) + 1 for line in TEXT)
    assert (got["tokens"], got["characters"], got["lines"]) == (tokens, chars, len(TEXT))
    assert got["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert got["nats_per_token"] == pytest.approx(nll / tokens, rel=1e-5)
    assert got["bits_per_character"] == pytest.approx(nll / math.log(2) / chars, rel=1e-5)
    assert got["signature"] == f"tok:{lm.tokenizer.sha256[:8]}|mode:{mode}|eos:yes|log:e|version:0.1.0"


def test_text_output_has_the_figures_and_a_signature_line(bundles, text_file):
    r = invoke("evaluate", "perplexity", "-m", bundles["stream"], text_file, "--mode", "sentence")
    assert r.exit_code == 0, r.output
    figures, sig = r.stdout.splitlines()
    for word in ("perplexity", "nats/token", "bits/char", "tokens", "characters"):
        assert word in figures
    assert sig.startswith("tok:") and "|mode:sentence|eos:yes|log:e|" in sig  # --mode overrides the model's


@pytest.mark.parametrize("mode", ["sentence", "stream"])
def test_per_line_is_one_line_per_input_line_in_order(bundles, mode, tmp_path):
    lines = TEXT * 40  # more lines than one read-ahead chunk of --batch-size 2
    p = tmp_path / "many.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = invoke("evaluate", "perplexity", "-m", bundles[mode], p, "--per-line", "--batch-size", "2",
               "--mode", mode, "--device", "cpu")  # the reference is computed on the CPU
    assert r.exit_code == 0, r.output
    rows = [row.split("\t") for row in r.stdout.splitlines()]
    assert len(rows) == len(lines)
    expected = reference_line_nll(bundles[mode], lines, mode)
    for row, nll in zip(rows, expected):
        assert float(row[0]) == pytest.approx(-nll, abs=2e-4)
        assert float(row[2]) == pytest.approx(math.exp(-float(row[0]) / int(row[1])), rel=1e-3)
    assert "perplexity" in r.stderr  # the summary goes to stderr


def test_per_line_sorts_with_sort_n_and_json_lines(bundles, text_file):
    r = invoke("evaluate", "perplexity", "-m", bundles["sentence"], text_file, "--per-line")
    by_sort = subprocess.run(["sort", "-n"], input=r.stdout, capture_output=True, text=True).stdout
    worst = min(reference_line_nll(bundles["sentence"], TEXT, "sentence"), key=lambda x: -x)
    assert float(by_sort.split("\t")[0]) == pytest.approx(-worst, abs=2e-4)  # least likely first
    r = invoke("evaluate", "perplexity", "-m", bundles["sentence"], text_file, "--per-line", "--json")
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == len(TEXT) and objs[0]["log_prob"] == objs[3]["log_prob"]


@pytest.mark.parametrize("mode", ["sentence", "stream"])
def test_per_token_is_kenlm_querys_layout_and_adds_up_to_the_line(bundles, text_file, mode):
    lm = open_lm(str(bundles[mode]), device="cpu")
    expected = reference_line_nll(bundles[mode], TEXT, mode)
    r = invoke("evaluate", "perplexity", "-m", bundles[mode], text_file, "--per-token", "--mode", mode,
               "--device", "cpu")  # the reference is computed on the CPU
    assert r.exit_code == 0, r.stderr
    rows = r.stdout.splitlines()
    assert len(rows) == len(TEXT) and "perplexity" in r.stderr and "|log:e|" in r.stderr
    for line, row, nll in zip(TEXT, rows, expected):
        *tokens, total = row.split("\t")
        pairs = [t.rsplit("=", 1) for t in tokens]
        assert [p for p, _ in pairs] == lm.tokenizer.encode_pieces(line) + ["</s>"]
        assert sum(float(v) for _, v in pairs) == pytest.approx(-nll, abs=1e-3)
        assert total.startswith("Total: ") and float(total.split()[1]) == pytest.approx(-nll, abs=2e-4)
    # --log10: KenLM's base; JSON lines hold the same, aligned
    r = invoke("evaluate", "perplexity", "-m", bundles[mode], text_file, "--per-token", "--log10", "--json",
               "--mode", mode)
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    for obj, nll in zip(objs, expected):
        assert obj["log_prob"] == pytest.approx(-nll / math.log(10), abs=1e-4)
        assert len(obj["pieces"]) == len(obj["token_log_probs"]) and obj["pieces"][-1] == "</s>"
        assert sum(obj["token_log_probs"]) == pytest.approx(obj["log_prob"], abs=1e-4)
    assert "|log:10|" in r.stderr
    bad = invoke("evaluate", "perplexity", "-m", bundles[mode], text_file, "--per-token", "--per-line")
    assert bad.exit_code == 2


def test_per_line_streams_before_input_ends(bundles):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnntool", "evaluate", "perplexity", "-m", str(bundles["stream"]), "--per-line"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        proc.stdin.write("the cat sees the ball.\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # must arrive while stdin is still open
        assert len(first.split("\t")) == 3
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_head_exits_quietly(bundles, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("the cat\n" * 5000)
    cmd = f"{rnntool_cmd()} evaluate perplexity -m {bundles['sentence']} --per-line {big} | head -1"
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("\n") == 1
    assert "Traceback" not in r.stderr and "error" not in r.stderr


def test_errors_are_one_line(bundles, tmp_path, text_file):
    cases = [
        (("-m", "no-such-model", text_file), 1),
        (("-m", bundles["sentence"], tmp_path / "missing.txt"), 1),
        (("-m", bundles["sentence"], "--mode", "streem", text_file), 2),
    ]
    for args, code in cases:
        r = invoke("evaluate", "perplexity", *args)
        assert r.exit_code == code, (args, r.output)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("rnntool: error:"), r.stderr
    r = invoke("evaluate", "perplexity", "-m", bundles["sentence"], input="")
    assert r.exit_code == 1 and "empty" in r.stderr


def test_a_line_too_long_for_one_batch_scores_the_same(bundles, monkeypatch, text_file):
    from rnntool.kinds.lm import scoring

    full = json.loads(invoke("evaluate", "perplexity", "-m", bundles["sentence"], text_file, "--json").stdout)
    monkeypatch.setattr(scoring, "LOGITS_BUDGET", 3 * 300)  # 3 tokens of a 300-piece vocabulary
    monkeypatch.setattr(scoring, "STREAM_SEGMENT", 2)
    small = json.loads(invoke("evaluate", "perplexity", "-m", bundles["sentence"], text_file, "--json").stdout)
    assert small["nll"] == pytest.approx(full["nll"], rel=1e-6)
