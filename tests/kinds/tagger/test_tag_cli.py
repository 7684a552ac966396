"""`rnntool tag` (with a stand-in tagger: rows echoed with the predicted tag appended, token/TAG lines,
JSON spans, streaming) and `rnntool evaluate tags` (conlleval's report, JSON equal to span_report,
token accuracy only for tags without spans, one-line errors)."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from conftest import fails, invoke, ok, rnntool_cmd

from rnntool.kinds.tagger.data import read_sentences
from rnntool.kinds.tagger.spans import conlleval_report, read_conlleval_input, span_report

# A tagger with predict.Tagger's interface: a capitalised token is a name (B-PER, then I-PER), else O.
FAKE_SOURCE = '''
class TaggedSentence:
    def __init__(self, tokens, tags, probs):
        self.tokens, self.tags, self.probs = tokens, tags, probs


class FakeTagger:
    device = "cpu"

    def __init__(self, ref, scheme="iob2"):
        self.ref = ref + "@1"
        self.scheme = scheme
        self.tags = ["O", "B-PER", "I-PER"] if scheme else ["NOUN", "VERB"]
        self.batches = []

    def tag_one(self, tokens):
        tags = []
        for w in tokens:
            if self.scheme is None:
                tags.append("NOUN" if w[:1].isupper() else "VERB")
            elif w[:1].isupper():
                tags.append("I-PER" if tags and tags[-1] != "O" else "B-PER")
            else:
                tags.append("O")
        return TaggedSentence(list(tokens), tags, [0.875] * len(tokens))

    def stream(self, sentences, batch_size=32):
        chunk = []
        for s in sentences:
            chunk.append(list(s))
            if len(chunk) == batch_size:
                self.batches.append(len(chunk))
                for x in chunk:
                    yield self.tag_one(x)
                chunk = []
        if chunk:
            self.batches.append(len(chunk))
            for x in chunk:
                yield self.tag_one(x)


OPENED = []
SCHEME = ["iob2"]


def open_tagger(ref, registry=None, device="auto"):
    tagger = FakeTagger(ref, SCHEME[0])
    OPENED.append(tagger)
    return tagger
'''

PREDICT = "rnntool.kinds.tagger.predict"


def fake_predict_module() -> types.ModuleType:
    module = types.ModuleType(PREDICT)
    exec(FAKE_SOURCE, module.__dict__)
    return module


@pytest.fixture
def fake(monkeypatch):
    """The stand-in as rnntool.kinds.tagger.predict (whether or not the real module exists yet)."""
    import rnntool.kinds.tagger as pkg

    module = fake_predict_module()
    monkeypatch.setitem(sys.modules, PREDICT, module)
    monkeypatch.setattr(pkg, "predict", module, raising=False)
    return module


def fake_tags(tokens):
    return fake_predict_module().FakeTagger("x").tag_one(tokens).tags


CONLL = "EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\ncall\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n\n\nsaid\tO\n"
CONLLU = """# sent_id = 1
# text = John's dog ran
1-2\tJohn's\t_\t_\t_\t_\t_\t_\t_\t_
1\tJohn\tJohn\tPROPN\tNNP\t_\t3\tnmod:poss\t_\t_
2\t's\t's\tPART\tPOS\t_\t1\tcase\t_\t_
3\tdog\tdog\tNOUN\tNN\t_\t4\tnsubj\t_\t_
4\tran\trun\tVERB\tVBD\t_\t0\troot\t_\t_
4.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_

# sent_id = 2
1\tMary\tMary\tPROPN\tNNP\t_\t0\troot\t_\t_
"""


# -- evaluate tags on conlleval input -------------------------------------------------------------
CONLLEVAL = """EU NNP B-ORG B-ORG
rejects VBZ O O
German JJ B-MISC B-PER
call NN O O

Peter NNP B-PER B-PER
Blackburn NNP I-PER O

-DOCSTART- -X- O O

BRUSSELS NNP B-LOC B-LOC
"""


def test_evaluate_conlleval_input_prints_conlleval_then_interval_and_signature(tmp_path):
    path = tmp_path / "out.conll"
    path.write_text(CONLLEVAL)
    gold, pred = read_conlleval_input(CONLLEVAL.splitlines())
    expected = span_report(gold, pred, scheme="iob2", samples=1000, seed=12345)
    out = ok(invoke("evaluate", "tags", str(path))).stdout
    assert out.startswith(conlleval_report(expected))
    rest = out[len(conlleval_report(expected)):].splitlines()
    assert len(rest) == 2 and "95% CI" in rest[0] and "1000" in rest[0] and "seed 12345" in rest[0]
    assert rest[1].startswith(f"data:{path}#sha:") and "|sentences:3|scheme:iob2|bootstrap:1000|seed:12345|" in rest[1]
    assert rest[1].split("|")[-1].startswith("version:rnntool-")
    # the same from stdin, and the same numbers as JSON
    assert ok(invoke("evaluate", "tags", "-", input=CONLLEVAL)).stdout.startswith(conlleval_report(expected))
    report = json.loads(ok(invoke("evaluate", "tags", str(path), "--json")).stdout)
    for key, value in expected.items():
        assert report[key] == value, key
    assert report["spans"] is True and report["signature"] == rest[1]
    assert "accuracy:  71.43%" in out  # 5 of 7 tokens


def test_evaluate_scheme_samples_and_seed(tmp_path):
    text = "a B-X S-X\nb E-X S-X\nc S-Y S-Y\n\nd B-X B-X\ne I-X I-X\nf E-X E-X\n"
    path = tmp_path / "bioes.txt"
    path.write_text(text)
    gold, pred = read_conlleval_input(text.splitlines())
    expected = span_report(gold, pred, scheme="iobes", samples=10, seed=3)
    report = json.loads(ok(invoke("evaluate", "tags", str(path), "--scheme", "iobes", "--samples", "10",
                                  "--seed", "3", "--json")).stdout)
    assert {k: report[k] for k in expected} == expected
    assert "|scheme:iobes|bootstrap:10|seed:3|" in report["signature"]
    out = ok(invoke("evaluate", "tags", str(path), "--scheme", "iobes", "--samples", "0")).stdout
    assert out == conlleval_report(span_report(gold, pred, scheme="iobes", samples=0)) + \
        out.splitlines()[-1] + "\n"  # no interval line, the signature last
    fails(invoke("evaluate", "tags", str(path)), 1, "bioes.txt:2: gold tag 'E-X'", "iob2")  # iob2 has no S-


def test_evaluate_pos_tags_gives_token_accuracy_only(tmp_path):
    path = tmp_path / "pos.txt"
    path.write_text("The DET DET\ndog NOUN VERB\nbarks VERB VERB\n\nO O O\n")
    report = json.loads(ok(invoke("evaluate", "tags", str(path), "--json")).stdout)
    assert report["spans"] is False and report["token_accuracy"] == 0.75 and report["tokens"] == 4
    assert report["f1"] is None and report["precision"] is None and report["per_type"] is None
    assert report["interval"]["low"] <= 0.75 <= report["interval"]["high"]
    assert "|scheme:none|" in report["signature"]
    out = ok(invoke("evaluate", "tags", str(path))).stdout.splitlines()
    assert out[0] == "processed 4 tokens in 2 sentences; accuracy:  75.00%"
    assert "spans do not apply" in out[1] and "95% CI" in out[2] and out[3] == report["signature"]
    # an explicit --scheme asks for spans: the tag that is not one is named
    fails(invoke("evaluate", "tags", str(path), "--scheme", "iob2"), 1, "pos.txt:1: gold tag 'DET'")


@pytest.mark.parametrize("content,fragment", [
    ("EU B-ORG B-ORG\nrejects O\n", "bad.txt:2: 2 columns"),
    ("EU\n", "bad.txt:1: one column"),
    ("", "bad.txt: no sentences"),
    (b"EU B-ORG \xff\n", "bad.txt:1"),
])
def test_evaluate_bad_conlleval_input_is_one_line_error(tmp_path, content, fragment):
    path = tmp_path / "bad.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    fails(invoke("evaluate", "tags", str(path)), 1, fragment)


def test_evaluate_usage_errors(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text(CONLLEVAL)
    fails(invoke("evaluate", "tags", str(path), "--format", "conll"), 2, "-m")
    fails(invoke("evaluate", "tags", str(path), "--samples", "-1"), 2, "--samples")
    fails(invoke("evaluate", "tags", str(tmp_path / "missing.txt")), 1, "missing.txt")


# -- evaluate tags -m (stand-in tagger) -----------------------------------------------------------
def test_evaluate_model_scores_its_tags_against_the_file(fake, tmp_path):
    path = tmp_path / "gold.conll"
    path.write_text("Peter\tB-PER\nBlackburn\tI-PER\nsaid\tO\n\nthe\tO\nMan\tB-PER\n\nhi\tO\n")
    gold = [["B-PER", "I-PER", "O"], ["O", "B-PER"], ["O"]]
    pred = [fake_tags(["Peter", "Blackburn", "said"]), fake_tags(["the", "Man"]), fake_tags(["hi"])]
    expected = span_report(gold, pred, scheme="iob2")
    r = ok(invoke("evaluate", "tags", "-m", "ner", str(path)))
    assert r.stdout.startswith(conlleval_report(expected))
    sig = r.stdout.splitlines()[-1]
    assert sig.startswith(f"model:ner@1|data:{path}#sha:") and "|sentences:3|scheme:iob2|" in sig
    report = json.loads(ok(invoke("evaluate", "tags", "-m", "ner", str(path), "--json")).stdout)
    assert {k: report[k] for k in expected} == expected


def test_evaluate_model_unknown_gold_tag_names_file_and_line(fake, tmp_path):
    path = tmp_path / "gold.conll"
    path.write_text("Peter\tB-PER\n\nin\tO\nParis\tB-LOC\n")
    fails(invoke("evaluate", "tags", "-m", "ner", str(path)), 1, "gold.conll:4", "'B-LOC'")
    fails(invoke("evaluate", "tags", "-m", "ner"), 2, "FILE")


def test_evaluate_pos_model_default_scheme_gives_accuracy(fake, tmp_path):
    fake.SCHEME[0] = None
    path = tmp_path / "pos.conll"
    path.write_text("Dogs\tNOUN\nbark\tVERB\n\nCats\tVERB\n")
    report = json.loads(ok(invoke("evaluate", "tags", "-m", "pos", str(path), "--json")).stdout)
    assert report["spans"] is False and report["token_accuracy"] == pytest.approx(2 / 3)


# -- tag (stand-in tagger) ------------------------------------------------------------------------
def test_tag_conll_echoes_rows_with_the_predicted_tag_appended(fake, tmp_path):
    src = tmp_path / "in.conll"
    src.write_text(CONLL)
    r = ok(invoke("tag", "-m", "ner", str(src)))
    sentences = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["said"]]
    rows = [line for line in CONLL.splitlines() if line]
    tags = [t for s in sentences for t in fake_tags(s)]
    expected = "".join(f"{row}\t{t}\n" + ("\n" if row.split("\t")[0] in ("call", "Blackburn", "said") else "")
                       for row, t in zip(rows, tags))
    assert r.stdout == expected
    assert "tagging with ner@1" in r.stderr and "tagged 3 sentences, 7 words in" in r.stderr
    out = tmp_path / "out.conll"
    out.write_text(r.stdout)
    again = list(read_sentences(out, format="conll", tag_column=3))
    assert [list(s.tokens) for s in again] == sentences and [list(s.tags) for s in again] == \
        [fake_tags(s) for s in sentences]
    assert [list(s.tags) for s in read_sentences(out, format="conll", tag_column=2)][0] == \
        ["B-ORG", "O", "B-MISC", "O"]
    # conlleval input: gold and predicted are the last two columns
    gold, pred = read_conlleval_input(r.stdout.splitlines())
    assert gold[1] == ["B-PER", "I-PER"] and pred == [fake_tags(s) for s in sentences]
    # -o writes the same, -q keeps stderr quiet
    q = ok(invoke("tag", "-m", "ner", str(src), "-o", str(tmp_path / "o.conll"), "-q"))
    assert q.stdout == "" and q.stderr == "" and (tmp_path / "o.conll").read_text() == expected


def test_tag_space_separated_conll_appends_a_space_column(fake, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n")
    out = ok(invoke("tag", "-m", "ner", str(src), "--format", "conll")).stdout
    assert out == "EU NNP B-NP B-ORG B-PER\nrejects VBZ B-VP O O\n\n"
    path = tmp_path / "out.txt"
    path.write_text(out)
    assert [s.tags for s in read_sentences(path, format="conll", tag_column=5)] == [("B-PER", "O")]


def test_tag_conllu_keeps_comments_multiword_and_empty_nodes(fake, tmp_path):
    src = tmp_path / "in.conllu"
    src.write_text(CONLLU)
    out = ok(invoke("tag", "-m", "ner", str(src), "-q")).stdout
    lines = CONLLU.rstrip("\n").split("\n")
    tags = iter(fake_tags(["John", "'s", "dog", "ran"]) + fake_tags(["Mary"]))
    want = []
    for line in lines:
        first = line.split("\t")[0]
        want.append(f"{line}\t{next(tags)}" if first.isdigit() else line)
    assert out == "\n".join(want) + "\n\n"
    # gold UPOS in the input: still appended as column 11, the gold tag untouched
    assert out.splitlines()[3].split("\t")[3:] == ["PROPN", "NNP", "_", "3", "nmod:poss", "_", "_", "B-PER"]


def test_tag_lines_and_json(fake):
    out = ok(invoke("tag", "-m", "ner", "--format", "lines", input="John Smith saw Mary\n\nno names\n")).stdout
    assert out == "John/B-PER Smith/I-PER saw/O Mary/B-PER\n\nno/O names/O\n"
    rows = [json.loads(line) for line in
            ok(invoke("tag", "-m", "ner", "--format", "lines", "--json", input="John Smith saw Mary\n\n")).stdout
            .splitlines()]
    assert rows[0] == {"tokens": ["John", "Smith", "saw", "Mary"], "tags": ["B-PER", "I-PER", "O", "B-PER"],
                       "probs": [0.875] * 4,
                       "spans": [{"type": "PER", "start": 0, "end": 2, "text": "John Smith"},
                                 {"type": "PER", "start": 3, "end": 4, "text": "Mary"}]}
    assert rows[1] == {"tokens": [], "tags": [], "probs": [], "spans": []}
    fake.SCHEME[0] = None  # a POS tagger: no spans
    row = json.loads(ok(invoke("tag", "-m", "pos", "--format", "lines", "--json", input="Dogs bark\n")).stdout)
    assert row == {"tokens": ["Dogs", "bark"], "tags": ["NOUN", "VERB"], "probs": [0.875, 0.875]}
    # conll input as JSON: one object per sentence
    rows = ok(invoke("tag", "-m", "ner", "--json", "--format", "conll", input=CONLL)).stdout.splitlines()
    assert [json.loads(x)["tokens"] for x in rows] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"],
                                                       ["said"]]


def test_tag_split_long_sentences_reads_back_as_the_input(fake, tmp_path):
    src = tmp_path / "in.conll"
    src.write_text(CONLL)
    whole = ok(invoke("tag", "-m", "ner", str(src))).stdout
    # split into pieces of 2 tokens: the same rows, no blank line inside a sentence (tags per piece)
    split = ok(invoke("tag", "-m", "ner", str(src), "--max-len", "2", "--on-long", "split")).stdout
    assert [line.rsplit("\t", 1)[0] for line in split.splitlines()] == \
        [line.rsplit("\t", 1)[0] for line in whole.splitlines()]
    assert split.splitlines()[2] == "German\tB-MISC\tB-PER"
    lines = ok(invoke("tag", "-m", "ner", "--format", "lines", "--max-len", "2", "--on-long", "split",
                      input="a b c d\nx y\nq\n")).stdout
    assert lines == "a/O b/O c/O d/O\nx/O y/O\nq/O\n"
    rows = ok(invoke("tag", "-m", "ner", "--format", "lines", "--max-len", "3", "--on-long", "split", "--json",
                     input="A B C D\n")).stdout.splitlines()
    assert len(rows) == 1  # one object per input sentence, its pieces tagged apart: [A B C] [D]
    assert json.loads(rows[0])["tags"] == ["B-PER", "I-PER", "I-PER", "B-PER"]
    assert [x["text"] for x in json.loads(rows[0])["spans"]] == ["A B C", "D"]
    fails(invoke("tag", "-m", "ner", str(src), "--max-len", "2"), 1, "in.conll:1", "--max-len 2")


def test_tag_batch_size_default_and_usage_errors(fake, tmp_path):
    ok(invoke("tag", "-m", "ner", "--format", "lines", input="a\nb\nc\n"))
    assert fake.OPENED[-1].batches == [3]  # not a terminal: batches of 32
    ok(invoke("tag", "-m", "ner", "--format", "lines", "--batch-size", "2", input="a\nb\nc\n"))
    assert fake.OPENED[-1].batches == [2, 1]
    fails(invoke("tag", "-m", "ner", "--batch-size", "0", input="a\n"), 2, "--batch-size")
    fails(invoke("tag", "-m", "ner", "--format", "lines", "--tag-column", "2", input="a\n"), 2, "--tag-column")
    fails(invoke("tag", "-m", "ner", str(tmp_path / "missing.conll")), 1, "missing.conll")
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tJohn\tJohn\tPROPN\n")
    fails(invoke("tag", "-m", "ner", str(bad)), 1, "bad.conllu:1")


# -- streaming, in a real process -----------------------------------------------------------------
DRIVER = """
import sys, types
import rnntool.kinds.tagger as pkg
module = types.ModuleType("rnntool.kinds.tagger.predict")
sys.modules[module.__name__] = module
exec(SOURCE, module.__dict__)
pkg.predict = module
from rnntool.cli import main
main(sys.argv[1:])
"""


@pytest.fixture
def driver(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(f"SOURCE = {FAKE_SOURCE!r}\n{DRIVER}")
    return path


def test_tag_streams_each_sentence_before_the_input_ends(driver):
    for fmt, sentence, answer in (("conll", "John\nruns\n\n", ["John\tB-PER", "runs\tO", ""]),
                                  ("lines", "John runs\n", ["John/B-PER runs/O"])):
        proc = subprocess.Popen([sys.executable, str(driver), "tag", "-m", "ner", "--format", fmt, "--batch-size",
                                 "1", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            proc.stdin.write(sentence)
            proc.stdin.flush()
            assert [proc.stdout.readline().rstrip("\n") for _ in answer] == answer  # stdin still open
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)
        assert proc.returncode == 0


def test_tag_head_exits_quietly(driver):
    r = subprocess.run(["bash", "-c", f"yes 'John runs' | head -5000 | {sys.executable} {driver} tag -m ner "
                                      "--format lines -q | head -1; exit ${PIPESTATUS[2]}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "John/B-PER runs/O\n" and r.stderr == ""


def test_evaluate_tags_reads_a_pipe(tmp_path):
    path = tmp_path / "out.conll"
    path.write_text(CONLLEVAL)
    r = subprocess.run(["bash", "-c", f"cat {path} | {rnntool_cmd()} evaluate tags --samples 0 -q"],
                       capture_output=True, text=True, timeout=120)
    gold, pred = read_conlleval_input(CONLLEVAL.splitlines())
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith(conlleval_report(span_report(gold, pred, samples=0)))
    assert r.stdout.splitlines()[-1].startswith("data:<stdin>|sentences:3|")


# -- end to end, with a real (tiny) tagger --------------------------------------------------------
def test_real_tagger_tag_then_evaluate_agree(tmp_path):
    pytest.importorskip("rnntool.kinds.tagger.predict")
    pytest.importorskip("rnntool.cli.train_tag")
    names = {"cat": "B-ANIMAL", "dog": "B-ANIMAL", "house": "B-PLACE", "river": "B-PLACE"}
    words = ["the", "cat", "sees", "a", "dog", "near", "house", "river", "runs"]
    blocks = []
    for i in range(40):
        sentence = [words[(i * 7 + k * 3) % len(words)] for k in range(3 + i % 4)]
        blocks.append("".join(f"{w}\t{names.get(w, 'O')}\n" for w in sentence))
    data = tmp_path / "train.conll"
    data.write_text("\n".join(blocks))
    ok(invoke("train", "tag", data, "-o", tmp_path / "m", "-q", "--embed-dim", "8", "--char-hidden", "8",
              "--hidden-dim", "16", "--layers", "1", "--dropout", "0", "--batch-size", "8", "--seed", "3",
              "--max-steps", "30"))
    tagged = ok(invoke("tag", "-m", tmp_path / "m", data, "-q")).stdout
    assert [line.rsplit("\t", 1)[0] for line in tagged.splitlines()] == (data.read_text() + "\n").splitlines()
    gold, pred = read_conlleval_input(tagged.splitlines())
    report = json.loads(ok(invoke("evaluate", "tags", "-m", tmp_path / "m", data, "--json", "-q")).stdout)
    expected = span_report(gold, pred, scheme="iob2")
    assert {k: report[k] for k in expected} == expected
    # the tag output, scored as conlleval input, gives the same report
    again = json.loads(ok(invoke("evaluate", "tags", "-", "--json", input=tagged)).stdout)
    assert {k: again[k] for k in expected} == expected
    row = json.loads(ok(invoke("tag", "-m", tmp_path / "m", "--format", "lines", "--json", "-q",
                               input="the cat runs\n")).stdout)
    assert row["tokens"] == ["the", "cat", "runs"] and len(row["tags"]) == 3 and "spans" in row


def test_promote_on_span_f1_needs_a_significant_gain(tmp_path):
    pytest.importorskip("rnntool.cli.train_tag")
    from rnntool.registry.store import Registry

    names = {"cat": "ANIMAL", "dog": "ANIMAL", "fox": "ANIMAL", "house": "PLACE", "river": "PLACE", "hill": "PLACE"}
    words = ["the", "cat", "sees", "a", "dog", "near", "house", "river", "runs", "fox", "hill", "and"]

    def write(path, n, offset):
        blocks = []
        for i in range(offset, offset + n):
            sentence = [words[(i * 7 + k * 5) % len(words)] for k in range(4 + i % 5)]
            blocks.append("".join(f"{w}\t{'B-' + names[w] if w in names else 'O'}\n" for w in sentence))
        path.write_text("\n".join(blocks))
        return path

    train, dev = write(tmp_path / "train.conll", 60, 0), write(tmp_path / "dev.conll", 60, 1000)
    args = ("train", "tag", train, "--valid", dev, "--name", "ner", "--promote", "prod", "--select", "span-f1",
            "-q", "--embed-dim", "8", "--char-hidden", "0", "--hidden-dim", "16", "--layers", "1", "--dropout", "0",
            "--batch-size", "8", "--seed", "3")
    ok(invoke(*args, "--max-steps", "1"))  # barely trained: the first @prod, whatever it scores
    reg = Registry.open()
    assert reg.aliases("ner")["prod"] == 1
    first = reg.load("ner@1", kind="tagger").manifest["extra"]["promotion"]
    assert first["promoted"] is True and first["metric"] == "val_span_f1", first
    ok(invoke(*args, "--max-steps", "120", "--lr", "1e-2"))  # far better: promoted
    second = reg.load("ner@2", kind="tagger").manifest["extra"]["promotion"]
    assert second["promoted"] is True and reg.aliases("ner")["prod"] == 2, second
    ok(invoke(*args, "--max-steps", "120", "--lr", "1e-2", "--seed", "4"))  # as good: not significantly better
    third = reg.load("ner@3", kind="tagger").manifest["extra"]["promotion"]
    assert third["promoted"] is False and reg.aliases("ner")["prod"] == 2, third
