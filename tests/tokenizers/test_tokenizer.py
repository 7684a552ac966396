"""rnntool.tokenizers.sentencepiece: exact round trips, fixed special ids, determinism, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rnntool.errors import BadInput, ConfigError, CorruptBundle, UsageError
from rnntool.tokenizers.sentencepiece import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TOKENIZER_FILE,
    UNK_ID,
    Tokenizer,
)
from rnntool.tokenizers.training import train_tokenizer

# Awkward text a tokenizer must give back unchanged (never seen in training).
AWKWARD = [
    "  two leading spaces",
    "trailing spaces   ",
    "multi     space\tand\ttabs\t",
    "",
    " ",
    "\t",
    "ünïcödé ①② 日本語 🙂 e\u0301 ﬁ",
    "x\u00a0y\u3000z\u2028w",
    "digits 1234567890 and CAPS",
    "a\x00b\x7f",
]

TRAIN_TEXT = [
    "the cat sat on the mat",
    "a dog  barked\tloudly at the cat",
    "",
    "ünïcödé text here",
    "numbers 12 345 6789",
] * 40


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("tok") / "train.txt"
    p.write_text("\n".join(TRAIN_TEXT) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def bpe(train_file) -> Tokenizer:
    return train_tokenizer([train_file], train_file.parent / "bpe.model", vocab_size=300)


def test_special_ids_are_fixed(bpe):
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert [bpe.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert bpe.has_rnntool_ids
    bpe.require_rnntool_ids()


@pytest.mark.parametrize("model_type,vocab", [("bpe", 300), ("unigram", 300), ("char", 300)])
def test_round_trip_is_exact_on_awkward_text(train_file, tmp_path, model_type, vocab):
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=vocab, model_type=model_type)
    for line in AWKWARD:
        assert tok.decode(tok.encode(line)) == line, (model_type, line)
        assert tok.decode_pieces(tok.encode_pieces(line)) == line, (model_type, line)
    assert tok.encode_batch(AWKWARD) == [tok.encode(s) for s in AWKWARD]
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_decode_ignores_pad_bos_eos(bpe):
    ids = bpe.encode("the cat")
    assert bpe.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == "the cat"


def test_decode_rejects_ids_out_of_range(bpe):
    with pytest.raises(BadInput, match=r"token id 300 is out of range.*0\.\.299"):
        bpe.decode([5, 300])
    with pytest.raises(BadInput):
        bpe.id_to_piece(-1)


def test_unknown_piece_maps_to_unk(bpe):
    assert bpe.piece_to_id("no-such-piece") == UNK_ID


def _train_in_subprocess(train_file: Path, out: Path, **settings) -> str:
    code = ("import sys; from rnntool.tokenizers.training import train_tokenizer; "
            f"print(train_tokenizer([sys.argv[1]], sys.argv[2], **{settings!r}).sha256)")
    done = subprocess.run([sys.executable, "-c", code, str(train_file), str(out)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_training_is_deterministic_across_processes(train_file, tmp_path):
    # sentencepiece's own line sampling ignores its seed: a fresh process drew another sample
    for model_type in ("bpe", "unigram"):
        settings = dict(vocab_size=300, model_type=model_type, sample_lines=150)
        a = train_tokenizer([train_file], tmp_path / "a.model", **settings)
        assert _train_in_subprocess(train_file, tmp_path / "b.model", **settings) == a.sha256, model_type
        assert _train_in_subprocess(train_file, tmp_path / "c.model", **settings) == a.sha256, model_type
        assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()


def test_stdin_is_read_once_even_when_sampling_reads_twice(train_file, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(train_file.read_bytes())))
    from_stdin = train_tokenizer(["-"], tmp_path / "s.model", vocab_size=300, sample_lines=150)
    from_file = train_tokenizer([train_file], tmp_path / "f.model", vocab_size=300, sample_lines=150)
    assert from_stdin.sha256 == from_file.sha256
    assert from_stdin.train_stats == from_file.train_stats


def test_sample_is_exactly_the_size_asked_and_follows_the_seed(tmp_path):
    from rnntool.tokenizers.training import _LineFeed

    corpus = tmp_path / "numbers.txt"
    corpus.write_text("".join(f"line {i}\n" for i in range(1000)) + "\n\n", encoding="utf-8")
    samples = {}
    for seed in (0, 0, 1):
        feed = _LineFeed([corpus], "strict", 1000, sample_lines=300, seed=seed)
        lines = list(feed)
        assert feed.sampled and feed.text_lines == 1000 and feed.lines == 1002
        assert len(lines) == len(set(lines)) == 300
        assert lines == sorted(lines, key=lambda t: int(t.split()[1]))  # input order kept
        assert list(feed) == lines  # the same sample on every pass
        samples.setdefault(seed, lines)
        assert samples[seed] == lines
    assert samples[0] != samples[1]
    assert len(list(_LineFeed([corpus], "strict", 1000, sample_lines=5000))) == 1000


def test_model_file_and_checksum(bpe, train_file):
    path = train_file.parent / "bpe.model"
    again = Tokenizer.load(path)
    assert again.sha256 == bpe.sha256 and again.vocab_size == 300 == bpe.vocab_size
    assert again.path == path
    assert bpe.train_stats["text_lines"] == 160 and bpe.train_stats["lines"] == 200


def test_vocab_too_large_names_the_largest(train_file, tmp_path):
    with pytest.raises(BadInput, match=r"vocabulary size 5000 is too large.*largest that works is (\d+)") as e:
        train_tokenizer([train_file], tmp_path / "t.model", vocab_size=5000)
    largest = int(__import__("re").search(r"largest that works is (\d+)", str(e.value)).group(1))
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=largest)  # and it does work
    assert tok.vocab_size == largest
    assert not (tmp_path / "x.model").exists()


def test_vocab_too_small_names_the_smallest(train_file, tmp_path):
    with pytest.raises(BadInput, match=r"vocabulary size 100 is too small.*smallest that works is (\d+)") as e:
        train_tokenizer([train_file], tmp_path / "t.model", vocab_size=100)
    smallest = int(__import__("re").search(r"smallest that works is (\d+)", str(e.value)).group(1))
    assert smallest > 256 + 4  # byte pieces + specials + characters
    assert train_tokenizer([train_file], tmp_path / "t.model", vocab_size=smallest).vocab_size == smallest
    assert not (tmp_path / "never.model").exists()


def test_small_vocab_without_byte_fallback(train_file, tmp_path):
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=60, byte_fallback=False)
    assert tok.vocab_size == 60
    with pytest.raises(BadInput, match="too small"):
        train_tokenizer([train_file], tmp_path / "t.model", vocab_size=3, model_type="word")


def test_word_model_has_no_byte_fallback(train_file, tmp_path):
    tok = train_tokenizer([train_file], tmp_path / "w.model", vocab_size=12, model_type="word")
    assert tok.decode(tok.encode("the cat")) == "the cat"
    with pytest.raises(ConfigError, match="byte fallback"):
        train_tokenizer([train_file], tmp_path / "w.model", vocab_size=20, model_type="word", byte_fallback=True)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"model_type": "wordpiece"}, "bpe, unigram, char, word"),
        ({"normalization": "nfd"}, "identity"),
        ({"character_coverage": 1.5}, "coverage"),
        ({"user_symbols": ["a b"]}, "whitespace"),
        ({"user_symbols": ["<s>"]}, "reserved"),
        ({"threads": 0}, "threads"),
        ({"sample_lines": 50}, "more than 100"),
    ],
)
def test_bad_settings_are_config_errors(train_file, tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        train_tokenizer([train_file], tmp_path / "t.model", **{"vocab_size": 300, **kw})
    assert not (tmp_path / "t.model").exists()


def test_user_symbols_are_never_split(train_file, tmp_path):
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=300, user_symbols=["<sep>", "@@"])
    assert "<sep>" in tok.encode_pieces("cat<sep>dog")
    assert tok.id_to_piece(4) == "<sep>" and tok.id_to_piece(5) == "@@"


def test_split_digits(train_file, tmp_path):
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=300, split_digits=True)
    pieces = tok.encode_pieces("6789")
    assert all(sum(c.isdigit() for c in p) <= 1 for p in pieces), pieces
    assert tok.decode(tok.encode("6789")) == "6789"


def test_nfkc_normalization_is_optional(train_file, tmp_path):
    tok = train_tokenizer([train_file], tmp_path / "t.model", vocab_size=300, normalization="nmt_nfkc")
    assert tok.decode(tok.encode("ﬁ  x")) == "fi x"  # normalized and squeezed: not a round trip


def test_invalid_utf8_names_file_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"fine line\nanother\nbroken \xff here\n")
    with pytest.raises(BadInput, match=r"bad\.txt:3: invalid UTF-8"):
        train_tokenizer([p], tmp_path / "t.model", vocab_size=300)
    assert not (tmp_path / "t.model").exists()
    tok = train_tokenizer([p], tmp_path / "t.model", vocab_size=280, on_bad_utf8="replace")
    assert tok.vocab_size == 280


def test_empty_inputs_are_bad_input(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        train_tokenizer([empty], tmp_path / "t.model", vocab_size=300)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n\n")
    with pytest.raises(BadInput, match="no text to train on"):
        train_tokenizer([blank], tmp_path / "t.model", vocab_size=300)
    with pytest.raises(BadInput, match="no such file"):
        train_tokenizer([tmp_path / "missing.txt"], tmp_path / "t.model", vocab_size=300)


def test_long_lines_are_skipped_with_a_warning(train_file, tmp_path):
    p = tmp_path / "long.txt"
    p.write_text(train_file.read_text() + "x" * 5000 + "\n", encoding="utf-8")
    warnings: list[str] = []
    tok = train_tokenizer([p], tmp_path / "t.model", vocab_size=300, max_line_bytes=1000, on_warning=warnings.append)
    assert tok.train_stats["skipped_long_lines"] == 1
    assert any("1 lines longer than 1000 bytes" in w for w in warnings)


def test_sampling_large_inputs(train_file, tmp_path):
    logs: list[str] = []
    tok = train_tokenizer([train_file, train_file], tmp_path / "t.model", vocab_size=300, sample_lines=150,
                          on_log=logs.append)
    assert tok.vocab_size == 300
    assert any("random sample of 150 of 320 lines" in m for m in logs)


def test_load_errors(tmp_path):
    with pytest.raises(BadInput, match="no such tokenizer file"):
        Tokenizer.load(tmp_path / "missing.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"this is not a protobuf \xff\xfe")
    with pytest.raises(CorruptBundle, match="not a SentencePiece model"):
        Tokenizer.load(garbage)
    with pytest.raises(BadInput, match="directory"):
        Tokenizer.load(tmp_path)


def test_from_bundle_single_and_translation(bpe, train_file, tmp_path):
    from rnntool.registry.store import write_bundle

    model = (train_file.parent / "bpe.model").read_bytes()
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / TOKENIZER_FILE).write_bytes(model)
    b = write_bundle(stage, tmp_path / "tokb", name="tokb", kind="tokenizer")
    assert Tokenizer.from_bundle(b).sha256 == bpe.sha256
    assert Tokenizer.from_bundle(tmp_path / "tokb").sha256 == bpe.sha256  # a plain directory works too

    other = train_tokenizer([train_file], tmp_path / "other.model", vocab_size=320)
    stage.mkdir(exist_ok=True)
    (stage / "tokenizer.src.model").write_bytes(model)
    (stage / "tokenizer.tgt.model").write_bytes((tmp_path / "other.model").read_bytes())
    t = write_bundle(stage, tmp_path / "mt", name="mt", kind="translation")
    assert Tokenizer.from_bundle(t, side="src").sha256 == bpe.sha256
    assert Tokenizer.from_bundle(t, side="tgt").sha256 == other.sha256
    with pytest.raises(UsageError, match="--side src or --side tgt"):
        Tokenizer.from_bundle(t)
    with pytest.raises(UsageError, match="'src' or 'tgt'"):
        Tokenizer.from_bundle(t, side="left")


def test_tokenizer_module_does_not_import_torch():
    code = "import sys, rnntool.tokenizers.sentencepiece; assert 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_subword_sampling_definitions(bpe, train_file, tmp_path):
    """BPE-dropout: rate 1 drops every merge (characters), the pieces always decode to the text;
    unigram l-best: alpha sharpens towards the best segmentation."""
    lines = [line for line in train_file.read_text(encoding="utf-8").splitlines() if line.strip()][:40]
    chars = bpe.sampler(1.0, seed=0).sample_batch(lines)
    for line, ids in zip(lines, chars):
        assert bpe.decode(ids) == bpe.decode(bpe.encode(line))
        assert all(len(bpe.id_to_piece(i).replace("\u2581", "_")) == 1 or bpe.id_to_piece(i).startswith("<0x")
                   for i in ids)
    some = bpe.sampler(0.3, seed=0).sample_batch(lines)
    assert some == bpe.sampler(0.3, seed=0).sample_batch(lines) != bpe.sampler(0.3, seed=1).sample_batch(lines)
    assert sum(map(len, bpe.encode_batch(lines))) < sum(map(len, some)) < sum(map(len, chars))
    uni = train_tokenizer([train_file], tmp_path / "uni.model", vocab_size=300, model_type="unigram")
    assert uni.is_unigram and not bpe.is_unigram
    best = uni.encode_batch(lines)
    def agreement(alpha):
        drawn = uni.sampler(alpha, seed=0).sample_batch(lines * 5)
        assert [uni.decode(ids) for ids in drawn] == [uni.decode(ids) for ids in best * 5]
        return sum(d == b for d, b in zip(drawn, best * 5)) / len(drawn)
    assert agreement(0.05) < agreement(1.0) < agreement(50.0) == 1.0
