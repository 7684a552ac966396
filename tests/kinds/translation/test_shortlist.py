"""Target-vocabulary shortlists: the IBM Model 1 table, its file, and decoding over each sentence's list."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnntool.decoding.ensemble import Ensemble
from rnntool.errors import CorruptBundle
from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig
from rnntool.kinds.translation.shortlist import LexicalTable, Shortlist, build_lexical_table
from rnntool.kinds.translation.translate import DecodeSettings, decode
from rnntool.layers.precision import for_inference

# word ids: sources 4.. and targets 4..; source word i translates to target word LEXICON[i]; word 4 ("the")
# to 4, 5 or 6 at random (an ambiguous word), every other one to exactly one target word
LEXICON = {5: 10, 6: 11, 7: 12, 8: 13, 9: 14, 10: 15, 11: 16, 12: 17}


def corpus(n: int, seed: int = 0) -> tuple[list[list[int]], list[list[int]]]:
    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(n):
        words = [4, rng.choice([5, 6, 7]), rng.choice([8, 9, 10]), 4, rng.choice([11, 12])]
        sources.append(words)
        target = [rng.choice([4, 5, 6]) if w == 4 else LEXICON[w] for w in words]
        rng.shuffle(target)  # word order differs: only co-occurrence tells the table anything
        targets.append(target)
    return sources, targets


def test_ibm_model_1_finds_each_words_translation():
    sources, targets = corpus(300)
    table = build_lexical_table(sources, targets, src_vocab=13, tgt_vocab=18, width=3)
    for source, target in LEXICON.items():
        assert table.translations[source, 0] == target, source
    assert set(table.translations[4].tolist()) == {4, 5, 6}  # the ambiguous word: its three translations
    assert (table.translations[:4] == -1).all()  # never seen as sources: no candidates
    # the frequency list: every target word seen, most frequent first (ties by id), specials never
    counts = np.bincount(np.concatenate(targets), minlength=18)
    assert table.frequent.tolist() == sorted({4, 5, 6, *LEXICON.values()}, key=lambda i: (-counts[i], i))
    assert table.info["pairs"] == 300 and table.info["model"] == "ibm1"


def test_a_link_budget_samples_pairs_and_keeps_every_frequency():
    sources, targets = corpus(300)
    full = build_lexical_table(sources, targets, src_vocab=13, tgt_vocab=18, width=3)
    small = build_lexical_table(sources, targets, src_vocab=13, tgt_vocab=18, width=3, max_links=6 * 5 * 50)
    assert small.info["pairs"] == 50 and small.info["of_pairs"] == 300
    assert small.frequent.tolist() == full.frequent.tolist()
    for source, target in LEXICON.items():
        assert small.translations[source, 0] == target


def test_table_file_round_trip_and_checks(tmp_path):
    sources, targets = corpus(50)
    table = build_lexical_table(sources, targets, src_vocab=13, tgt_vocab=18, width=3)
    path = tmp_path / "shortlist.safetensors"
    table.save(path)
    back = LexicalTable.load(path, src_vocab=13, tgt_vocab=18)
    assert np.array_equal(back.translations, table.translations) and np.array_equal(back.frequent, table.frequent)
    assert back.info == table.info
    with pytest.raises(CorruptBundle, match="13 source pieces"):
        LexicalTable.load(path, src_vocab=14, tgt_vocab=18)
    with pytest.raises(CorruptBundle, match="outside the model's 12"):
        LexicalTable.load(path, src_vocab=13, tgt_vocab=12)
    LexicalTable(table.translations.astype(np.int64), table.frequent).save(path)  # save writes int32 anyway
    LexicalTable.load(path, src_vocab=13, tgt_vocab=18)
    path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CorruptBundle, match="int32 tensor 'translations'"):
        LexicalTable.load(path, src_vocab=13, tgt_vocab=18)
    path.write_bytes(b"not safetensors")
    with pytest.raises(CorruptBundle):
        LexicalTable.load(path, src_vocab=13, tgt_vocab=18)


def test_each_sentence_gets_the_specials_the_frequent_words_and_its_own_candidates():
    sources, targets = corpus(300)
    table = build_lexical_table(sources, targets, src_vocab=13, tgt_vocab=18, width=3)
    shortlist = Shortlist(table, per_source=1, frequent=2)
    assert shortlist.mean_size == 0.0
    vocab = shortlist.vocab([[5, 8], [7, 9, 11, 12]])  # (2, V')
    assert vocab[:, :4].tolist() == [[0, 1, 2, 3]] * 2  # positions 0-3 are ids 0-3
    common = set(table.frequent[:2].tolist())
    assert set(vocab[0].tolist()) - {0, 1, 2, 3} == common | {10, 13}
    assert set(vocab[1].tolist()) - {0, 1, 2, 3} == common | {12, 14, 16, 17}
    assert vocab.shape[1] == 4 + len(common | {12, 14, 16, 17})  # row 0 is padded with PAD (0)
    assert shortlist.mean_size == (8 + len(common | {10, 13}) + len(common | {12, 14, 16, 17})) / 2
    assert Shortlist(table, per_source=50, frequent=0).per_source == 3  # no more than the table holds


def model(tie: bool = True, **kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=16, tgt_vocab_size=15, layers=2, embed_dim=8, hidden_dim=12, dropout=0.0)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, "tie_embeddings": tie, **kw})).eval()


def full_table(src_vocab: int = 16, tgt_vocab: int = 15) -> LexicalTable:
    """A table whose shortlist is the whole vocabulary: every target piece is 'frequent'."""
    return LexicalTable(np.full((src_vocab, 1), -1, dtype=np.int32), np.arange(4, tgt_vocab, dtype=np.int32))


SOURCES = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 4, 5, 6], [7]]


@pytest.mark.parametrize("mode", ["beam", "greedy", "nbest", "constrained"])
@pytest.mark.parametrize("tie,input_feeding", [(True, True), (False, False)])
def test_a_shortlist_of_the_whole_vocabulary_decodes_as_without_one(mode, tie, input_feeding):
    m = model(tie=tie, input_feeding=input_feeding)
    settings = {"beam": DecodeSettings(beam=4, length_penalty=0.6), "greedy": DecodeSettings(greedy=True),
                "nbest": DecodeSettings(beam=4, nbest=3),
                "constrained": DecodeSettings(beam=3, min_len=3, no_repeat_ngram=2, coverage_penalty=0.2,
                                              alignments=True)}[mode]
    shortlist = Shortlist(full_table(), per_source=1, frequent=100)
    assert shortlist.vocab(SOURCES)[0].tolist() == list(range(15))  # position == id: a PAD-free whole vocabulary
    with torch.no_grad():
        plain = decode(m, SOURCES, settings, "cpu")
        listed = decode(m, SOURCES, settings, "cpu", shortlist=shortlist)
    for a_list, b_list in zip(plain, listed):
        assert [h.tokens for h in a_list] == [h.tokens for h in b_list]
        for a, b in zip(a_list, b_list):
            assert a.score == pytest.approx(b.score, abs=1e-5)
            assert a.token_log_probs == pytest.approx(b.token_log_probs, abs=1e-5)
            if settings.alignments:
                torch.testing.assert_close(a.attention, b.attention)


def test_outputs_use_only_their_sentences_list_and_do_not_depend_on_the_batch():
    m = model()
    table = LexicalTable(np.array([[-1, -1]] * 4 + [[5 + i % 10, 6 + i % 9] for i in range(4, 16)], dtype=np.int32),
                         np.array([4], dtype=np.int32))
    shortlist = Shortlist(table, per_source=2, frequent=1)
    vocab = shortlist.vocab(SOURCES)
    for settings in (DecodeSettings(beam=3, nbest=3), DecodeSettings(greedy=True),
                     DecodeSettings(sample=True, temperature=2.0)):
        with torch.no_grad():
            together = decode(m, SOURCES, settings, "cpu", torch.Generator().manual_seed(1), shortlist)
        for row, hyps in zip(vocab.tolist(), together):
            allowed = set(row)  # PAD (0) and UNK (1) are listed at positions 0 and 1, as in the whole vocabulary
            assert all(set(h.tokens) <= allowed for h in hyps)
        with torch.no_grad():  # the restriction bites: without it, some output leaves its list
            plain = decode(m, SOURCES, settings, "cpu", torch.Generator().manual_seed(1))
        assert any(not set(h.tokens) <= set(row) for row, hyps in zip(vocab.tolist(), plain) for h in hyps)
        assert any(t >= 4 for hyps in together for h in hyps for t in h.tokens)
        if settings.sample:
            continue
        for source, hyps in zip(SOURCES, together):
            with torch.no_grad():
                alone = decode(m, [source], settings, "cpu", shortlist=shortlist)[0]
            assert [h.tokens for h in alone] == [h.tokens for h in hyps]
            assert [h.score for h in alone] == pytest.approx([h.score for h in hyps], abs=1e-5)


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_shortlist_in_other_number_formats_and_in_an_ensemble(precision):
    settings = DecodeSettings(beam=3)
    shortlist = Shortlist(full_table(), per_source=1, frequent=100)
    fast = for_inference(model(), precision, torch.device("cpu"))
    with torch.no_grad():
        plain = decode(fast, SOURCES, settings, "cpu")
        listed = decode(fast, SOURCES, settings, "cpu", shortlist=shortlist)
    # int8's output rows are dequantized to bf16 with a shortlist: close, not equal
    assert sum(a[0].tokens == b[0].tokens for a, b in zip(plain, listed)) >= len(SOURCES) - 1
    if precision == "int8":  # dequantized once for the model, not for every batch
        kept = fast.decoder._dequantized_output
        with torch.no_grad():
            assert decode(fast, SOURCES, settings, "cpu", shortlist=shortlist)[0][0].tokens == listed[0][0].tokens
        assert fast.decoder._dequantized_output is kept and kept[1].dtype == torch.bfloat16
    # an ensemble of a model with itself, over lists whose positions are not ids: the model's own outputs
    restricted = Shortlist(LexicalTable(np.array([[-1]] * 4 + [[5 + i % 10] for i in range(4, 16)], dtype=np.int32),
                                        np.array([4, 9], dtype=np.int32)), per_source=1, frequent=2)
    pair = Ensemble([model(), model()])
    with torch.no_grad():
        single = decode(model(), SOURCES, settings, "cpu", shortlist=restricted)
        both = decode(pair, SOURCES, settings, "cpu", shortlist=restricted)
    assert [h[0].tokens for h in single] == [h[0].tokens for h in both]
    assert [h[0].score for h in single] == pytest.approx([h[0].score for h in both], abs=1e-5)


def test_a_batch_too_big_for_its_lists_is_decoded_in_halves_with_the_same_result(monkeypatch):
    import rnntool.kinds.translation.translate as translate

    m, settings = model(), DecodeSettings(beam=3, nbest=2)
    shortlist = Shortlist(full_table(), per_source=1, frequent=100)
    batches = []
    plain_state = m.shortlist_state
    monkeypatch.setattr(m, "shortlist_state", lambda state, vocab: batches.append(len(vocab)) or plain_state(state, vocab))
    with torch.no_grad():
        whole = decode(m, SOURCES, settings, "cpu", shortlist=shortlist)
        monkeypatch.setattr(translate, "SHORTLIST_MAX_ELEMENTS", 15 * 8)  # one sentence's rows at a time
        halves = decode(m, SOURCES, settings, "cpu", shortlist=shortlist)
    assert batches == [4, 1, 1, 1, 1]
    assert [[h.tokens for h in hs] for hs in whole] == [[h.tokens for h in hs] for hs in halves]
    assert [h.score for hs in whole for h in hs] == pytest.approx([h.score for hs in halves for h in hs], abs=1e-5)
