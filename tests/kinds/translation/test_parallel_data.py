"""Parallel data: reading and checking pairs, length filtering, token-based bucketed batches."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.translation.data import ParallelData, read_parallel, read_tsv
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def random_data(n=500, seed=0) -> ParallelData:
    rng = random.Random(seed)
    src = [[rng.randrange(4, 50) for _ in range(rng.randint(1, 30))] for _ in range(n)]
    tgt = [[rng.randrange(4, 50) for _ in range(rng.randint(1, 30))] for _ in range(n)]
    return ParallelData(src, tgt)


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "a.en", [f"s{i}" for i in range(10)])
    tgt = write(tmp_path / "a.de", [f"t{i}" for i in range(11)])
    with pytest.raises(BadInput) as e:
        read_parallel(src, tgt)
    msg = str(e.value)
    assert f"{src} has 10 lines" in msg and f"{tgt} has 11" in msg and "\n" not in msg


def test_read_parallel_keeps_alignment_and_line_rules(tmp_path):
    src = tmp_path / "a.en"
    src.write_bytes(b"\xef\xbb\xbfone\r\n\ntwo\xe2\x80\xa8half\n")  # BOM, CRLF, empty line, U+2028 kept
    tgt = write(tmp_path / "a.de", ["eins", "", "zwei"])
    assert read_parallel(src, tgt) == (["one", "", "two\u2028half"], ["eins", "", "zwei"])
    bad = tmp_path / "bad.de"
    bad.write_bytes(b"eins\n\xff\nzwei\n")
    with pytest.raises(BadInput, match="bad.de:2: invalid UTF-8"):
        read_parallel(src, bad)


def test_read_tsv(tmp_path):
    path = write(tmp_path / "pairs.tsv", ["a b\tA B", "c\tC\tD", "\tempty source"])
    assert read_tsv(path) == (["a b", "c", ""], ["A B", "C\tD", "empty source"])
    write(path, ["a\tA", "no tab here"])
    with pytest.raises(BadInput, match=r"pairs.tsv:2: no tab"):
        read_tsv(path)


def test_from_lines_drops_long_and_empty_pairs_and_counts_them():
    encode = lambda lines: [[4 + len(w) for w in line.split()] for line in lines]  # noqa: E731
    src = ["a b", "a b c d e", "", "x", "p q"]
    tgt = ["A", "B", "C", "", "Q R S T"]
    data = ParallelData.from_lines(src, tgt, encode, encode, max_len=3)
    assert len(data) == 1 and data.dropped_long == 2 and data.dropped_empty == 2
    assert data.source(0).tolist() == [5, 5] and data.target(0).tolist() == [5]
    kept = ParallelData.from_lines(src, tgt, encode, encode, keep_all=True)  # validation: every reference
    assert len(kept) == 5
    with pytest.raises(BadInput, match="no usable sentence pairs"):
        ParallelData.from_lines(["a b c"], ["A B C"], encode, encode, max_len=2)


def test_collate_follows_the_sequence_conventions():
    data = ParallelData([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]])
    b = data.collate([0, 1])
    assert b.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert b.src_lengths.tolist() == [4, 2]
    assert b.tgt_in.tolist() == [[BOS_ID, 9, 10, PAD_ID], [BOS_ID, 11, 12, 13]]
    assert b.tgt_out.tolist() == [[9, 10, EOS_ID, PAD_ID], [11, 12, 13, EOS_ID]]
    assert b.n_tokens == 7 and b.n_src_tokens == 6


def test_batches_respect_the_token_budget_and_cover_every_pair_once():
    data = random_data()
    for budget in (64, 500, 2000):
        batches = data.epoch_batches(epoch=0, batch_tokens=budget, seed=1)
        seen = np.concatenate(batches)
        assert sorted(seen.tolist()) == list(range(len(data)))
        for idx in batches:
            b = data.collate(idx)
            padded = len(idx) * max(b.src.shape[1], b.tgt_in.shape[1])
            assert padded <= budget or len(idx) == 1


def test_batches_are_length_bucketed():
    rng = random.Random(0)
    src = [[7] * rng.randint(1, 30) for _ in range(2000)]
    tgt = [[8] * max(1, len(s) + rng.randint(-3, 3)) for s in src]  # lengths correlate, as in translations
    data = ParallelData(src, tgt)
    batches = data.epoch_batches(epoch=0, batch_tokens=1000, seed=1)
    assert all(np.ptp(data.src_lens[idx]) == 0 for idx in batches)  # no source padding at all
    targets = [data.collate(idx).tgt_out for idx in batches]
    assert sum(int((t != PAD_ID).sum()) for t in targets) / sum(t.numel() for t in targets) > 0.85


def test_epochs_are_shuffled_but_reproducible():
    data = random_data()
    first = data.epoch_batches(epoch=0, batch_tokens=1000, seed=1)
    again = data.epoch_batches(epoch=0, batch_tokens=1000, seed=1)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]  # resume replays the same batches
    second = data.epoch_batches(epoch=1, batch_tokens=1000, seed=1)
    other_seed = data.epoch_batches(epoch=0, batch_tokens=1000, seed=2)
    assert [b.tolist() for b in first] != [b.tolist() for b in second]
    assert [b.tolist() for b in first] != [b.tolist() for b in other_seed]
    lengths_in_order = [int(data.src_lens[b].max()) for b in first]
    assert lengths_in_order != sorted(lengths_in_order)  # batch order is shuffled, not short-to-long


def test_bad_budget_is_a_usage_error():
    with pytest.raises(UsageError, match="--batch-tokens"):
        random_data(10).batches(0)


def test_task_shards_batches_evenly_across_ranks():
    import torch

    from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig
    from rnntool.kinds.translation.task import TranslationTask

    data = random_data()
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=50, tgt_vocab_size=50, layers=1, embed_dim=8, hidden_dim=8))
    shards = []
    for rank in range(3):
        task = TranslationTask(model, data, batch_tokens=300, seed=1)
        task.set_shard(rank, 3)
        shards.append([b.indices.tolist() for b in task.batches(epoch=0)])
        assert task.num_batches(0) == len(shards[-1])
    assert len({len(s) for s in shards}) == 1  # every rank steps the same number of times
    flat = [tuple(b) for s in shards for b in s]
    assert len(flat) == len(set(flat))  # no batch on two ranks
    batch = next(TranslationTask(model, data, batch_tokens=300, seed=1).batches(0)).to("cpu")
    assert isinstance(batch.src, torch.Tensor) and batch.src.dtype == torch.long


def test_too_few_batches_for_the_processes_is_an_error():
    from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig
    from rnntool.kinds.translation.task import TranslationTask

    data = ParallelData([[5, 6]], [[7]])
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=10, layers=1, embed_dim=4, hidden_dim=4))
    task = TranslationTask(model, data, batch_tokens=100, seed=1)
    with pytest.raises(BadInput, match="fewer batches than the 2 processes"):
        task.set_shard(0, 2)


def test_sampled_segmentations_repeat_per_epoch_and_keep_the_text(tmp_path):
    from rnntool.kinds.translation.data import SampledSegmentations
    from rnntool.tokenizers.training import train_tokenizer

    rng = random.Random(0)
    words = ["river", "riverbank", "green", "greenhouse", "house", "bird", "birdhouse", "tree", "small"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 6))) for _ in range(200)]
    (tmp_path / "text").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    tok = train_tokenizer([tmp_path / "text"], tmp_path / "tokenizer.model", vocab_size=300)
    kept = ParallelData.from_lines(lines, lines, tok.encode_batch, tok.encode_batch, max_len=100).kept
    assert kept == list(range(200))
    sampled = SampledSegmentations(lines, lines, kept, lambda ls, seed: tok.sample_batch(ls, 0.3, seed),
                                   lambda ls, seed: tok.sample_batch(ls, 0.3, seed), seed=1)
    first, again, second = sampled.for_epoch(0), sampled.for_epoch(0), sampled.for_epoch(1)
    pieces = lambda data: [data.source(i).tolist() for i in range(len(data))]  # noqa: E731
    assert pieces(first) == pieces(again)  # a resumed run sees the same pieces
    assert pieces(first) != pieces(second)  # a new epoch, a new draw
    assert pieces(first) != tok.encode_batch(lines)  # not the deterministic segmentation
    assert first.src_tokens > sum(len(ids) + 1 for ids in tok.encode_batch(lines))  # BPE-dropout: more pieces
    for data in (first, second):
        assert [tok.decode(data.target(i).tolist()) for i in range(len(data))] == lines  # the same text
