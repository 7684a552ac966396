"""Language-model scoring: perplexity, per-line scores, bits per character, and the signature.

Definitions (the same in ``evaluate perplexity``, training's validation and the bundle's metrics):

- Every line is scored with its ``<eos>`` (``eos:yes``): a line of n tokens counts n + 1 tokens.
- ``nll`` is the summed negative log-likelihood in nats; ``nats_per_token = nll / tokens`` and
  ``perplexity = exp(nats_per_token)``.
- ``characters`` counts every line's characters (Unicode code points) plus one newline per line;
  ``bits_per_character = nll / ln 2 / characters`` and ``nats_per_character = nll / characters``.
  Both depend only on the text, so models with different tokenizers compare fairly.
- **sentence** mode: each line alone, ``<bos> … <eos>``, from a zero state.
- **stream** mode: the lines as one text joined by ``<eos>``, read left to right with the state
  carried over the whole input (the first line is read after an ``<eos>``, as in training). The
  number does not depend on how the input is batched.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnntool import __version__
from rnntool.kinds.lm.model import RNNLM, State
from rnntool.kinds.lm.data import Corpus, check_mode, sentence_batch
from rnntool.layers.weights import model_device
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID

STREAM_SEGMENT = 512  # time steps per forward pass in stream mode (bounds the (T, V) logits)
LOGITS_BUDGET = 1 << 25  # logits (floats) per forward pass in sentence mode: 128 MB
READ_AHEAD_BATCHES = 16  # lines read ahead (and sorted by length) = this many batches


def signature(tokenizer_sha256: str, mode: str, *, log10: bool = False) -> str:
    """Every setting that affects the numbers, sacrebleu-style (``log:10``: log-probs printed in base 10)."""
    return f"tok:{tokenizer_sha256[:8]}|mode:{mode}|eos:yes|log:{'10' if log10 else 'e'}|version:{__version__}"


@dataclass
class Totals:
    """Running sums over scored lines; ``summary()`` gives the reported figures."""

    lines: int = 0
    tokens: int = 0
    characters: int = 0
    nll: float = 0.0

    def add(self, nll: float, tokens: int, characters: int, lines: int = 1) -> None:
        self.lines += lines
        self.tokens += tokens
        self.characters += characters
        self.nll += nll

    def summary(self) -> dict:
        per_token = self.nll / self.tokens if self.tokens else float("nan")
        per_char = self.nll / self.characters if self.characters else float("nan")
        return {
            "lines": self.lines,
            "tokens": self.tokens,
            "characters": self.characters,
            "nll": self.nll,
            "nats_per_token": per_token,
            "perplexity": math.exp(per_token) if per_token < 700 else float("inf"),
            "bits_per_character": per_char / math.log(2),
            "nats_per_character": per_char,
        }


class Scorer:
    """Scores chunks of lines (token ids, each ending with <eos>) in order; stream mode carries
    the state from one chunk to the next. ``score(chunk)`` returns the NLL (nats) of every line,
    ``token_nll(chunk)`` every line's NLL per token."""

    def __init__(self, model: RNNLM, mode: str, *, batch_size: int = 64) -> None:
        self.model = model
        self.mode = check_mode(mode)
        self.batch_size = batch_size
        self.device = model_device(model)
        self.state: State | None = None

    def score(self, lines: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([nll.sum() for nll in self.token_nll(lines)]) if lines else np.zeros(0)

    @torch.no_grad()
    def token_nll(self, lines: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each line's NLL (nats) per token, <eos> last, in input order."""
        if not lines:
            return []
        if self.mode == "sentence":
            return self._score_sentences(lines)
        return self._score_stream(lines)

    def _token_nll(self, inputs: np.ndarray, targets: np.ndarray, state: State | None):
        x = torch.from_numpy(inputs).to(self.device)  # (B, T)
        y = torch.from_numpy(targets).to(self.device)  # (B, T)
        logits, state = self.model(x, state)  # (B, T, V)
        nll = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=PAD_ID, reduction="none")  # (B, T)
        return nll.double().cpu().numpy(), state

    def _score_sentences(self, lines: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0)] * len(lines)
        lengths = np.array([len(ids) for ids in lines])
        order = np.argsort(lengths, kind="stable")
        max_cells = max(1, LOGITS_BUDGET // self.model.config.vocab_size)  # rows x width per forward pass
        i = 0
        while i < len(order):
            n = 1  # as many rows as fit: --batch-size, and the logits of the longest within budget
            while n < self.batch_size and i + n < len(order) and (n + 1) * lengths[order[i + n]] <= max_cells:
                n += 1
            rows = order[i : i + n]
            if n == 1 and lengths[rows[0]] > max_cells:  # one very long line: in segments
                ids = lines[rows[0]].astype(np.int64)
                out[rows[0]], _ = self._segments(np.concatenate([[BOS_ID], ids[:-1]]), ids, None)
            else:
                batch = sentence_batch([lines[r] for r in rows])
                nll, _ = self._token_nll(batch.inputs, batch.targets, None)  # (n, T), padding scored 0
                for j, r in enumerate(rows):
                    out[r] = nll[j, : lengths[r]]
            i += n
        return out

    def _segments(self, inputs: np.ndarray, targets: np.ndarray, state: State | None):
        """One sequence (T,) in segments of STREAM_SEGMENT steps, state carried: NLL (T,), state."""
        token_nll = np.empty(len(targets))
        for t in range(0, len(targets), STREAM_SEGMENT):
            nll, state = self._token_nll(inputs[None, t : t + STREAM_SEGMENT], targets[None, t : t + STREAM_SEGMENT],
                                         state)
            token_nll[t : t + STREAM_SEGMENT] = nll[0]
        return token_nll, state

    def _score_stream(self, lines: Sequence[np.ndarray]) -> list[np.ndarray]:
        targets = np.concatenate(lines).astype(np.int64)  # every line ends with <eos>
        inputs = np.concatenate([[EOS_ID], targets[:-1]])  # a chunk always follows an <eos>
        token_nll, self.state = self._segments(inputs, targets, self.state)
        return np.split(token_nll, np.cumsum([len(ids) for ids in lines[:-1]]))


def score_corpus(model: RNNLM, corpus: Corpus, mode: str, *, batch_size: int = 64, chunk_lines: int = 4096) -> dict:
    """Totals (``Totals.summary()``) of a memory-mapped corpus, e.g. training's validation data."""
    scorer = Scorer(model, mode, batch_size=batch_size)
    totals = Totals()
    for first in range(0, corpus.n_lines, chunk_lines):
        stop = min(first + chunk_lines, corpus.n_lines)
        bounds = corpus.line_bounds(first, stop)
        ids = corpus.ids(int(bounds[0]), int(bounds[-1]))
        lines = np.split(ids, bounds[1:-1] - bounds[0])
        nll = scorer.score(lines)
        totals.add(float(nll.sum()), int(bounds[-1] - bounds[0]), corpus.chars_in(first, stop), stop - first)
    return totals.summary()


@dataclass
class LineScore:
    logprob: float  # natural log-probability of the line, <eos> included
    tokens: int  # tokens scored, <eos> included
    characters: int  # characters of the line plus its newline
    pieces: list[str] | None = None  # with per_token: the line's pieces, then "</s>"
    token_logprobs: list[float] | None = None  # with per_token: one natural log-prob per piece

    @property
    def perplexity(self) -> float:
        return math.exp(min(-self.logprob / self.tokens, 700.0))


def score_lines(
    model: RNNLM,
    tokenizer,
    lines: Iterable[str],
    mode: str,
    *,
    totals: Totals | None = None,
    batch_size: int = 64,
    per_token: bool = False,
) -> Iterator[LineScore]:
    """One ``LineScore`` per input line, in input order, as soon as each chunk of input is scored.
    Lines are read ahead in chunks (see ``read_ahead_chunks``); ``totals`` accumulates the sums.
    ``per_token``: each LineScore also holds its pieces and their log-probs (<eos> last)."""
    scorer = Scorer(model, mode, batch_size=batch_size)
    for chunk in read_ahead_chunks(lines, READ_AHEAD_BATCHES * batch_size):
        ids = [np.append(np.asarray(x, dtype=np.int64), EOS_ID) for x in tokenizer.encode_batch(chunk)]
        for line, nll, x in zip(chunk, scorer.token_nll(ids), ids):
            score = LineScore(-float(nll.sum()), len(x), len(line) + 1)
            if per_token:
                score.pieces = [tokenizer.id_to_piece(int(t)) for t in x[:-1]] + ["</s>"]
                score.token_logprobs = [-float(v) for v in nll]
            if totals is not None:
                totals.add(-score.logprob, score.tokens, score.characters)
            yield score


def read_ahead_chunks(lines: Iterable[str], max_lines: int) -> Iterator[list[str]]:
    """Group lines into chunks of up to ``max_lines`` without waiting for more input than has
    arrived: a reader thread fills a queue and each chunk takes what is there (at least one line).
    Batched scoring for files and full pipes, line-at-a-time latency for interactive input."""
    pending: queue.Queue = queue.Queue(maxsize=4 * max_lines)
    done = object()

    def reader() -> None:
        try:
            for line in lines:
                pending.put(line)
            pending.put(done)
        except BaseException as e:  # e.g. BadInput for invalid UTF-8: re-raised in the caller
            pending.put(e)

    threading.Thread(target=reader, daemon=True, name="rnntool-reader").start()
    while True:
        item = pending.get()
        chunk: list[str] = []
        while True:
            if item is done or isinstance(item, BaseException):
                if chunk:
                    yield chunk
                if item is done:
                    return
                raise item
            chunk.append(item)
            if len(chunk) == max_lines:
                break
            try:
                item = pending.get_nowait()
            except queue.Empty:
                break
        yield chunk
