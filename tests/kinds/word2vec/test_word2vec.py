"""`rnntool train word2vec`: gensim's vectors, seeded and repeatable, published as a safetensors bundle."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import invoke, run_cli
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE
from support.kind_recipe import sentences

ARGS = ["--embed-dim", "12", "--min-count", "2", "--threads", "1", "--seed", "7", "--epochs", "3", "-q"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"{s}\n" for s in sentences(300)), encoding="utf-8")
    return path


def test_one_thread_repeats_exactly_in_another_process(corpus, tmp_path):
    pytest.importorskip("gensim")
    for out in ("a", "b"):
        r = run_cli("train", "word2vec", corpus, "-o", tmp_path / out, *ARGS)
        assert r.returncode == 0, r.stderr
    a, b = (load_file(tmp_path / d / WEIGHTS_FILE)["vectors"] for d in ("a", "b"))
    assert a.shape[1] == 12 and np.array_equal(a, b)
    assert (tmp_path / "a" / VOCAB_FILE).read_bytes() == (tmp_path / "b" / VOCAB_FILE).read_bytes()


def test_the_vectors_are_gensims(corpus, tmp_path):
    gensim = pytest.importorskip("gensim")

    r = invoke("train", "word2vec", corpus, "-o", tmp_path / "m", "--algorithm", "cbow", *ARGS)
    assert r.exit_code == 0, r.output
    lines = [line.split() for line in corpus.read_text(encoding="utf-8").splitlines()]
    theirs = gensim.models.Word2Vec(lines, vector_size=12, min_count=2, workers=1, seed=7, epochs=3, sg=0,
                                    negative=5, hs=0, window=5, sample=1e-3, alpha=0.025)
    vocab = json.loads((tmp_path / "m" / VOCAB_FILE).read_text(encoding="utf-8"))
    assert vocab["words"] == list(theirs.wv.index_to_key)
    assert vocab["counts"] == [theirs.wv.get_vecattr(w, "count") for w in vocab["words"]]
    np.testing.assert_allclose(load_file(tmp_path / "m" / WEIGHTS_FILE)["vectors"], theirs.wv.vectors, rtol=1e-5,
                               atol=1e-6)


def test_published_with_its_settings_and_exported_as_vec(corpus, tmp_path, registry):
    pytest.importorskip("gensim")
    r = invoke("train", "word2vec", corpus, "--name", "w2v", "--json", *ARGS)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["ref"] == "w2v@1" and summary["data"]["words"] > 5
    again = invoke("train", "word2vec", corpus, "--name", "w2v", "--if-changed", *ARGS)
    assert again.exit_code == 0 and again.stdout.startswith("skipped")
    from rnntool.registry.store import Registry

    manifest = Registry.open().load("w2v").manifest
    assert manifest["config"]["model"]["algorithm"] == "skipgram" and manifest["config"]["model"]["embed_dim"] == 12
    assert [d["role"] for d in manifest["data"]] == ["train"]
    assert json.loads(invoke("models", "show", "w2v", "--json").stdout)["versions"][0]["kind"] == "word2vec"
    vec = tmp_path / "w2v.vec"
    assert invoke("models", "vectors", "w2v", "-o", vec).exit_code == 0
    header = vec.read_text(encoding="utf-8").splitlines()[0].split()
    assert header[1] == "12" and int(header[0]) == summary["data"]["words"]


def test_missing_gensim_names_the_extra(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)  # import gensim -> ImportError
    r = invoke("train", "word2vec", corpus, "-o", tmp_path / "m", *ARGS)
    assert r.exit_code == 1 and "pip install 'rnntool[word2vec]'" in r.stderr and "Traceback" not in r.stderr


def test_bad_settings_are_usage_errors(corpus, tmp_path):
    for args, message in ((["--negative", "0"], "--negative must be at least 1"),
                          (["--subsample", "1.5"], "--subsample must be in [0, 1)"),
                          (["--algorithm", "glove"], "'--algorithm': 'glove' is not one of")):
        r = invoke("train", "word2vec", corpus, "-o", tmp_path / "m", *args)
        assert r.exit_code == 2 and message in r.stderr, r.stderr


def test_a_line_longer_than_gensims_limit_is_read_whole(tmp_path):
    from rnntool.kinds.word2vec.train import MAX_SENTENCE_WORDS, CorpusSentences

    path = tmp_path / "long.txt"
    path.write_text(" ".join(["w"] * (2 * MAX_SENTENCE_WORDS + 5)) + "\nA b\n\n", encoding="utf-8")
    assert [len(s) for s in CorpusSentences(str(path), lowercase=True, on_bad_utf8="strict")] == \
        [MAX_SENTENCE_WORDS, MAX_SENTENCE_WORDS, 5, 2]
    assert list(CorpusSentences(str(path), lowercase=True, on_bad_utf8="strict"))[-1] == ["a", "b"]
