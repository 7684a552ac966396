"""Translate text with a registry translation model: batching, decoding settings, output records.

    translator = open_translator("en-de@prod", registry=None, device="auto", settings=DecodeSettings(beam=5))
    for result in translator.stream(lines, batch_size=32, batch_tokens=4096):   # in input order
        print(result.best.text)

``stream`` reads ``batch_size`` lines (or up to EOF), sorts them by length, splits them into model
batches of at most ``batch_tokens`` padded source tokens, decodes, and yields the results in input
order before it reads more: with ``batch_size=1`` every line is answered as soon as it arrives.

Sources are the tokenizer's pieces + EOS (seq2seq's convention). A sentence may produce at most
``floor(max_len_ratio * pieces) + MAX_LEN_EXTRA`` target steps, EOS included. An empty (or all-blank)
line is answered with an empty line without running the model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from rnntool.decoding.search import Hypothesis, beam_search, greedy, sample
from rnntool.errors import ConfigError, UsageError
from rnntool.layers.weights import model_device
from rnntool.runtime import prepare_device
from rnntool.textio import one_line
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, UNK_ID

MAX_LEN_EXTRA = 10


DEFAULT_LENGTH_PENALTY = 0.6  # GNMT alpha of `rnntool translate` (beam search)
# --shortlist: a batch's gathered output rows (sentences x list length x width) stay under this many numbers
# (256 MB in fp32); a bigger batch is decoded in halves, which gives the same translations
SHORTLIST_MAX_ELEMENTS = 64 * 2**20


@dataclass
class DecodeSettings:
    """How to decode. ``greedy`` ignores ``beam``; ``nbest`` <= ``beam``. Checked when made
    (ConfigError naming the option); ``dataclasses.replace`` checks the copy."""

    beam: int = 5
    greedy: bool = False
    length_penalty: float = 0.0  # GNMT alpha
    normalize: bool = False  # rank by log-prob / length instead
    max_len_ratio: float = 2.0
    min_len: int = 0
    nbest: int = 1
    alignments: bool = False
    no_repeat_ngram: int = 0  # > 0: no hypothesis repeats an n-gram of this size (beam search)
    coverage_penalty: float = 0.0  # GNMT's beta (beam search)
    early_stop: bool = False  # beam search: stop a sentence when its best candidate ends (OpenNMT-py's rule)
    sample: bool = False  # draw each token (back-translation); temperature, top_k, top_p as `generate`'s
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "DecodeSettings":
        if self.beam < 1:
            raise ConfigError(f"--beam must be at least 1 (got {self.beam})")
        if self.nbest < 1:
            raise ConfigError(f"--nbest must be at least 1 (got {self.nbest})")
        if self.greedy and self.nbest > 1:
            raise ConfigError("--greedy gives one output per line; use --beam K with --nbest N (N <= K)")
        if not self.greedy and self.nbest > self.beam:
            raise ConfigError(f"--nbest {self.nbest} is larger than --beam {self.beam}; use --nbest N with N <= K")
        if self.length_penalty < 0:
            raise ConfigError(f"--length-penalty must be >= 0 (got {self.length_penalty})")
        if self.length_penalty and self.normalize:
            raise ConfigError("--length-penalty and --normalize are two ways to rank by length; give one")
        if self.greedy and (self.length_penalty or self.normalize):
            raise ConfigError("--length-penalty / --normalize only apply to beam search; drop --greedy")
        if not self.max_len_ratio > 0:
            raise ConfigError(f"--max-len-ratio must be > 0 (got {self.max_len_ratio})")
        if self.min_len < 0:
            raise ConfigError(f"--min-len must be >= 0 (got {self.min_len})")
        if self.sample and (self.greedy or self.nbest > 1 or self.length_penalty or self.normalize
                            or self.no_repeat_ngram or self.coverage_penalty):
            raise ConfigError("--sample draws one translation per line; drop --greedy, --nbest, --length-penalty, "
                              "--normalize, --no-repeat-ngram and --coverage-penalty")
        if self.early_stop and (self.greedy or self.sample):
            raise ConfigError("--early-stop is a rule of beam search; drop --greedy / --sample")
        if self.no_repeat_ngram < 0 or self.coverage_penalty < 0:
            raise ConfigError("--no-repeat-ngram and --coverage-penalty must be >= 0")
        if not self.sample and (self.temperature != 1.0 or self.top_k or self.top_p != 1.0):
            raise ConfigError("--temperature, --top-k and --top-p apply to --sample")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("need --temperature >= 0, --top-k >= 0 and 0 < --top-p <= 1")
        return self


@dataclass
class TranslatedHypothesis:
    text: str
    score: float
    log_prob: float
    tokens: list[str]  # target pieces
    token_log_probs: list[float]  # one per token, then EOS's when finished
    finished: bool
    alignment: list[tuple[int, int]] | None = None  # (source piece i, target piece j)

    def alignment_text(self) -> str:
        return " ".join(f"{i}-{j}" for i, j in self.alignment or [])


@dataclass
class Translation:
    index: int  # 0-based input line number
    source: str
    source_tokens: list[str]
    hypotheses: list[TranslatedHypothesis] = field(default_factory=list)

    @property
    def best(self) -> TranslatedHypothesis:
        return self.hypotheses[0]

    def to_dict(self, alignments: bool = False) -> dict:
        """`translate --json`: per hypothesis ``text``; ``score`` (what ranks it: the log-prob after the length
        penalty); ``log_prob`` (natural log, </s> included); ``tokens`` (target subwords) and
        ``token_log_probs`` (one per token, the same length); ``eos_log_prob`` (</s>'s, null when the
        output was cut at the length limit); ``finished``; with --alignments ``alignment``."""
        hyps = []
        for h in self.hypotheses:
            n = len(h.tokens)
            d = {"text": h.text, "score": h.score, "log_prob": h.log_prob, "tokens": h.tokens,
                 "token_log_probs": h.token_log_probs[:n],
                 "eos_log_prob": h.token_log_probs[n] if h.finished and len(h.token_log_probs) > n else None,
                 "finished": h.finished}
            if alignments:
                d["alignment"] = h.alignment_text()
            hyps.append(d)
        out = {"index": self.index, "source": self.source, "translation": self.best.text, "hypotheses": hyps}
        if alignments:
            out["source_tokens"] = self.source_tokens
        return out


def max_steps(src_pieces: int, ratio: float) -> int:
    """Target steps (EOS included) allowed for a source of ``src_pieces`` pieces."""
    return int(math.floor(ratio * src_pieces)) + MAX_LEN_EXTRA


class Translator:
    """A loaded translation model with its tokenizers and decoding settings."""

    def __init__(self, model, src_tokenizer, tgt_tokenizer, settings: DecodeSettings | None = None,
                 ref: str = "model") -> None:
        self.model = model
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.settings = settings or DecodeSettings()
        self.ref = ref
        self.unknown_pieces = 0  # source pieces the tokenizer could only map to <unk>
        self.device = model_device(model)
        self.generator: torch.Generator | None = None  # --sample's randomness (seed_sampling)
        self.shortlist = None  # use_shortlist: each sentence's candidate target pieces only

    def seed_sampling(self, seed: int | None) -> None:
        """--sample draws from a generator seeded with ``seed`` (None: a fresh random seed)."""
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def use_shortlist(self, table, per_source: int, frequent: int) -> None:
        """Decode each sentence over its shortlist (rnntool/kinds/translation/shortlist.py) from ``table``."""
        from rnntool.kinds.translation.shortlist import Shortlist

        self.shortlist = Shortlist(table, per_source, frequent)

    # -- batching ---------------------------------------------------------------------------------
    @staticmethod
    def plan_batches(lengths: Sequence[int], batch_tokens: int | None, batch_size: int | None = None
                     ) -> list[list[int]]:
        """Indices grouped into batches, shortest first: each batch's padded size (rows x longest,
        EOS included) stays within ``batch_tokens`` and its rows within ``batch_size``; one
        sentence longer than ``batch_tokens`` gets a batch of its own."""
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = lengths[i] + 1  # sorted: the newest is the longest
            too_many = batch_size is not None and len(current) >= batch_size
            too_big = batch_tokens is not None and (len(current) + 1) * longest > batch_tokens
            if current and (too_many or too_big):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def translate(self, lines: Sequence[str], batch_tokens: int | None = None, start_index: int = 0
                  ) -> list[Translation]:
        """Translate ``lines`` (in length-sorted model batches); results in input order."""
        pieces = [self.src_tokenizer.encode(line) if line.strip() else [] for line in lines]
        self.unknown_pieces += sum(ids.count(UNK_ID) for ids in pieces)
        results = [Translation(start_index + i, line, [self.src_tokenizer.id_to_piece(t) for t in ids])
                   for i, (line, ids) in enumerate(zip(lines, pieces))]
        todo = [i for i, line in enumerate(lines) if line.strip()]
        for i in set(range(len(lines))) - set(todo):
            results[i].hypotheses = [TranslatedHypothesis("", 0.0, 0.0, [], [], True, [] if self.settings.alignments else None)]
        for batch in self.plan_batches([len(pieces[i]) for i in todo], batch_tokens):
            rows = [todo[b] for b in batch]
            for i, hyps in zip(rows, self._decode([pieces[i] for i in rows])):
                results[i].hypotheses = [self._describe(h, len(pieces[i])) for h in hyps]
        return results

    def stream(self, lines: Iterable[str], batch_size: int = 32, batch_tokens: int | None = 4096
               ) -> Iterator[Translation]:
        """Translate an iterable of lines ``batch_size`` at a time; yields in input order, each batch
        before the next lines are read (so ``batch_size=1`` answers each line as it arrives)."""
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1 (got {batch_size})")
        if batch_tokens is not None and batch_tokens < 1:
            raise ConfigError(f"--batch-tokens must be at least 1 (got {batch_tokens})")
        it = iter(lines)
        start = 0
        while True:
            chunk = list(itertools.islice(it, batch_size))
            if not chunk:
                return
            yield from self.translate(chunk, batch_tokens, start)
            start += len(chunk)

    # -- decoding ---------------------------------------------------------------------------------
    def _decode(self, sources: list[list[int]]) -> list[list[Hypothesis]]:
        with torch.inference_mode():
            return decode(self.model, sources, self.settings, self.device, self.generator, self.shortlist)

    def _describe(self, h: Hypothesis, src_pieces: int) -> TranslatedHypothesis:
        tok = self.tgt_tokenizer
        alignment = h.alignment(src_pieces) if self.settings.alignments else None
        return TranslatedHypothesis(
            text=one_line(tok.decode(h.tokens)),
            score=h.score,
            log_prob=h.log_prob,
            tokens=[tok.id_to_piece(t) for t in h.tokens],
            token_log_probs=h.token_log_probs,
            finished=h.finished,
            alignment=alignment,
        )


def decode(model, sources: Sequence[Sequence[int]], settings: DecodeSettings, device,
           generator: torch.Generator | None = None, shortlist=None) -> list[list[Hypothesis]]:
    """One model batch: source id lists (EOS is appended here) -> each one's hypotheses, best first
    (one when greedy, up to ``nbest`` from beam search). Every translation goes through here:
    `rnntool translate` (``Translator``) and training's validation BLEU. The caller puts the model
    in eval mode and picks the grad mode. ``shortlist`` (rnntool/kinds/translation/shortlist.py): each
    sentence chooses among its own candidate pieces only."""
    from rnntool.kinds.translation.model import source_batch

    s = settings
    vocab = None
    if shortlist is not None:
        vocab = shortlist.vocab(sources)  # (B, V') token ids; the search works in positions of these rows
        if len(sources) > 1 and vocab.numel() * _output_width(model) > SHORTLIST_MAX_ELEMENTS:
            half = len(sources) // 2  # each sentence's rows of the output layer would take too much memory
            return (decode(model, sources[:half], settings, device, generator, shortlist)
                    + decode(model, sources[half:], settings, device, generator, shortlist))
    src, src_lengths = source_batch([list(p) for p in sources], device)  # (B, S), (B,)
    state = model.encode(src, src_lengths)
    if vocab is not None:
        state = model.shortlist_state(state, vocab.to(device))
    max_len = torch.tensor([max_steps(len(p), s.max_len_ratio) for p in sources], device=device)
    if s.greedy and not (s.no_repeat_ngram or s.coverage_penalty):
        hyps = [[h] for h in greedy(model, state, len(sources), BOS_ID, EOS_ID, max_len, s.min_len,
                                    device=device, keep_attention=s.alignments)]
    elif s.sample:  # ``generator``: seeded, the same lines in the same batches repeat exactly
        hyps = [[h] for h in sample(model, state, len(sources), BOS_ID, EOS_ID, max_len, s.min_len,
                                    temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, generator=generator,
                                    device=device, keep_attention=s.alignments)]
    else:
        hyps = beam_search(model, state, len(sources), BOS_ID, EOS_ID, max_len, s.min_len,
                           beam=1 if s.greedy else s.beam, length_penalty=s.length_penalty, normalize=s.normalize,
                           nbest=s.nbest, keep_attention=s.alignments, device=device,
                           no_repeat_ngram=s.no_repeat_ngram, coverage_penalty=s.coverage_penalty,
                           early_stop=s.early_stop,
                           source_mask=(state[0] if isinstance(state, list) else state).mask)  # an ensemble: its members'
    if vocab is not None:  # positions -> token ids
        rows = vocab.tolist()
        for row, sentence_hyps in zip(rows, hyps):
            for h in sentence_hyps:
                h.tokens = [row[t] for t in h.tokens]
    return hyps


def _output_width(model) -> int:
    """The input width of (the first ensemble member's) output layer: what one shortlisted row costs."""
    return getattr(model, "members", [model])[0].decoder.output.in_features


def open_translator(ref: str | list[str], registry=None, device: str = "auto",
                    settings: DecodeSettings | None = None, precision: str = "fp32", shortlist: int = 0,
                    shortlist_frequent: int = 100) -> Translator:
    """Load a ``translation`` bundle (name, name@version, name@alias or a bundle directory), or several as
    an ensemble (they must share their tokenizers), to run in ``precision`` (rnntool/layers/precision.py).
    ``shortlist`` > 0: decode each sentence over the ``shortlist_frequent`` most frequent target pieces and
    ``shortlist`` candidates per source piece, from the (first) bundle's lexical table."""
    from rnntool.registry.store import Registry
    from rnntool.kinds.translation.model import load_translation
    from rnntool.layers.precision import for_inference

    settings = settings or DecodeSettings()
    refs = [ref] if isinstance(ref, str) else list(ref)
    reg = Registry.open(registry)
    loaded = []
    where = prepare_device(device)
    for r in refs:
        bundle = reg.load(r, kind="translation")
        model, src_tok, tgt_tok = load_translation(bundle, where)
        model = for_inference(model, precision, where)
        for t in (src_tok, tgt_tok):
            t.require_rnntool_ids()
        loaded.append((bundle, model, src_tok, tgt_tok))
    first, model, src_tok, tgt_tok = loaded[0]
    if len(loaded) == 1:
        translator = Translator(model, src_tok, tgt_tok, settings, ref=first.ref)
    else:
        from rnntool.decoding.ensemble import Ensemble

        for bundle, _, s, t in loaded[1:]:
            if (s.sha256, t.sha256) != (src_tok.sha256, tgt_tok.sha256):
                raise UsageError(f"{bundle.ref} and {first.ref} have different tokenizers; an ensemble needs models "
                                 "trained with the same ones (e.g. -t, or versions of one model)")
        translator = Translator(Ensemble([m for _, m, _, _ in loaded]), src_tok, tgt_tok, settings,
                                ref="+".join(b.ref for b, *_ in loaded))
    if shortlist:
        translator.use_shortlist(lexical_table(first, model), shortlist, shortlist_frequent)
    return translator


def lexical_table(bundle, model):
    """The bundle's shortlist table (rnntool/kinds/translation/shortlist.py), checked against ``model``'s vocabularies."""
    from rnntool.kinds.translation.shortlist import SHORTLIST_FILE, LexicalTable

    if SHORTLIST_FILE not in bundle.files:
        raise UsageError(f"{bundle.ref} has no shortlist table ({SHORTLIST_FILE}); add one with `rnntool models "
                         f"shortlist {bundle.ref} --src TRAIN.src --tgt TRAIN.tgt`, or translate without --shortlist")
    cfg = model.cfg
    return LexicalTable.load(bundle.file(SHORTLIST_FILE), cfg.src_vocab_size, cfg.tgt_vocab_size)