"""Sequence tagging as a task for the one training loop, and the vocabularies a tagger reads with.

    vocab = Vocabulary.build(train_sentences, min_count=2, lowercase=False)
    data = vocab.encode(sentences)                     # ids, character ids and tag ids per sentence
    task = TaggerTask(model, data, valid_data, vocab, batch_size=32, seed=1)

The loss is summed over tokens (per-token cross-entropy, or the CRF's sentence NLL) and the loop
divides by the number of tokens. Validation reports loss, token accuracy and, for BIO-style tags,
span F1 (rnntool/kinds/tagger/spans.py).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from rnntool.runtime import to_device
from rnntool.kinds.tagger.model import PAD, UNK, RNNTagger
from rnntool.training.batching import length_batches

MAX_WORD_CHARS = 30  # characters of a word the character encoder reads
EVAL_BATCH_SIZE = 64


def bio_scheme(tags: Sequence[str]) -> str | None:
    """"iobes" / "iob2" when the tags are BIO-style (B-X, I-X, O, maybe E-X/S-X), else None (UPOS...)."""
    prefixes = {t.split("-", 1)[0] for t in tags if t != "O"}
    if not prefixes or not all("-" in t for t in tags if t != "O"):
        return None
    if prefixes <= {"B", "I"}:
        return "iob2"
    return "iobes" if prefixes <= {"B", "I", "E", "S"} else None


@dataclass
class Vocabulary:
    words: list[str]  # id = index + 2 (0 padding, 1 unknown)
    chars: list[str]  # the same for characters
    tags: list[str]  # id = index
    lowercase: bool = False

    @classmethod
    def build(cls, sentences, *, min_count: int = 1, lowercase: bool = False) -> "Vocabulary":
        words = collections.Counter(w.lower() if lowercase else w for s in sentences for w in s.tokens)
        chars = collections.Counter(c for s in sentences for w in s.tokens for c in w[:MAX_WORD_CHARS])
        tags = sorted({t for s in sentences for t in s.tags})
        return cls(sorted(w for w, n in words.items() if n >= min_count), sorted(chars), tags, lowercase)

    def to_dict(self) -> dict:
        return {"words": self.words, "chars": self.chars, "tags": self.tags, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(list(d["words"]), list(d["chars"]), list(d["tags"]), bool(d.get("lowercase", False)))

    def __post_init__(self) -> None:
        self._word_ids = {w: i + 2 for i, w in enumerate(self.words)}
        self._char_ids = {c: i + 2 for i, c in enumerate(self.chars)}
        self._tag_ids = {t: i for i, t in enumerate(self.tags)}

    @property
    def word_vocab_size(self) -> int:
        return len(self.words) + 2

    @property
    def char_vocab_size(self) -> int:
        return len(self.chars) + 2

    def word_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self._word_ids.get(w.lower() if self.lowercase else w, UNK) for w in tokens]

    def char_ids(self, tokens: Sequence[str]) -> list[list[int]]:
        return [[self._char_ids.get(c, UNK) for c in w[:MAX_WORD_CHARS]] or [UNK] for w in tokens]

    def tag_ids(self, tags: Sequence[str]) -> list[int]:
        return [self._tag_ids[t] for t in tags]

    def unknown_words(self, tokens: Sequence[str]) -> int:
        return sum(i == UNK for i in self.word_ids(tokens))


def sentence_batch(vocab: Vocabulary, sentences: Sequence[Sequence[str]], device
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token lists (each non-empty) -> words (B, T), chars (B, T, W), lengths (B,)."""
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
    t = int(lengths.max())
    chars = [vocab.char_ids(s) for s in sentences]
    w = max(len(c) for cs in chars for c in cs)
    words = torch.full((len(sentences), t), PAD, dtype=torch.long)
    char_tensor = torch.full((len(sentences), t, w), PAD, dtype=torch.long)
    for row, (tokens, cs) in enumerate(zip(sentences, chars)):
        words[row, : len(tokens)] = torch.tensor(vocab.word_ids(tokens), dtype=torch.long)
        for col, c in enumerate(cs):
            char_tensor[row, col, : len(c)] = torch.tensor(c, dtype=torch.long)
    return to_device(words, device), to_device(char_tensor, device), to_device(lengths, device)


def length_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """lengths (B,) -> mask (B, T) of real tokens."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def tagged_batch(vocab: Vocabulary, sentences, device):
    """Tagged sentences -> words (B, T), chars (B, T, W), lengths (B,), tag ids (B, T)."""
    words, chars, lengths = sentence_batch(vocab, [s.tokens for s in sentences], device)
    tags = torch.zeros_like(words)
    for row, s in enumerate(sentences):
        tags[row, : len(s.tokens)] = torch.tensor(vocab.tag_ids(s.tags), dtype=torch.long)
    return words, chars, lengths, tags


class TaggerBatch:
    """Rows of the training data not turned into tensors yet."""

    def __init__(self, task: "TaggerTask", rows: list[int]) -> None:
        self.task, self.rows = task, rows

    def to(self, device):
        return tagged_batch(self.task.vocab, [self.task.train_data[r] for r in self.rows], device)


def tag_sentences(model: RNNTagger, vocab: Vocabulary, sentences: Sequence[Sequence[str]],
                  batch_size: int = EVAL_BATCH_SIZE) -> tuple[list[list[str]], list[list[float]]]:
    """Predicted tags and their probabilities for token lists (batched by length; input order kept;
    an empty sentence gets no tags). The caller sets eval mode and the grad mode."""
    from rnntool.layers.weights import model_device

    device = model_device(model)
    tags: list[list[str]] = [[] for _ in sentences]
    probs: list[list[float]] = [[] for _ in sentences]
    order = sorted((i for i, s in enumerate(sentences) if s), key=lambda i: len(sentences[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        words, chars, lengths = sentence_batch(vocab, [sentences[i] for i in rows], device)
        emissions = model(words, chars, lengths)  # (B, T, K)
        paths, chosen = model.decode(emissions, length_mask(lengths, words.size(1)))
        for i, path, p in zip(rows, paths, chosen):
            tags[i] = [vocab.tags[k] for k in path]
            probs[i] = p
    return tags, probs


class TaggerTask:
    """The TrainTask protocol of rnntool.training.trainer for an ``RNNTagger``."""

    reports_perplexity = False  # a tag distribution per token: its exp(loss) means nothing to a user

    def __init__(self, model: RNNTagger, train_data, valid_data, vocab: Vocabulary, *, batch_size: int, seed: int,
                 scheme: str | None) -> None:
        self.model, self.train_data, self.valid_data, self.vocab = model, train_data, valid_data, vocab
        self.batch_size, self.seed, self.scheme = batch_size, seed, scheme
        self.set_shard(0, 1)

    @property
    def chance_loss(self) -> float:
        return math.log(len(self.vocab.tags))  # per token (a CRF's sentence NLLs are divided by tokens too)

    def set_shard(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size

    def num_batches(self, epoch: int) -> int:
        return math.ceil(len(self.train_data) / self.batch_size) // self.world_size

    def batches(self, epoch: int) -> Iterator[TaggerBatch]:
        batches = length_batches([len(s.tokens) for s in self.train_data], self.batch_size, self.seed + epoch)
        usable = len(batches) - len(batches) % self.world_size
        for rows in batches[self.rank:usable:self.world_size]:
            yield TaggerBatch(self, rows)

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        words, chars, lengths, tags = batch
        emissions = model(words, chars, lengths)  # (B, T, K)
        inner = getattr(model, "module", model)  # the bare tagger under DDP
        return inner.loss_sum(emissions, tags, length_mask(lengths, words.size(1))), int(lengths.sum())

    def evaluate(self, model: RNNTagger) -> dict[str, float]:
        from rnntool.kinds.tagger.spans import span_report

        from rnntool.layers.weights import model_device

        sents = [s for s in self.valid_data if s.tokens]
        loss, tokens = 0.0, 0
        for start in range(0, len(sents), EVAL_BATCH_SIZE):
            words, chars, lengths, tags = tagged_batch(self.vocab, sents[start:start + EVAL_BATCH_SIZE],
                                                       model_device(model))
            loss += float(model.loss_sum(model(words, chars, lengths), tags, length_mask(lengths, words.size(1))))
            tokens += int(lengths.sum())
        pred, _ = tag_sentences(model, self.vocab, [s.tokens for s in sents])
        gold = [list(s.tags) for s in sents]
        correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
        metrics = {"loss": loss / max(tokens, 1), "accuracy": correct / max(tokens, 1)}
        if self.scheme is not None:
            metrics["span_f1"] = span_report(gold, pred, scheme=self.scheme, samples=0)["f1"]
        return metrics

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


__all__ = ["TaggerBatch", "TaggerTask", "Vocabulary", "bio_scheme", "length_mask", "sentence_batch",
           "tag_sentences", "tagged_batch"]
