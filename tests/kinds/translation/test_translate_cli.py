"""`rnntool translate` on a tiny translation model trained once per session (a few seconds)."""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fails, invoke, rnntool_cmd

LEXICON = {"a": "eine", "cat": "katze", "dog": "hund", "sees": "sieht", "likes": "mag", "house": "haus",
           "river": "fluss", "red": "rote", "old": "alte", "man": "mann", "child": "kind", "small": "kleine",
           "bird": "vogel", "green": "grüne", "tree": "baum"}


def make_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """English-like sources; word-by-word targets where "the" is die/der/das at random (ambiguity)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(["the", "a"]), rng.choice(["red", "old", "small", "green", ""]),
                 rng.choice(["cat", "dog", "man", "child", "bird"]), rng.choice(["sees", "likes"]),
                 rng.choice(["the", "a"]), rng.choice(["house", "river", "tree", "bird", "cat"])]
        words = [w for w in words if w]
        target = [rng.choice(["die", "der", "das"]) if w == "the" else LEXICON[w] for w in words]
        pairs.append((" ".join(words), " ".join(target)))
    return pairs


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A translation bundle directory: a 1-layer LSTM with attention, trained for a few seconds."""
    import torch

    from rnntool.registry.store import write_bundle
    from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig, source_batch
    from rnntool.layers.weights import save_weights
    from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID
    from rnntool.tokenizers.training import train_tokenizer

    root = tmp_path_factory.mktemp("translation")
    pairs = make_pairs(400, seed=0)
    (root / "train.src").write_text("\n".join(s for s, _ in pairs) + "\n", encoding="utf-8")
    (root / "train.tgt").write_text("\n".join(t for _, t in pairs) + "\n", encoding="utf-8")
    stage = root / "stage"
    stage.mkdir()
    src_tok = train_tokenizer([root / "train.src"], stage / "tokenizer.src.model", vocab_size=300)
    tgt_tok = train_tokenizer([root / "train.tgt"], stage / "tokenizer.tgt.model", vocab_size=300)
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size, layers=1,
                        embed_dim=32, hidden_dim=64, attention="general", dropout=0.0)
    model = Seq2Seq(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    sources = [src_tok.encode(s) for s, _ in pairs]
    targets = [tgt_tok.encode(t) for _, t in pairs]
    rng = random.Random(0)
    for _ in range(40):
        rows = rng.sample(range(len(pairs)), 32)
        src, src_lengths = source_batch([sources[i] for i in rows])
        width = max(len(targets[i]) for i in rows) + 1
        tgt_in = torch.full((len(rows), width), PAD_ID)
        tgt_out = torch.full((len(rows), width), PAD_ID)
        for r, i in enumerate(rows):
            ids = torch.tensor(targets[i])
            tgt_in[r, 0], tgt_in[r, 1:len(ids) + 1] = BOS_ID, ids
            tgt_out[r, :len(ids)], tgt_out[r, len(ids)] = ids, EOS_ID
        loss = model(src, src_lengths, tgt_in, tgt_out) / (tgt_out != PAD_ID).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_weights(model, stage / "model.safetensors")
    dest = root / "en-de"
    write_bundle(stage, dest, name="en-de", kind="translation", config={"model": cfg.to_dict(), "train": {}})
    return dest


@pytest.fixture(scope="session")
def test_set(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("testset")
    pairs = make_pairs(40, seed=1)
    src, ref = root / "test.src", root / "test.ref"
    src.write_text("\n".join(s for s, _ in pairs) + "\n", encoding="utf-8")
    ref.write_text("\n".join(t for _, t in pairs) + "\n", encoding="utf-8")
    return src, ref, [s for s, _ in pairs]


def translate(model_dir, *args, input=None):
    r = invoke("translate", "-m", model_dir, "-q", *args, input=input)
    assert r.exit_code == 0, r.output
    return r.stdout


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_translates_every_line_in_order(model_dir, test_set, tmp_path):
    src, _, lines = test_set
    out = translate(model_dir, src).splitlines()
    assert len(out) == len(lines) and all(out)
    # stdin and -o FILE give the same lines; an empty input line gives an empty output line
    assert translate(model_dir, input=src.read_text()).splitlines() == out
    mixed = f"{lines[0]}\n\n{lines[1]}\n"
    dest = tmp_path / "out.txt"
    r = invoke("translate", "-m", model_dir, "-q", "-o", dest, input=mixed)
    assert r.exit_code == 0 and r.stdout == ""
    assert dest.read_text(encoding="utf-8").split("\n") == [out[0], "", out[1], ""]


def test_beam_1_equals_greedy(model_dir, test_set):
    src, _, _ = test_set
    assert translate(model_dir, "--beam", "1", src) == translate(model_dir, "--greedy", src)
    greedy = jsonl(translate(model_dir, "--greedy", "--json", src))
    beam1 = jsonl(translate(model_dir, "--beam", "1", "--json", src))
    for g, b in zip(greedy, beam1):
        assert g["hypotheses"][0]["tokens"] == b["hypotheses"][0]["tokens"]
        assert g["hypotheses"][0]["log_prob"] == pytest.approx(b["hypotheses"][0]["log_prob"], abs=1e-5)


@pytest.mark.parametrize("mode", [["--beam", "4"], ["--greedy"]])
def test_output_does_not_depend_on_batching(model_dir, test_set, mode):
    src, _, _ = test_set
    # on the CPU: a GPU's kernels differ by batch shape more than this (cuDNN measured 1e-4 to 9e-4 apart on
    # an H200 with TF32 off; the tokens agreed)
    runs = [jsonl(translate(model_dir, *mode, "--json", "--batch-size", bs, "--batch-tokens", bt, "--device", "cpu",
                            src))
            for bs, bt in [("1", "4096"), ("7", "4096"), ("64", "4096"), ("64", "40")]]
    first = runs[0]
    for other in runs[1:]:
        assert [r["hypotheses"][0]["tokens"] for r in other] == [r["hypotheses"][0]["tokens"] for r in first]
        # Scores agree only to float32 rounding: GEMMs over different batch sizes (and attention over
        # differently padded sources) sum in different orders. Measured: at most 1.6e-6 apart.
        assert [r["hypotheses"][0]["score"] for r in other] == pytest.approx(
            [r["hypotheses"][0]["score"] for r in first], abs=2e-5)


def test_nbest_lists_are_sorted_distinct_and_scored(model_dir, test_set):
    src, _, lines = test_set
    text = translate(model_dir, "--beam", "4", "--nbest", "4", src).splitlines()
    assert len(text) == 4 * len(lines)
    rows = [line.split(" ||| ") for line in text]
    assert [int(r[0]) for r in rows] == [i for i in range(len(lines)) for _ in range(4)]
    results = jsonl(translate(model_dir, "--beam", "4", "--nbest", "4", "--json", src))
    for i, result in enumerate(results):
        hyps = result["hypotheses"]
        assert result["index"] == i and result["source"] == lines[i] and result["translation"] == hyps[0]["text"]
        scores = [h["score"] for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert [float(r[2]) for r in rows[4 * i:4 * i + 4]] == pytest.approx(scores, abs=1e-5)
        assert len({tuple(h["tokens"]) for h in hyps}) == len(hyps)
        for h in hyps:
            # the fields line up: one log-prob per token, </s>'s apart (null when cut at the length limit)
            assert len(h["token_log_probs"]) == len(h["tokens"])
            assert (h["eos_log_prob"] is not None) == h["finished"]
            assert h["log_prob"] == pytest.approx(sum(h["token_log_probs"]) + (h["eos_log_prob"] or 0), abs=1e-4)
            length = len(h["tokens"]) + h["finished"]  # the penalty counts </s>
            assert h["score"] == pytest.approx(h["log_prob"] / ((5 + length) / 6) ** 0.6, abs=1e-4)


def test_larger_length_penalty_never_shortens_the_average_output(model_dir, test_set):
    src, _, _ = test_set
    averages = []
    for alpha in ("0", "0.6", "1.5", "3"):
        results = jsonl(translate(model_dir, "--beam", "5", "--length-penalty", alpha, "--json", src))
        averages.append(sum(len(r["hypotheses"][0]["token_log_probs"]) for r in results) / len(results))
    assert averages == sorted(averages), averages
    normalized = jsonl(translate(model_dir, "--normalize", "--json", src))
    assert all(h["score"] == pytest.approx(h["log_prob"] / (len(h["tokens"]) + h["finished"]))
               for r in normalized for h in r["hypotheses"])


def test_min_len_and_max_len_ratio(model_dir, test_set):
    src, _, _ = test_set
    for r in jsonl(translate(model_dir, "--min-len", "12", "--json", src)):
        assert len(r["hypotheses"][0]["tokens"]) >= 12
    # EOS forbidden for longer than the cap allows: every output is cut at floor(ratio * n) + 10 subwords
    for r in jsonl(translate(model_dir, "--min-len", "100", "--max-len-ratio", "0.5", "--alignments", "--json", src)):
        best = r["hypotheses"][0]
        assert len(best["tokens"]) == int(0.5 * len(r["source_tokens"])) + 10 and not best["finished"]


def test_model_by_registry_name(model_dir, test_set):
    from rnntool.registry.store import Registry

    src, _, _ = test_set
    Registry.open().import_bundle(model_dir)
    assert translate("en-de", src) == translate(model_dir, src)


def test_alignments(model_dir, test_set):
    src, _, lines = test_set
    text = translate(model_dir, "--alignments", src).splitlines()
    plain = translate(model_dir, src).splitlines()
    results = jsonl(translate(model_dir, "--alignments", "--json", src))
    for line, want, result in zip(text, plain, results):
        translation, pairs = line.split(" ||| ")
        assert translation == want
        best = result["hypotheses"][0]
        assert best["alignment"] == pairs
        links = [tuple(map(int, p.split("-"))) for p in pairs.split()]
        assert sorted(j for _, j in links) == list(range(len(best["tokens"])))  # every target subword once
        assert all(0 <= i < len(result["source_tokens"]) for i, _ in links)
    assert translate(model_dir, "--alignments", "--greedy", src) == translate(model_dir, "--alignments", "--beam", "1", src)
    nbest = translate(model_dir, "--alignments", "--nbest", "2", "--beam", "2", src).splitlines()
    assert all(len(line.split(" ||| ")) == 4 for line in nbest)


def test_unknown_characters_use_byte_fallback(model_dir):
    r = invoke("translate", "-m", model_dir, input="the cat sees a €uro straße 🐈\n")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 1 and "<unk>" not in r.stderr and "warning" not in r.stderr


def test_errors_are_one_line(model_dir, tmp_path, registry):
    from rnntool.registry.store import write_bundle

    def check(r, code, *needles):
        assert r.exit_code == code, r.output
        lines = r.stderr.strip().splitlines()
        assert lines[-1].startswith("rnntool: error:") and "Traceback" not in r.output, r.stderr
        for needle in needles:
            assert needle in lines[-1], r.stderr

    check(invoke("translate", "-m", "no-such-model", input="a cat\n"), 1, "no-such-model")
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "model.safetensors").write_bytes(b"x")
    lm = write_bundle(stage, tmp_path / "an-lm", name="an-lm", kind="lm", config={})
    check(invoke("translate", "-m", lm.path, input="a cat\n"), 1, "language model", "translation model")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\nthe \xff dog\n")
    check(invoke("translate", "-m", model_dir, bad), 1, f"{bad}:2", "UTF-8")
    check(invoke("translate", "-m", model_dir, "--beam", "2", "--nbest", "3", input="a\n"), 2, "--nbest")
    check(invoke("translate", "-m", model_dir, "--length-penalty", "1", "--normalize", input="a\n"), 2)
    check(invoke("translate", "-m", model_dir, "--greedy", "--nbest", "2", input="a\n"), 2)
    check(invoke("translate", "-m", model_dir, "--batch-size", "0", input="a\n"), 2, "--batch-size")


def test_streams_one_line_at_a_time_with_batch_size_1(model_dir, test_set):
    _, _, lines = test_set
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnntool", "translate", "-m", str(model_dir), "-q",
                             "--batch-size", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        answers = []
        for line in lines[:3]:
            proc.stdin.write((line + "\n").encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, "no answer while stdin stays open"
            answers.append(proc.stdout.readline().decode().rstrip("\n"))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
    assert answers == translate(model_dir, input="\n".join(lines[:3]) + "\n").splitlines()


def test_a_person_typing_gets_each_line_answered_at_once(model_dir, test_set):
    """stdin a terminal (a pseudo-terminal here) and no --batch-size: each line is translated when typed."""
    import pty

    _, _, lines = test_set
    master, slave = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnntool", "translate", "-m", str(model_dir), "-q"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    try:
        answers = []
        for line in lines[:2]:
            os.write(master, (line + "\n").encode())
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, "no answer while the terminal stays open"
            answers.append(proc.stdout.readline().decode().rstrip("\n"))
        os.write(master, b"\x04")  # Ctrl-D at the start of a line: end of input
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    finally:
        proc.kill()
        os.close(master)
    assert answers == translate(model_dir, input="\n".join(lines[:2]) + "\n").splitlines()


def test_sampling_for_back_translation_is_seeded_and_reduces_to_greedy(model_dir, test_set):
    src, _, lines = test_set
    a = translate(model_dir, "--sample", "--seed", "3", src)
    assert a == translate(model_dir, "--sample", "--seed", "3", src) and len(a.splitlines()) == len(lines)
    assert a != translate(model_dir, "--sample", "--seed", "4", "--temperature", "2", src)
    greedy = translate(model_dir, "--greedy", src)
    assert translate(model_dir, "--sample", "--top-k", "1", "--seed", "1", src) == greedy
    for args in (("--sample", "--beam", "2"), ("--sample", "--nbest", "2"), ("--seed", "1"), ("--top-k", "3"),
                 ("--sample", "--length-penalty", "1")):
        r = invoke("translate", "-m", model_dir, *args, input="a cat\n")
        assert r.exit_code == 2, (args, r.stderr)


def test_no_repeat_ngram_and_coverage_penalty(model_dir, test_set):
    src, _, _ = test_set
    for args in (("--no-repeat-ngram", "2"), ("--greedy", "--no-repeat-ngram", "1")):
        for r in jsonl(translate(model_dir, *args, "--max-len-ratio", "3", "--json", src)):
            tokens = r["hypotheses"][0]["tokens"]
            n = int(args[-1])
            grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
            assert len(grams) == len(set(grams)), (args, tokens)
    plain = jsonl(translate(model_dir, "--json", src))
    covered = jsonl(translate(model_dir, "--coverage-penalty", "0.5", "--json", src))
    assert len(covered) == len(plain)  # scores now include the penalty (<= 0): never above the plain ones
    assert all(c["hypotheses"][0]["score"] <= p["hypotheses"][0]["score"] + 1e-6 for c, p in zip(covered, plain))
    assert translate(model_dir, "--coverage-penalty", "0", src) == translate(model_dir, src)


def test_an_ensemble_of_a_model_with_itself_translates_as_the_model(model_dir, test_set, tmp_path):
    src, _, _ = test_set
    assert translate(model_dir, "-m", model_dir, src) == translate(model_dir, src)
    one = jsonl(translate(model_dir, "--json", src))
    two = jsonl(translate(model_dir, "-m", model_dir, "--json", src))
    assert [r["hypotheses"][0]["score"] for r in one] == pytest.approx([r["hypotheses"][0]["score"] for r in two],
                                                                       abs=1e-4)


def test_pipeline_into_evaluate_bleu(model_dir, test_set):
    from sacrebleu.metrics import BLEU

    src, ref, _ = test_set
    cmd = (f"{rnntool_cmd()} translate -m {model_dir} -q < {src} | tee {src}.hyp "
           f"| {rnntool_cmd()} evaluate bleu --ref {ref} --json; "
           f"{rnntool_cmd()} translate -m {model_dir} {src} | head -1")
    started = time.time()
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report, first = proc.stdout.splitlines()
    hyps = Path(f"{src}.hyp").read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    score = json.loads(report)["bleu"]["score"]
    assert score == BLEU().corpus_score(hyps, [refs]).score
    assert score > 30  # the tiny model learned something
    assert first == hyps[0] and "Error" not in proc.stderr and time.time() - started < 300


def test_cli_default_length_penalty_is_the_core_one():
    from rnntool.cli.translate import DEFAULT_LENGTH_PENALTY as cli_default
    from rnntool.kinds.translation.translate import DEFAULT_LENGTH_PENALTY

    assert cli_default == DEFAULT_LENGTH_PENALTY


def test_hypotheses_never_contain_line_breaks():
    from rnntool.textio import one_line

    assert one_line("a\rb\nc\u2028d\x85e\x0bf") == "a b c d e f"
    for text in ("a\rb", "x\u2029y\x1cz", "tab\tstays"):
        assert len(one_line(text).splitlines()) == 1


def test_precision_and_early_stop(model_dir, test_set):
    """--precision int8/bf16 translate every line (close to fp32: most lines the same); --early-stop without a
    length penalty is the search's own exact rule (the same output); both refuse what they cannot do."""
    src, _, lines = test_set
    fp32 = translate(model_dir, "--device", "cpu", src).splitlines()
    for precision in ("int8", "bf16"):  # int8 runs on the CPU only
        out = translate(model_dir, "--precision", precision, "--device", "cpu", src).splitlines()
        assert len(out) == len(lines) and all(out)
        assert sum(a == b for a, b in zip(out, fp32)) >= len(lines) // 2, precision
    # no length penalty: the rule is exact (a penalty of 1e-12 ranks alike but turns the automatic rule off)
    assert translate(model_dir, "--length-penalty", "0", "--early-stop", src) == \
        translate(model_dir, "--length-penalty", "1e-12", src)
    assert len(translate(model_dir, "--early-stop", src).splitlines()) == len(lines)
    fails(invoke("translate", "-m", model_dir, "--greedy", "--early-stop", src), 2, "--early-stop")
    fails(invoke("translate", "-m", model_dir, "--precision", "fp16", "--device", "cpu", src), 2, "fp16 needs a GPU")


def test_shortlist_from_models_shortlist_to_translate(model_dir, test_set, tmp_path):
    """A model without a lexical table refuses --shortlist, saying how to add one; `models shortlist`
    publishes the model with one (same weights, checksummed); translating with it answers every line with
    pieces of each sentence's list, in every decoding mode and number format, and as an ensemble."""
    from rnntool.kinds.translation.shortlist import SHORTLIST_FILE
    from rnntool.registry.store import Registry

    src, _, lines = test_set
    fails(invoke("translate", "-m", model_dir, "--shortlist", "5", src), 2, "no shortlist table", "models shortlist")
    fails(invoke("translate", "-m", model_dir, "--shortlist-frequent", "5", src), 2, "--shortlist K")
    train = model_dir.parent
    bad = tmp_path / "short.tgt"
    bad.write_text("one line\n", encoding="utf-8")
    fails(invoke("models", "shortlist", str(model_dir), "--src", str(train / "train.src"), "--tgt", str(bad),
                 "--name", "en-de"), 1, "differ in length")
    r = invoke("models", "shortlist", str(model_dir), "--src", str(train / "train.src"), "--tgt",
               str(train / "train.tgt"))  # published under the model's own name
    assert r.exit_code == 0 and r.stdout.strip() == "en-de@1", r.output
    bundle = Registry.open().load("en-de@1")
    assert SHORTLIST_FILE in bundle.files and bundle.manifest["parents"]["shortlisted"] == str(model_dir)
    assert bundle.files["model.safetensors"]["sha256"] == \
        json.loads((model_dir / "manifest.json").read_text())["files"]["model.safetensors"]["sha256"]
    assert invoke("models", "verify", "en-de").exit_code == 0
    # en-de@1 without --shortlist is the model itself
    assert translate("en-de", src) == translate(model_dir, src)
    from rnntool.kinds.translation.shortlist import LexicalTable, Shortlist
    from rnntool.tokenizers.sentencepiece import Tokenizer

    src_tok, tgt_tok = (Tokenizer.load(bundle.file(f"tokenizer.{side}.model")) for side in ("src", "tgt"))
    table = LexicalTable.load(bundle.file(SHORTLIST_FILE), src_tok.vocab_size, tgt_tok.vocab_size)
    lists = Shortlist(table, per_source=3, frequent=2).vocab([src_tok.encode(line) for line in lines]).tolist()
    for args in (["--beam", "4"], ["--greedy"], ["--precision", "int8", "--device", "cpu"], ["-m", "en-de"]):
        out = jsonl(translate("en-de", "--shortlist", "3", "--shortlist-frequent", "2", "--json", *args, src))
        assert len(out) == len(lines) and all(r["hypotheses"][0]["tokens"] for r in out), args
        for r, allowed in zip(out, lists):  # every piece from its sentence's list
            assert {tgt_tok.piece_to_id(p) for p in r["hypotheses"][0]["tokens"]} <= set(allowed), args
    mean = sum(len(set(row) - {0}) + 1 for row in lists) / len(lists)  # PAD at position 0 counts, padding not
    r = invoke("translate", "-m", "en-de", "--shortlist", "3", "--shortlist-frequent", "2", src)
    assert f"shortlists: {mean:.0f} target subwords per sentence on average, of {tgt_tok.vocab_size}" in r.stderr
    # versions with and without a table still average (the table follows the data, not the weights), and a
    # table added to a version keeps what its manifest said of it (the retrain key of cron's --if-changed)
    assert invoke("models", "import", str(model_dir)).stdout.strip() == "en-de@2"  # the same model, no table
    assert invoke("models", "average", "en-de@1", "en-de@2", "--name", "avg").exit_code == 0
    avg = Registry.open().load("avg@1")
    assert avg.files[SHORTLIST_FILE]["sha256"] == bundle.files[SHORTLIST_FILE]["sha256"]
    assert invoke("models", "shortlist", "avg", "--src", str(train / "train.src"), "--tgt",
                  str(train / "train.tgt")).stdout.strip() == "avg@2"
    extra = Registry.open().load("avg@2").manifest["extra"]
    assert extra["averaged"] == ["en-de@1", "en-de@2"] and extra["shortlist"]["pairs"] == 400
    # a generous list: mostly the whole vocabulary's translations (its softmax is over fewer pieces)
    generous = translate("en-de@1", "--shortlist", "20", src).splitlines()
    assert sum(a == b for a, b in zip(generous, translate("en-de@1", src).splitlines())) >= len(lines) // 2
    fails(invoke("translate", "-m", "en-de", "--shortlist", "20", src), 2, "en-de@2 has no shortlist table")
