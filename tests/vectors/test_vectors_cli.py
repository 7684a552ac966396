"""`rnntool neighbors`, `rnntool evaluate word-pairs`, `rnntool evaluate analogies`: output, streaming,
errors, JSON; and the numbers against gensim's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fails, invoke, ok

from support.word_vectors import write_vec

WORDS = {"man": [1.0, 0.0, 0.1], "woman": [0.0, 1.0, 0.1], "king": [1.0, 0.2, 1.0], "queen": [0.2, 1.0, 1.0],
         "apple": [0.0, 0.0, -1.0], "pear": [0.1, 0.0, -1.0], "King": [0.9, 0.1, 0.9]}


def _strict_json(text: str):
    def no_constant(name):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=no_constant)


@pytest.fixture
def vec(tmp_path):
    return write_vec(tmp_path / "toy.vec", list(WORDS), np.array(list(WORDS.values()), dtype=np.float32))


def test_neighbors_of_words_one_line_each_best_first(vec):
    r = ok(invoke("neighbors", "-m", vec, "king", "apple", "-k", "2"))
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    query, answers = lines[0].split("\t")
    assert query == "king"
    fields = answers.split()
    assert fields[0::2] == ["King", "man"] and all(0 < float(s) <= 1 for s in fields[1::2])
    assert lines[1].startswith("apple\tpear 0.99")


def test_neighbors_reads_words_from_stdin_and_answers_json(vec):
    r = ok(invoke("neighbors", "-m", vec, "--json", "-k", "3", input="queen\n\n  man  \n"))
    rows = [_strict_json(line) for line in r.stdout.splitlines()]
    assert [row["query"] for row in rows] == ["queen", "", "man"]
    assert len(rows[0]["neighbors"]) == 3 and rows[1]["neighbors"] == []
    assert set(rows[0]["neighbors"][0]) == {"word", "cosine"}


def test_an_unknown_word_is_named_after_the_others_are_answered(vec):
    r = fails(invoke("neighbors", "-m", vec, "king", "kong", "queen"), 1, "1 of 3 queries not answered",
              "'kong' is not in the vocabulary")
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["king", "kong", "queen"]
    assert lines[1] == "kong\t"
    r = fails(invoke("neighbors", "-m", vec, "QUEEN"), 1, "'QUEEN' is not in the vocabulary", "did you mean 'queen'")
    # streaming: a warning as soon as the word comes, then the error at the end
    r = fails(invoke("neighbors", "-m", vec, "--json", input="kong\nking\n"), 1, "'kong'")
    assert "warning: 'kong' is not in the vocabulary" in r.stderr
    rows = [_strict_json(line) for line in r.stdout.splitlines()]
    assert rows[0]["neighbors"] == [] and "kong" in rows[0]["error"] and rows[1]["neighbors"]


def test_each_word_on_stdin_is_answered_before_the_next_is_read(vec):
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "rnntool", "neighbors", "-m", str(vec), "-k", "1", "-q"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, proc.kill)  # a command that waits for EOF would hang here
    watchdog.start()
    try:
        proc.stdin.write("king\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("king\tKing ")  # stdin still open
        proc.stdin.write("apple\n")
        proc.stdin.close()
        assert proc.stdout.readline().startswith("apple\tpear ")
        assert proc.wait() == 0, proc.stderr.read()
    finally:
        watchdog.cancel()
        proc.kill()


def test_analogies(vec):
    r = ok(invoke("neighbors", "-m", vec, "--analogy", "man", "king", "woman", "-k", "1"))
    assert r.stdout == "man king woman\tqueen " + r.stdout.split()[-1] + "\n"
    r = ok(invoke("neighbors", "-m", vec, "--analogy", "-k", "1", input="man king woman\n"))
    assert r.stdout.split("\t")[1].startswith("queen ")
    fails(invoke("neighbors", "-m", vec, "--analogy", "man", "king"), 2, "three at a time")
    fails(invoke("neighbors", "-m", vec, "--analogy", input="man king\n"), 1, "an analogy is three words")
    fails(invoke("neighbors", "-m", vec, input="man king\n"), 1, "one word per query")


def test_stdin_cannot_be_both_the_vectors_and_the_queries(vec):
    fails(invoke("neighbors", "-m", "-", input=vec.read_text()), 2, "-m - reads the vectors from stdin")
    r = ok(invoke("neighbors", "-m", "-", "king", "-k", "1", input=vec.read_text()))
    assert r.stdout.startswith("king\tKing ")


def test_evaluate_word_pairs_text_and_json(vec, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# w1\tw2\tscore\nman\twoman\t5\nking\tqueen\t8\nking\tapple\t1\napple\tpear\t9\n"
                     "man\tplum\t2\n", encoding="utf-8")
    r = ok(invoke("evaluate", "word-pairs", "-m", vec, pairs))
    first, signature = r.stdout.splitlines()
    assert first.startswith("spearman ") and "pairs 4  oov 1 (20.0%)" in first
    assert signature == f"vectors:{vec}|restrict-vocab:300000|case:insensitive|oov:skipped"
    assert "plum" in r.stderr
    from rnntool.vectors.io import read_vectors
    from rnntool.vectors.similarity import evaluate_word_pairs

    expected = evaluate_word_pairs(read_vectors(vec), pairs)
    got = _strict_json(ok(invoke("evaluate", "word-pairs", "-m", vec, pairs, "--json")).stdout)
    assert got["spearman"] == pytest.approx(expected.spearman) and got["pearson"] == pytest.approx(expected.pearson)
    assert (got["pairs"], got["oov"], got["unknown_words"]) == (4, 1, ["plum"])
    # one pair: no correlation (null, never NaN, in JSON)
    pairs.write_text("man\twoman\t5\n", encoding="utf-8")
    got = _strict_json(ok(invoke("evaluate", "word-pairs", "-m", vec, "--json", input=pairs.read_text())).stdout)
    assert got["spearman"] is None and got["pairs"] == 1 and got["file"] == "<stdin>"
    fails(invoke("evaluate", "word-pairs", "-m", vec, "--restrict-vocab", "0", pairs), 2)


def test_evaluate_analogies_table_and_json(vec, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": royal\nman king woman queen\nman king woman pear\nman king plum queen\n"
                         ": fruit\nking queen man woman\n", encoding="utf-8")
    r = ok(invoke("evaluate", "analogies", "-m", vec, questions))
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["section", "correct", "questions", "accuracy"]
    assert lines[1].split() == ["royal", "1", "2", "0.5000"]
    assert lines[3].split()[:3] == ["total", str(1 + int(lines[2].split()[1])), "3"]
    assert lines[4] == "oov 1 of 4 questions (25.0%) left out"
    got = _strict_json(ok(invoke("evaluate", "analogies", "-m", vec, questions, "--json")).stdout)
    assert got["questions"] == 4 and got["oov"] == 1 and got["answered"] == 3
    assert [s["section"] for s in got["sections"]] == ["royal", "fruit"]
    assert got["sections"][0] == {"section": "royal", "correct": 1, "questions": 2, "accuracy": 0.5}
    questions.write_text("man king woman queen\n", encoding="utf-8")
    fails(invoke("evaluate", "analogies", "-m", vec, questions), 1, "before the first ': SECTION' line")


def test_a_missing_vectors_file_is_one_line(tmp_path):
    fails(invoke("neighbors", "-m", tmp_path / "nope.vec", "king"), 1, "nope.vec")


def test_a_models_input_embeddings(tiny_lm_bundle):
    """-m takes a model too: its input embedding table, one row per piece."""
    from rnntool.vectors.io import load_vectors
    from rnntool.vectors.similarity import nearest

    bundle = tiny_lm_bundle(steps=1)
    vectors = load_vectors(str(bundle))
    piece = vectors.words[10]
    r = _strict_json(ok(invoke("neighbors", "-m", bundle, piece, "-k", "3", "--json")).stdout)
    assert r["query"] == piece
    assert [(n["word"], n["cosine"]) for n in r["neighbors"]] == [(w, round(c, 6)) for w, c in nearest(vectors, piece, 3)]
    fails(invoke("neighbors", "-m", bundle, "--side", "tgt", piece), 2, "--side tgt")


# -- against gensim -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gensim_space(tmp_path_factory):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    from support.word_vectors import build_space

    space = build_space(tmp_path_factory.mktemp("cli-vectors"))
    return space, KeyedVectors.load_word2vec_format(str(space.vec), binary=False)


def test_the_commands_print_gensims_numbers(gensim_space):
    space, kv = gensim_space
    pearson_r, spearman_rho, oov_ratio = kv.evaluate_word_pairs(str(space.pairs))
    got = _strict_json(ok(invoke("evaluate", "word-pairs", "-m", space.vec, space.pairs, "--json")).stdout)
    assert got["spearman"] == pytest.approx(float(spearman_rho[0]), abs=1e-6)
    assert got["pearson"] == pytest.approx(float(pearson_r[0]), abs=1e-6)
    assert got["oov_ratio"] == pytest.approx(oov_ratio, abs=1e-6)
    score, sections = kv.evaluate_word_analogies(str(space.questions_sample), restrict_vocab=800)
    got = _strict_json(ok(invoke("evaluate", "analogies", "-m", space.vec, space.questions_sample,
                                 "--restrict-vocab", "800", "--json")).stdout)
    assert got["accuracy"] == pytest.approx(score, abs=1e-6)
    assert [(s["section"], s["correct"], s["questions"]) for s in got["sections"]] == [
        (s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections[:-1]]
    word = space.words[10]
    r = _strict_json(ok(invoke("neighbors", "-m", space.vec, word, "-k", "5", "--json")).stdout)
    assert [n["word"] for n in r["neighbors"]] == [w for w, _ in kv.most_similar(word, topn=5)]
