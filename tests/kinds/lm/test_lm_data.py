"""LM data: the token cache (a hit on the second run, line/char tables) and both batch modes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rnntool.errors import BadInput
from rnntool.kinds.lm.data import (
    EOS_ID,
    PAD_ID,
    SentenceBatches,
    StreamBatches,
    build_token_cache,
    sentence_batch,
    token_dtype,
)


class CharTokenizer:
    """Ids 4.. for the letters a-z; 1 (unk) for anything else."""

    vocab_size = 30

    def __init__(self, sha256: str = "char-tokenizer") -> None:
        self.sha256 = sha256

    def encode_batch(self, lines):
        return [[4 + ord(c) - 97 if "a" <= c <= "z" else 1 for c in line] for line in lines]


def cache(tmp_path, text: str, **kw):
    p = tmp_path / "data.txt"
    p.write_text(text, encoding="utf-8")
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    return build_token_cache([p], [sha], CharTokenizer(), tmp_path / "cache", **kw)


def test_cache_layout_and_hit(tmp_path):
    corpus, hit = cache(tmp_path, "ab\n\ncde\n")
    assert not hit
    assert corpus.n_lines == 3 and corpus.n_chars == 8
    assert corpus.ids(0, corpus.n_tokens).tolist() == [4, 5, EOS_ID, EOS_ID, 6, 7, 8, EOS_ID]
    assert corpus.tokens.array.dtype == np.uint16
    again, hit = cache(tmp_path, "ab\n\ncde\n")
    assert hit and again.ids(0, 8).tolist() == corpus.ids(0, 8).tolist()
    assert len(list((tmp_path / "cache" / "lm-tokens").iterdir())) == 1
    # another tokenizer fingerprint is another cache entry
    p = tmp_path / "data.txt"
    _, hit = build_token_cache([p], [hashlib.sha256(p.read_bytes()).hexdigest()], CharTokenizer("other"),
                               tmp_path / "cache")
    assert not hit


def test_token_dtype_widens_for_large_vocabularies():
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.int32


def test_split_last_fraction_takes_whole_lines_from_the_end(tmp_path):
    corpus, _ = cache(tmp_path, "".join(f"{c * 3}\n" for c in "abcdefghij"))
    train, valid = corpus.split_last(0.2)
    assert (train.n_lines, valid.n_lines) == (8, 2)
    assert valid.ids(0, valid.n_tokens).tolist() == [12, 12, 12, EOS_ID, 13, 13, 13, EOS_ID]
    assert valid.n_chars == 8 and train.n_chars == 32
    with pytest.raises(BadInput, match="too few"):
        corpus.lines(0, 1).split_last(0.5)


def test_stream_batches_are_contiguous_streams_with_shifted_targets(tmp_path):
    corpus, _ = cache(tmp_path, "abcdefghijklmnopqrstuvw\n")  # 24 tokens with the <eos>
    batches = StreamBatches(corpus, batch_size=4, bptt=2)
    assert batches.stream_len == 6 and len(batches) == 3
    text = np.concatenate([[EOS_ID], corpus.ids(0, 24)])  # the text is read after an <eos>
    b0 = batches.batch(0)
    assert b0.inputs.tolist() == [text[s : s + 2].tolist() for s in (0, 6, 12, 18)]
    assert b0.targets.tolist() == [text[s + 1 : s + 3].tolist() for s in (0, 6, 12, 18)]
    last = batches.batch(2)
    assert last.inputs.shape == (4, 1)  # the remainder segment is shorter
    # together the segments cover every stream once
    rows = np.concatenate([b.inputs for b in batches], axis=1)
    assert rows.tolist() == [text[s : s + 5].tolist() for s in (0, 6, 12, 18)]


def test_stream_batches_give_each_rank_its_own_streams(tmp_path):
    corpus, _ = cache(tmp_path, "abcdefghijklmnopqrstuvw\n")
    r0 = StreamBatches(corpus, batch_size=2, bptt=2, rank=0, world_size=2).batch(0)
    r1 = StreamBatches(corpus, batch_size=2, bptt=2, rank=1, world_size=2).batch(0)
    both = StreamBatches(corpus, batch_size=4, bptt=2).batch(0)
    assert np.concatenate([r0.inputs, r1.inputs]).tolist() == both.inputs.tolist()


def test_stream_batches_reject_too_little_data(tmp_path):
    corpus, _ = cache(tmp_path, "ab\n")
    with pytest.raises(BadInput, match="lower --batch-size"):
        StreamBatches(corpus, batch_size=8, bptt=4)


def test_sentence_batch_pads_and_shifts():
    b = sentence_batch([np.array([7, 8, EOS_ID]), np.array([EOS_ID])])
    assert b.inputs.tolist() == [[2, 7, 8], [2, PAD_ID, PAD_ID]]
    assert b.targets.tolist() == [[7, 8, EOS_ID], [EOS_ID, PAD_ID, PAD_ID]]
    assert b.n_targets == 4


def test_sentence_batches_cover_every_line_once_grouped_by_length(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["a" * int(n) for n in rng.integers(0, 12, size=50)]
    corpus, _ = cache(tmp_path, "\n".join(lines) + "\n")
    batches = SentenceBatches(corpus, batch_size=4, seed=3)
    groups = list(batches.line_groups(epoch=0))
    seen = np.concatenate(groups)
    assert sorted(seen.tolist()) == list(range(50)) and len(batches) == len(groups) == 13
    # lines are sorted by length within a pool: a full batch spans few distinct lengths
    for g in groups:
        lengths = [len(lines[i]) for i in g]
        assert max(lengths) - min(lengths) <= 3
    # deterministic per (seed, epoch); another epoch is another order
    assert [g.tolist() for g in batches.line_groups(0)] == [g.tolist() for g in groups]
    assert [g.tolist() for g in batches.line_groups(1)] != [g.tolist() for g in groups]
    first = next(batches.epoch(0))
    assert first.targets.shape[0] == len(groups[0])
    resumed = next(batches.epoch(0, start=5))
    assert resumed.inputs.tolist() == batches.batch(groups[5]).inputs.tolist()


def test_sentence_batches_split_between_ranks(tmp_path):
    corpus, _ = cache(tmp_path, "\n".join("a" * (i % 5) for i in range(30)) + "\n")
    r0 = list(SentenceBatches(corpus, 4, seed=1, rank=0, world_size=2).line_groups(0))
    r1 = list(SentenceBatches(corpus, 4, seed=1, rank=1, world_size=2).line_groups(0))
    assert len(r0) == len(r1) == 4  # 8 batches of 30 lines, split evenly
    assert not set(np.concatenate(r0).tolist()) & set(np.concatenate(r1).tolist())


def test_real_tokenizer_cache(tmp_path, corpus):
    from rnntool.textio import fingerprint_file
    from rnntool.tokenizers.training import train_tokenizer

    tok = train_tokenizer([corpus], tmp_path / "t.model", vocab_size=300)
    tokens, _ = build_token_cache([corpus], [fingerprint_file(corpus)["sha256"]], tok, tmp_path / "cache")
    lines = corpus.read_text().splitlines()
    assert tokens.n_lines == len(lines)
    assert tokens.n_chars == sum(len(line) + 1 for line in lines)
    start, end = tokens.line_bounds(7, 8)
    assert tok.decode(tokens.ids(int(start), int(end) - 1)) == lines[7]
