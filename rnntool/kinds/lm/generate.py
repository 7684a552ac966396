"""Text generation with a language model: greedy, sampling (temperature, top-k, top-p), beam search.

    for event in generate(lm, "The cat", settings, generator=torch.Generator().manual_seed(1)):
        if isinstance(event, str): print(event, end="", flush=True)   # text as it is produced
        else: print()                                                  # a Sample: one is complete

A prompt is read after <bos> (sentence-mode models) or <eos> (stream-mode models), and generation
stops at <eos> or after ``max_tokens`` tokens. A stream-mode model joined its training lines with <eos>,
so there <eos> is also a line end: with ``lines`` N != 1 generation goes on across line ends until N
lines (0: until ``max_tokens``), each inner <eos> written as a newline.

Text is detokenized incrementally: each new token's text is given as soon as it is known (a piece that
ends inside a multi-byte character waits for the rest). Greedy and sampling stream token by token; beam search gives each output whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from rnntool.decoding.search import beam_search, greedy_steps, sample_steps
from rnntool.errors import UsageError
from rnntool.kinds.lm.model import LoadedLM
from rnntool.layers.weights import model_device
from rnntool.textio import one_line
from rnntool.tokenizers.sentencepiece import EOS_ID


@dataclass
class GenerateSettings:
    max_tokens: int = 100
    num_samples: int = 1
    greedy: bool = False
    beam: int = 0  # 0: no beam search
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    lines: int = 1  # stream-mode models: lines per output (0: until max_tokens)

    def validate(self) -> "GenerateSettings":
        if self.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        if self.num_samples < 1:
            raise UsageError("--num-samples must be at least 1")
        if self.greedy and self.beam:
            raise UsageError("--greedy and --beam exclude each other; choose one")
        if (self.greedy or self.beam) and (self.temperature != 1.0 or self.top_k or self.top_p != 1.0):
            raise UsageError("--temperature/--top-k/--top-p apply to sampling; drop them with --greedy or --beam")
        if self.greedy and self.num_samples > 1:
            raise UsageError("--greedy gives one output per prompt; drop -n or sample instead")
        if self.beam and self.num_samples > self.beam:
            raise UsageError(f"-n {self.num_samples} is more than --beam {self.beam}: raise --beam or lower -n")
        if self.lines < 0:
            raise UsageError(f"--lines must be 0 (until --max-tokens) or more (got {self.lines})")
        if self.lines != 1 and self.beam:
            raise UsageError("--lines applies to sampling and --greedy; drop --beam")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise UsageError("need --temperature >= 0, --top-k >= 0 and 0 < --top-p <= 1")
        return self


@dataclass
class Sample:
    prompt: str
    text: str  # prompt and continuation, detokenized together
    completion: str  # the continuation alone
    token_ids: list[int] = field(default_factory=list)  # generated ids, without <eos>
    token_logprobs: list[float] = field(default_factory=list)  # one per step (<eos> included)
    finished: bool = False  # ended with <eos> (else cut at --max-tokens)

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))

    def to_dict(self) -> dict:
        """`generate --json`: the fields of `translate --json`'s hypotheses where they mean the same:
        ``token_ids`` and ``token_log_probs`` (one per generated token, the same length), ``eos_log_prob``
        (<eos>'s, null unless ``finished``), ``log_prob`` (natural log, <eos> included)."""
        n = len(self.token_ids)
        return {"prompt": self.prompt, "text": self.text, "completion": self.completion,
                "token_ids": self.token_ids, "token_log_probs": self.token_logprobs[:n],
                "eos_log_prob": self.token_logprobs[n] if self.finished and len(self.token_logprobs) > n else None,
                "log_prob": self.logprob, "finished": self.finished}


class IncrementalText:
    """Detokenize ids as they arrive; ``push(id)`` returns the text that became known."""

    def __init__(self, tokenizer, prefix_ids: list[int]) -> None:
        self.tokenizer = tokenizer
        self.ids = list(prefix_ids)
        self.text = one_line(tokenizer.decode(self.ids))
        self.shown = len(self.text)

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = one_line(self.tokenizer.decode(self.ids))
        if text.endswith("\ufffd") or not text.startswith(self.text[: self.shown]):
            self.text = text  # an unfinished UTF-8 sequence, or a changed prefix: wait
            return ""
        self.text = text
        new, self.shown = text[self.shown :], len(text)
        return new

    def flush(self) -> str:
        new, self.shown = self.text[self.shown :], len(self.text)
        return new


def generate(
    lm: LoadedLM, prompt: str, settings: GenerateSettings, *, generator: torch.Generator | None = None
) -> Iterator[str | Sample]:
    """Text pieces (str) of each output as they are produced, each output followed by its Sample."""
    model, tokenizer = lm.model, lm.tokenizer
    if settings.lines != 1 and lm.mode != "stream":
        raise UsageError(f"--lines {settings.lines}: {lm.bundle.ref} is a sentence-mode model (each output is one "
                         "sentence, ended by <eos>); --lines needs a model trained with --mode stream")
    device = model_device(model)
    prompt_ids = tokenizer.encode(prompt) if prompt else []
    with torch.no_grad():  # only around the model's work: this generator yields to its caller
        state, last = model.prompt_state(torch.tensor([[lm.start_id, *prompt_ids]], device=device))
    if settings.beam:  # beam_search and the step generators below run their steps under no_grad
        hyps = beam_search(model, state, 1, last, EOS_ID, settings.max_tokens, beam=settings.beam,
                           nbest=settings.num_samples, device=device)[0]
        start = len(one_line(tokenizer.decode(prompt_ids)))
        for hyp in hyps:
            full = one_line(tokenizer.decode(prompt_ids + hyp.tokens))
            yield full
            yield Sample(prompt, full, full[start:], hyp.tokens, hyp.token_log_probs, hyp.finished)
        return
    for _ in range(settings.num_samples):
        yield from _stream_one(lm, prompt, prompt_ids, state, last, settings, generator)


def _stream_one(lm, prompt, prompt_ids, state, last, settings, generator) -> Iterator[str | Sample]:
    text = IncrementalText(lm.tokenizer, prompt_ids)
    start = len(text.text)
    if text.text:
        yield text.text
    sample = Sample(prompt, "", "")
    device = last.device
    multi = settings.lines != 1  # <eos> is a line end to write, not the end (stream-mode models)
    eos = -1 if multi else EOS_ID  # -1: the step generators never stop at <eos> themselves
    if settings.greedy:
        steps = greedy_steps(lm.model, state, 1, last, eos, settings.max_tokens, device=device)
    else:
        steps = sample_steps(lm.model, state, 1, last, eos, settings.max_tokens, temperature=settings.temperature,
                             top_k=settings.top_k, top_p=settings.top_p, generator=generator, device=device)
    done_lines = ""  # the lines a multi-line output has finished, each with its newline
    lines = 0
    for step in steps:
        token = int(step.tokens[0])
        sample.token_logprobs.append(float(step.log_probs[0]))
        if token == EOS_ID:
            lines += 1
            if not multi or lines == settings.lines:
                sample.finished = True
                break
            tail = text.flush()  # a line end inside the output: the line's text, then a newline
            if tail:
                yield tail
            yield "\n"
            done_lines += text.text + "\n"
            text = IncrementalText(lm.tokenizer, [])
            sample.token_ids.append(token)
            continue
        sample.token_ids.append(token)
        piece = text.push(token)
        if piece:
            yield piece
    tail = text.flush()
    if tail:
        yield tail
    sample.text = done_lines + text.text
    sample.completion = sample.text[start:]
    yield sample
