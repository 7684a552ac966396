"""Greedy decoding, sampling and batched beam search over any *step model*.

A step model (the language model, the translation decoder) implements::

    def step(self, tokens: LongTensor, state) -> tuple[Tensor, State, Tensor | None]:
        '''tokens (N,) -> log-probs (N, V), new state, attention weights (N, S) or None'''
    def reorder_state(self, state, index: LongTensor) -> State:
        '''rows of the new state = rows ``index`` of ``state`` (select / repeat rows)'''
    def repeat_state(self, state, times: int) -> State:   # optional
        '''each row ``times`` times in a row: beam search's K beams per input (without it, beam search
        calls ``reorder_state`` with each row's index repeated). Afterwards beam search
        only reorders beams within their input and drops whole inputs, so a model may keep what is the
        same for all beams (the translation model's encoder memory) once per input.'''

Every function starts from a ``state`` with ``batch_size`` rows (the translation model's
``encode(src)``, or the LM's state after reading a prompt) and a first input token per row
(``bos``: BOS for translation, the last prompt token for an LM).

Lengths, the same everywhere:

- a *step* emits one token; ``max_len`` caps the number of steps, EOS included. A hypothesis
  either ends with EOS (``finished=True``, at most ``max_len - 1`` tokens besides EOS) or is cut
  at ``max_len`` tokens (``finished=False``).
- ``min_len``: EOS is not allowed before ``min_len`` tokens have been emitted.
- ``Hypothesis.token_log_probs`` / ``attention`` have one entry per step: one per token, then one
  for EOS when the hypothesis is finished. ``Hypothesis.length`` is that number of steps.

Scores are sums of the model's log-probabilities (EOS included). Beam search ranks finished
hypotheses by ``score = log_prob / penalty(length)`` with GNMT's ``((5 + L) / 6) ** alpha``
(``length_penalty=alpha``) or ``L`` (``normalize=True``); greedy and sampling report ``score =
log_prob``.

Streaming (``rnntool generate``): ``greedy_steps`` / ``sample_steps`` yield a ``DecodeStep`` per
step, so a caller can print each token as soon as it is chosen; ``greedy`` / ``sample`` collect
them into hypotheses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rnntool.errors import ConfigError
from rnntool.runtime import step_kernels

__all__ = [
    "DecodeStep",
    "Hypothesis",
    "beam_search",
    "filter_log_probs",
    "greedy",
    "greedy_steps",
    "hard_alignment",
    "length_penalty_divisor",
    "sample",
    "sample_steps",
]

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    """One decoded output.

    tokens: the generated token ids, without BOS and EOS.
    score: the ranking score (log_prob, after the length penalty in beam search).
    log_prob: sum of token_log_probs, the model's log-probability of the output.
    token_log_probs: one per step: one per token, then EOS's when ``finished``.
    finished: True when the output ended with EOS, False when it was cut at max_len.
    attention: (length, S) attention weights, one row per step, or None for models without.
    """

    tokens: list[int]
    score: float
    log_prob: float
    token_log_probs: list[float]
    finished: bool
    attention: Tensor | None = field(default=None, repr=False)

    @property
    def length(self) -> int:
        """Number of decoding steps: len(tokens), plus one for EOS when finished."""
        return len(self.token_log_probs)

    def alignment(self, src_len: int, src_offset: int = 0) -> list[tuple[int, int]]:
        """Hard alignment ``[(i, j), ...]``: target token j attends most to source position i."""
        return hard_alignment(self.attention, len(self.tokens), src_len, src_offset)


def hard_alignment(attention: Tensor | None, n_tokens: int, src_len: int, src_offset: int = 0) -> list[tuple[int, int]]:
    """(source i, target j) pairs: for each target token j, the source position of its largest weight.

    ``attention`` is (steps, S); only columns ``src_offset .. src_offset + src_len`` are real source
    subwords (skip e.g. a BOS/EOS the encoder adds), and their index i counts from 0. EOS rows are
    ignored. Every target token gets exactly one link; pairs come in target order, as fast_align
    writes them.
    """
    if attention is None or n_tokens == 0 or src_len <= 0:
        return []
    weights = attention[:n_tokens, src_offset : src_offset + src_len]  # (T, src_len)
    source_of_target = weights.argmax(dim=1).tolist()
    return [(i, j) for j, i in enumerate(source_of_target)]


@dataclass
class DecodeStep:
    """What one greedy/sampling step produced, for the rows still decoding.

    rows: (A,) indices of those rows in the original batch.
    tokens: (A,) the token chosen for each (EOS when that row has just finished).
    log_probs: (A,) the model's log-probability of that token.
    attention: (A, S) attention weights, or None.
    done: (A,) bool, True where the row has ended at this step (EOS, or max_len reached).
    """

    rows: Tensor
    tokens: Tensor
    log_probs: Tensor
    attention: Tensor | None
    done: Tensor


# -- shared helpers -----------------------------------------------------------------------------


def _check_lengths(max_len, min_len: int) -> None:
    if min_len < 0:
        raise ConfigError(f"min_len must be >= 0, got {min_len}")
    low = int(max_len.min()) if isinstance(max_len, Tensor) else int(max_len)
    if low < 1:
        raise ConfigError(f"max_len must be >= 1, got {low}")


def _as_row_tensor(value, batch_size: int, device, name: str) -> Tensor:
    """An int or a (B,) tensor -> a (B,) LongTensor on ``device``."""
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.numel() != batch_size:
            raise ConfigError(f"{name} must be an int or a ({batch_size},) tensor, got shape {tuple(value.shape)}")
        return value.to(device=device, dtype=torch.long)
    return torch.full((batch_size,), int(value), dtype=torch.long, device=device)


def _device_of(bos, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(bos, Tensor):
        return bos.device
    return torch.device("cpu")


def filter_log_probs(log_probs: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set log-probs outside the top-k / nucleus (top-p) set to -inf.

    top_k: keep the k most likely tokens (0 = all). top_p: keep the smallest set of most likely
    tokens whose probability reaches p (the first token always stays; 1.0 = all). Both apply
    together, top-k first. Input (N, V) log-probs; output (N, V), not renormalised.
    """
    out = log_probs
    vocab = log_probs.size(-1)
    if top_k and 0 < top_k < vocab:
        kth = log_probs.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
        out = out.masked_fill(out < kth, NEG_INF)
    if top_p < 1.0:
        sorted_lp, order = out.sort(dim=-1, descending=True)  # (N, V)
        probs = sorted_lp.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # (N, V) probability of the tokens ranked above
        drop_sorted = mass_before >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        out = out.masked_fill(drop, NEG_INF)
    return out


# -- greedy and sampling ------------------------------------------------------------------------


def _decode_steps(
    model,
    state,
    batch_size: int,
    bos,
    eos: int,
    max_len,
    min_len: int,
    choose: Callable[[Tensor], Tensor],
    device,
) -> Iterator[DecodeStep]:
    """One token per row per step, chosen by ``choose(log_probs (A, V)) -> (A,)``; finished rows leave."""
    _check_lengths(max_len, min_len)
    device = _device_of(bos, device)
    rows = torch.arange(batch_size, device=device)  # (A,) original row of each live row
    inputs = _as_row_tensor(bos, batch_size, device, "bos")  # (A,)
    row_max_len = _as_row_tensor(max_len, batch_size, device, "max_len")  # (A,)
    t = 0
    while rows.numel():
        # no_grad only around the model's work: a context held across ``yield`` would leak to the caller
        with torch.no_grad(), step_kernels(inputs.numel()):
            log_probs, state, attention = model.step(inputs, state)  # (A, V), state, (A, S)
            log_probs = log_probs.float()
            masked = log_probs
            if t < min_len:
                masked = log_probs.clone()
                masked[:, eos] = NEG_INF
            tokens = choose(masked)  # (A,)
            token_lp = log_probs.gather(1, tokens[:, None]).squeeze(1)  # (A,)
        t += 1
        done = (tokens == eos) | (row_max_len <= t)
        yield DecodeStep(rows, tokens, token_lp, attention, done)
        if bool(done.all()):
            return
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)  # (A',)
            with torch.no_grad():
                state = model.reorder_state(state, keep)
            rows, tokens, row_max_len = rows[keep], tokens[keep], row_max_len[keep]
        inputs = tokens


def _collect(steps: Iterator[DecodeStep], batch_size: int, eos: int, keep_attention: bool) -> list[Hypothesis]:
    tokens: list[list[int]] = [[] for _ in range(batch_size)]
    log_probs: list[list[float]] = [[] for _ in range(batch_size)]
    attention: list[list[Tensor]] = [[] for _ in range(batch_size)]
    finished = [False] * batch_size
    for s in steps:
        rows, toks, lps = s.rows.tolist(), s.tokens.tolist(), s.log_probs.tolist()
        step_attention = s.attention.float().cpu() if keep_attention and s.attention is not None else None
        for a, (row, tok, lp) in enumerate(zip(rows, toks, lps)):
            log_probs[row].append(lp)
            if step_attention is not None:
                attention[row].append(step_attention[a])
            if tok == eos:
                finished[row] = True
            else:
                tokens[row].append(tok)
    out = []
    for b in range(batch_size):
        total = float(sum(log_probs[b]))
        attn = torch.stack(attention[b]) if attention[b] else None
        out.append(Hypothesis(tokens[b], total, total, log_probs[b], finished[b], attn))
    return out


def greedy_steps(model, state, batch_size: int, bos, eos: int, max_len, min_len: int = 0,
                 device=None) -> Iterator[DecodeStep]:
    """Greedy decoding, one ``DecodeStep`` per step (for streaming output). See ``greedy``."""
    return _decode_steps(model, state, batch_size, bos, eos, max_len, min_len,
                         lambda lp: lp.argmax(dim=-1), device)


def greedy(model, state, batch_size: int, bos, eos: int, max_len, min_len: int = 0,
           device=None, keep_attention: bool = False) -> list[Hypothesis]:
    """Pick the most likely token at every step; one Hypothesis per row.

    bos: first input token, an int or a (B,) LongTensor. max_len: max steps (EOS included), an
    int or a (B,) LongTensor. min_len: EOS forbidden before this many tokens. device: where the
    token tensors live (default: bos's device, else CPU). keep_attention: record each output's
    attention rows in ``Hypothesis.attention`` (for alignments).
    """
    steps = greedy_steps(model, state, batch_size, bos, eos, max_len, min_len, device)
    return _collect(steps, batch_size, eos, keep_attention)


def _sampler(temperature: float, top_k: int, top_p: float, generator) -> Callable[[Tensor], Tensor]:
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise ConfigError(f"top_k must be >= 0 (0 = no limit), got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")

    def choose(log_probs: Tensor) -> Tensor:  # (A, V) -> (A,)
        if temperature == 0 or top_k == 1:
            return log_probs.argmax(dim=-1)
        scaled = (log_probs / temperature).log_softmax(dim=-1)
        scaled = filter_log_probs(scaled, top_k, top_p)
        probs = scaled.softmax(dim=-1)
        if generator is not None and generator.device != probs.device:
            probs = probs.to(generator.device)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1).to(log_probs.device)

    return choose


def sample_steps(model, state, batch_size: int, bos, eos: int, max_len, min_len: int = 0, *,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 generator: torch.Generator | None = None, device=None) -> Iterator[DecodeStep]:
    """Sampling, one ``DecodeStep`` per step (for streaming output). See ``sample``."""
    choose = _sampler(temperature, top_k, top_p, generator)
    return _decode_steps(model, state, batch_size, bos, eos, max_len, min_len, choose, device)


def sample(model, state, batch_size: int, bos, eos: int, max_len, min_len: int = 0, *,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           generator: torch.Generator | None = None, device=None, keep_attention: bool = False) -> list[Hypothesis]:
    """Sample each token from the model's distribution; one Hypothesis per row.

    temperature: divides the log-probs (0 = greedy). top_k: sample among the k most likely
    tokens (0 = all; 1 = greedy). top_p: nucleus sampling, the smallest set reaching p (1 = all).
    generator: a seeded torch.Generator makes the output repeat exactly. Recorded
    token_log_probs are the model's own (temperature 1, unfiltered). Other arguments as ``greedy``.
    """
    steps = sample_steps(model, state, batch_size, bos, eos, max_len, min_len, temperature=temperature,
                         top_k=top_k, top_p=top_p, generator=generator, device=device)
    return _collect(steps, batch_size, eos, keep_attention)


def __getattr__(name: str):
    # beam_search lives in its own module (it imports Hypothesis from here); re-export it lazily.
    if name in ("beam_search", "length_penalty_divisor"):
        from rnntool.decoding import beam_search as _beam

        return getattr(_beam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
