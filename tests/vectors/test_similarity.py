"""Nearest neighbours, analogies and the word-pair / analogy evaluations: hand-made cases, and gensim's
KeyedVectors as the oracle on its own test files (wordsim353.tsv, questions-words.txt)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnntool.errors import BadInput, UnknownWord
from rnntool.vectors.io import WordVectors, read_vectors
from rnntool.vectors.similarity import (
    SimilarityIndex,
    analogy,
    average_ranks,
    evaluate_word_analogies,
    evaluate_word_pairs,
    nearest,
    pearson,
    spearman,
)

APPROX = dict(abs=1e-6)


# -- hand-made ----------------------------------------------------------------------------------------

def _vectors(table: dict[str, list[float]]) -> WordVectors:
    return WordVectors(list(table), np.array(list(table.values()), dtype=np.float32))


TOY = _vectors({
    "man": [1.0, 0.0, 0.1], "woman": [0.0, 1.0, 0.1], "king": [1.0, 0.2, 1.0], "queen": [0.2, 1.0, 1.0],
    "apple": [0.0, 0.0, -1.0], "King": [0.9, 0.1, 0.9], "pad": [0.0, 0.0, 0.0],
})


def _cos(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_nearest_is_cosine_best_first_without_the_query():
    got = nearest(TOY, "king", 3)
    words = [w for w, _ in got]
    assert words[0] == "King" and "king" not in words
    m = TOY.matrix
    for w, s in got:
        assert s == pytest.approx(_cos(m[TOY.index["king"]], m[TOY.index[w]]), abs=1e-6)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    assert "King" not in [w for w, _ in nearest(TOY, "king", 3, exclude=["King"])]
    assert len(nearest(TOY, "king", 100)) == len(TOY) - 1


def test_a_vector_query_and_a_zero_vector():
    got = nearest(TOY, np.array([0.0, 0.0, -2.0], dtype=np.float32), 2)
    assert got[0] == ("apple", pytest.approx(1.0))
    assert dict(nearest(TOY, "man", 10))["pad"] == 0.0  # a zero vector: cosine 0 with everything


def test_analogy_is_3cosadd_without_its_words():
    got = analogy(TOY, "man", "king", "woman", 2)
    assert got[0][0] == "queen"
    assert not {"man", "king", "woman"} & {w for w, _ in got}
    unit = {w: TOY.matrix[i] / np.linalg.norm(TOY.matrix[i]) for w, i in TOY.index.items() if w != "pad"}
    query = unit["king"] + unit["woman"] - unit["man"]
    assert got[0][1] == pytest.approx(_cos(query, TOY.matrix[TOY.index["queen"]]), abs=1e-6)


def test_an_unknown_word_is_named_with_a_case_hint():
    with pytest.raises(UnknownWord, match=r"'QUEEN' is not in the vocabulary of toy \(did you mean 'queen'\?\)") as e:
        nearest(SimilarityIndex(TOY, name="toy"), "QUEEN", 3)
    assert e.value.word == "QUEEN"
    with pytest.raises(UnknownWord, match="'pear'"):
        analogy(TOY, "man", "pear", "woman", 3)


def test_ranks_and_correlations():
    assert average_ranks(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert average_ranks(np.array([3.0, 3.0, 3.0])).tolist() == [2.0, 2.0, 2.0]
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 4.0, 9.0, 16.0])
    assert spearman(x, y) == pytest.approx(1.0)
    assert pearson(x, y) == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert spearman(x, -y) == pytest.approx(-1.0)
    assert math.isnan(pearson(x, np.ones(4))) and math.isnan(pearson(x[:1], y[:1]))


def test_word_pairs_count_comments_invalid_lines_and_oov(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("# a comment\nman\twoman\t5\nking\tqueen\t8\nking\tapple\t1\nman\tpear\t3\nnot a pair\n\n"
                 "MAN\tKing\t7\n", encoding="utf-8")
    got = evaluate_word_pairs(TOY, f)
    assert (got.pairs, got.oov, got.invalid, got.total) == (4, 1, 1, 5)
    assert got.oov_ratio == pytest.approx(20.0) and got.unknown_words == ["pear"]
    model = [_cos(TOY.matrix[TOY.index[a]], TOY.matrix[TOY.index[b]])
             for a, b in [("man", "woman"), ("king", "queen"), ("king", "apple"), ("man", "king")]]
    gold = [5, 8, 1, 7]
    assert got.spearman == pytest.approx(spearman(np.array(gold, float), np.array(model)))
    scored = evaluate_word_pairs(TOY, f, dummy4unknown=True)  # the OOV pair scores 0
    assert (scored.pairs, scored.oov, scored.total) == (5, 1, 5) and scored.oov_ratio == pytest.approx(20.0)
    strict = evaluate_word_pairs(TOY, f, case_insensitive=False)  # MAN is unknown; King is a word of its own
    assert (strict.pairs, strict.oov) == (3, 2)
    f.write_text("# nothing\nx\ty\t1\n", encoding="utf-8")
    with pytest.raises(BadInput, match="no word pair to score"):
        evaluate_word_pairs(TOY, f)


def test_analogies_count_sections_oov_and_a_missing_header(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text(": royal\nman king woman queen\nman king woman apple\nman king pear queen\nthree words only\n"
                 ": empty\n", encoding="utf-8")
    got = evaluate_word_analogies(TOY, f)
    assert [s.name for s in got.sections] == ["royal", "empty"]
    assert got.sections[0].correct == [("MAN", "KING", "WOMAN", "QUEEN")]
    assert got.sections[0].incorrect == [("MAN", "KING", "WOMAN", "APPLE")]
    assert got.sections[1].questions == 0 and got.sections[1].accuracy == 0.0
    assert (got.questions, got.oov, got.invalid, got.accuracy) == (3, 1, 1, 0.5)
    assert got.total.name == "Total accuracy" and got.oov_ratio == pytest.approx(100 / 3)
    assert evaluate_word_analogies(TOY, f, dummy4unknown=True).total.questions == 3
    f.write_text("man king woman queen\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"q.txt:1: a question before the first ': SECTION' line"):
        evaluate_word_analogies(TOY, f)


# -- gensim as the oracle --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def space(tmp_path_factory):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    from support.word_vectors import build_space

    space = build_space(tmp_path_factory.mktemp("vectors"))
    kv = KeyedVectors.load_word2vec_format(str(space.vec), binary=False)
    vectors = read_vectors(space.vec)
    assert vectors.words == list(kv.index_to_key)
    np.testing.assert_array_equal(vectors.matrix, kv.vectors)  # the same numbers go in
    return space, kv, SimilarityIndex(vectors)


SETTINGS = [{}, {"case_insensitive": False}, {"restrict_vocab": 700}, {"dummy4unknown": True},
            {"restrict_vocab": 400, "case_insensitive": False, "dummy4unknown": True}]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_word_pairs_equal_gensims(space, settings):
    space, kv, index = space
    pearson_r, spearman_rho, oov_ratio = kv.evaluate_word_pairs(str(space.pairs), **settings)
    got = evaluate_word_pairs(index, space.pairs, **settings)
    assert got.spearman == pytest.approx(float(spearman_rho[0]), **APPROX)
    assert got.pearson == pytest.approx(float(pearson_r[0]), **APPROX)
    assert got.oov_ratio == pytest.approx(oov_ratio, **APPROX)
    if not settings:  # the data exercise what they should
        assert got.pairs > 200 and got.oov > 20 and got.spearman > 0.2


def _check_analogies(kv, index, path, settings):
    score, sections = kv.evaluate_word_analogies(str(path), **settings)
    got = evaluate_word_analogies(index, path, **settings)
    assert got.accuracy == pytest.approx(score, **APPROX)
    assert [s.name for s in got.sections] + [got.total.name] == [s["section"] for s in sections]
    for mine, theirs in zip(got.sections + [got.total], sections):
        assert mine.correct == theirs["correct"], mine.name
        assert mine.incorrect == theirs["incorrect"], mine.name
    return got


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_analogies_equal_gensims(space, settings):
    space, kv, index = space
    got = _check_analogies(kv, index, space.questions_sample, settings)
    # the OOV count, independently: questions with a word outside the (restricted, upper-cased) vocabulary
    ci = settings.get("case_insensitive", True)
    vocab = {w.upper() if ci else w for w in space.words[:settings.get("restrict_vocab", 300000)]}
    lines = [line.split() for line in space.questions_sample.read_text().splitlines() if not line.startswith(":")]
    assert got.oov == sum(any((w.upper() if ci else w) not in vocab for w in q) for q in lines)
    assert got.questions == len(lines)
    if not settings:
        assert len(got.total.correct) > 100 and len(got.total.incorrect) > 100 and got.oov > 100


@pytest.mark.slow
def test_analogies_equal_gensims_on_the_whole_file(space):
    space, kv, index = space
    got = _check_analogies(kv, index, space.questions, {})
    assert got.questions == 19544


def test_nearest_and_analogy_equal_gensims_most_similar(space):
    space, kv, index = space
    words = [w for w in index.words[::97]]
    for word in words:
        mine, theirs = nearest(index, word, 10), kv.most_similar(word, topn=10)
        assert [w for w, _ in mine] == [w for w, _ in theirs]
        assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], **APPROX)
        restricted = kv.most_similar(word, topn=5, restrict_vocab=300)
        assert [w for w, _ in nearest(index, word, 5, restrict=300)] == [w for w, _ in restricted]
    vector = kv.vectors[3] + kv.vectors[8]
    assert ([w for w, _ in nearest(index, vector, 5)] ==
            [w for w, _ in kv.most_similar(positive=[vector], topn=5)])
    for a, b, c in [("Athens", "Greece", "Berlin"), ("boy", "girl", "brother"), ("good", "better", "bad")]:
        if not all(w in index.index for w in (a, b, c)):
            continue
        mine, theirs = analogy(index, a, b, c, 5), kv.most_similar(positive=[b, c], negative=[a], topn=5)
        assert [w for w, _ in mine] == [w for w, _ in theirs]
        assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], **APPROX)
