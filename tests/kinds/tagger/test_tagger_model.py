"""The tagger model and task without the CLI: padding never leaks (words or characters), batched ==
one-by-one, vocabularies, the BIO scheme, and the per-sentence counts promotion resamples."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnntool.kinds.tagger.data import Sentence
from rnntool.kinds.tagger.model import RNNTagger, TaggerConfig
from rnntool.kinds.tagger.spans import span_report
from rnntool.kinds.tagger.task import Vocabulary, bio_scheme, length_mask, sentence_batch, tag_sentences
from rnntool.kinds.tagger.train import first_broken, metric_of, sentence_counts

pytestmark = pytest.mark.usefixtures("one_thread")
WORDS = ["Paris", "is", "nice", "and", "Berlin", "too", "Ann", "likes", "them", "zebra"]


def _sentences(n: int, seed: int = 0) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tokens = tuple(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))
        tags = tuple("B-LOC" if w in ("Paris", "Berlin") else "B-PER" if w == "Ann" else "O" for w in tokens)
        out.append(Sentence(tokens, tags, i + 1))
    return out


def _model(vocab: Vocabulary, **kw) -> RNNTagger:
    torch.manual_seed(0)
    settings = dict(embed_dim=8, char_hidden=6, hidden_dim=10, layers=2, dropout=0.0) | kw
    cfg = TaggerConfig(vocab_size=vocab.word_vocab_size, char_vocab_size=vocab.char_vocab_size,
                       num_tags=len(vocab.tags), **settings)
    return RNNTagger(cfg, vocab.tags).eval()


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("char_hidden", [0, 6])
def test_batched_equals_one_by_one(crf, char_hidden):
    sents = _sentences(12)
    vocab = Vocabulary.build(sents)
    model = _model(vocab, crf=crf, char_hidden=char_hidden, **({"constraints": "iob2"} if crf else {}))
    tokens = [list(s.tokens) for s in sents]
    with torch.no_grad():
        words, chars, lengths = sentence_batch(vocab, tokens, "cpu")
        batched = model(words, chars, lengths)  # (B, T, K)
        for i, t in enumerate(tokens):
            single = model(*sentence_batch(vocab, [t], "cpu"))
            torch.testing.assert_close(batched[i, : len(t)], single[0], rtol=1e-5, atol=1e-6)
        tags, probs = tag_sentences(model, vocab, tokens, batch_size=5)
        one = [tag_sentences(model, vocab, [t])[0][0] for t in tokens]
    assert tags == one and all(len(t) == len(s) for t, s in zip(tags, tokens))
    assert all(0 < p <= 1 for ps in probs for p in ps)


def test_unknown_words_still_get_their_spelling():
    sents = _sentences(20)
    vocab = Vocabulary.build(sents, min_count=1000)  # every word unknown
    assert vocab.word_ids(["Paris", "Ann"]) == [1, 1] and vocab.unknown_words(["Paris"]) == 1
    model = _model(vocab)
    with torch.no_grad():
        e = model(*sentence_batch(vocab, [["Paris"], ["Ann"]], "cpu"))
    assert not torch.allclose(e[0, 0], e[1, 0])  # the character encoder tells them apart
    lower = Vocabulary.build(sents, lowercase=True)
    assert lower.word_ids(["PARIS"]) == lower.word_ids(["paris"]) != [1]


def test_bio_scheme_and_broken_sequences():
    assert bio_scheme(["B-LOC", "I-LOC", "O"]) == "iob2"
    assert bio_scheme(["B-LOC", "E-LOC", "S-PER", "O"]) == "iobes"
    assert bio_scheme(["NOUN", "VERB", "ADJ"]) is None
    tags = ["B-LOC", "I-LOC", "O"]
    ok = [Sentence(("a", "b"), ("B-LOC", "I-LOC"), 1)]
    bad = ok + [Sentence(("c", "d"), ("O", "I-LOC"), 7)]
    assert first_broken(ok, tags, "iob2") is None and first_broken(bad, tags, "iob2").line == 7


def test_per_sentence_counts_give_the_report_s_scores():
    rng = random.Random(3)
    tags = ["B-X", "I-X", "B-Y", "O"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(40)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in gold]
    counts = sentence_counts(gold, pred, "iob1")
    report = span_report(gold, pred, scheme="iob1", samples=0)
    assert metric_of(counts, "span_f1")(np.arange(len(gold))) == pytest.approx(report["f1"], abs=1e-12)
    assert metric_of(counts, "accuracy")(np.arange(len(gold))) == pytest.approx(report["token_accuracy"], abs=1e-12)


def test_length_mask():
    assert length_mask(torch.tensor([2, 0, 3]), 3).tolist() == [[True, True, False], [False, False, False],
                                                                [True, True, True]]
