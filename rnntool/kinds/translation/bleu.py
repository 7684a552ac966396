"""sacreBLEU wrappers: corpus BLEU / chrF / TER with signatures, and the paired bootstrap test.

    corpus_bleu(hyps, refs) -> 27.3                                   # one number (training validation)
    corpus_scores(hyps, [refs_a, refs_b], metrics=("bleu", "chrf")) -> {"bleu": {...}, "chrf": {...}}
    paired_bootstrap(baseline_hyps, new_hyps, refs) -> {"score_a", "score_b", "p_value", "significant", ...}

Settings are sacreBLEU's defaults, cased everywhere: BLEU with 13a tokenization and exponential
smoothing, chrF2 (character 6-grams, no word n-grams), chrF++ (chrF2 with word 1- and 2-grams), and TER
with ``case_sensitive=True`` (sacreBLEU's TER default is lowercased; the signature says ``case:mixed``).
``Scoring`` changes them as sacreBLEU's options do: ``tokenize`` (BLEU's tokenizer), ``lowercase`` (every
metric), ``confidence`` (bootstrap resamples for a 95% interval of one system's score). Every score
carries its signature, which names all of it.

``refs`` is either one reference stream (a list of lines) or a list of streams (several references
per line), as sacreBLEU takes them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rnntool.errors import BadInput, UsageError

METRICS = ("bleu", "chrf", "chrf++", "ter")
# sacreBLEU's BLEU tokenizers that need no download and no extra package
TOKENIZERS = ("13a", "intl", "none", "char", "zh")
DEFAULT_SEED = 12345
DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class Scoring:
    """How to score, as sacreBLEU's options say it (defaults: sacreBLEU's, cased)."""

    tokenize: str = "13a"
    lowercase: bool = False
    confidence: int = 0  # bootstrap resamples for a 95% interval of each score (0: none)
    seed: int = DEFAULT_SEED

    def check(self) -> "Scoring":
        if self.tokenize not in TOKENIZERS:
            raise UsageError(f"--tokenize {self.tokenize}: choose from {', '.join(TOKENIZERS)}")
        if self.confidence < 0:
            raise UsageError(f"the number of bootstrap resamples must be 0 or more, got {self.confidence}")
        return self

__all__ = [
    "METRICS",
    "TOKENIZERS",
    "Scoring",
    "check_line_counts",
    "corpus_bleu",
    "corpus_scores",
    "make_metric",
    "paired_bootstrap",
    "parse_metrics",
    "sentence_scores",
]


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"bleu,chrf"`` or ``["bleu", "ter"]`` -> validated lower-case names, in order, no repeats."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        if name not in METRICS:
            raise UsageError(f"unknown metric {name!r}; choose from {', '.join(METRICS)} (e.g. --metrics bleu,chrf)")
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError(f"no metric given; choose from {', '.join(METRICS)}")
    return tuple(out)


def make_metric(name: str, scoring: Scoring = Scoring(), *, sentence: bool = False):
    """A fresh sacreBLEU metric object with rnntool's settings (``sentence``: for sentence-level BLEU,
    effective n-gram order, as sacreBLEU recommends there)."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    if name == "bleu":
        return BLEU(tokenize=scoring.tokenize, lowercase=scoring.lowercase, effective_order=sentence)
    if name in ("chrf", "chrf++"):
        return CHRF(word_order=2 if name == "chrf++" else 0, lowercase=scoring.lowercase)
    if name == "ter":
        return TER(case_sensitive=not scoring.lowercase)
    raise UsageError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")


def _streams(refs: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """One reference stream or several -> a list of streams."""
    if len(refs) and isinstance(refs[0], str):
        return [list(refs)]  # type: ignore[arg-type]
    return [list(r) for r in refs]


def check_line_counts(hyps: Sequence[str], refs: Sequence[Sequence[str]], hyp_name: str = "hypotheses",
                      ref_names: Sequence[str] | None = None) -> None:
    """Raise BadInput unless every reference stream has as many lines as the hypotheses (> 0)."""
    if not hyps:
        raise BadInput(f"{hyp_name}: no hypotheses to score; give a file with one translation per line")
    names = list(ref_names) if ref_names is not None else [f"reference {i + 1}" for i in range(len(refs))]
    for name, stream in zip(names, refs):
        if len(stream) != len(hyps):
            raise BadInput(f"{hyp_name} has {len(hyps)} lines but {name} has {len(stream)}; "
                           "give files with one line per sentence, in the same order")


def corpus_scores(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]],
                  metrics: Sequence[str] = ("bleu",), scoring: Scoring = Scoring()) -> dict[str, dict[str, Any]]:
    """Corpus-level scores: ``{metric: {"name", "score", "signature", "text", ...}}``.

    ``score`` is sacreBLEU's unrounded value; ``text`` is its usual one-line report prefixed with the
    metric's signature. BLEU also gives ``precisions``, ``bp``, ``ratio``, ``hyp_len``, ``ref_len``;
    with ``scoring.confidence`` every metric gives ``mean`` and ``ci`` (the 95% half-interval).
    """
    streams = _streams(refs)
    check_line_counts(hyps, streams)
    scoring.check()
    out: dict[str, dict[str, Any]] = {}
    for name in parse_metrics(metrics):
        metric = make_metric(name, scoring)
        with _sacrebleu_seed(scoring.seed):
            score = metric.corpus_score(list(hyps), streams, n_bootstrap=max(scoring.confidence, 1))
        signature = metric.get_signature().format()
        entry: dict[str, Any] = {
            "name": score.name,
            "score": float(score.score),
            "signature": signature,
            "text": score.format(signature=signature),
        }
        if scoring.confidence:
            entry.update(mean=float(score._mean), ci=float(score._ci))
        if name == "bleu":
            entry.update(precisions=[float(p) for p in score.precisions], bp=float(score.bp),
                         ratio=float(score.ratio), hyp_len=int(score.sys_len), ref_len=int(score.ref_len))
        out[name] = entry
    return out


def sentence_scores(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]],
                    metrics: Sequence[str] = ("bleu",), scoring: Scoring = Scoring()) -> Iterator[dict[str, float]]:
    """Each hypothesis's own scores against its references (sacreBLEU's --sentence-level), in order."""
    streams = _streams(refs)
    check_line_counts(hyps, streams)
    scorers = {name: make_metric(name, scoring.check(), sentence=True) for name in parse_metrics(metrics)}
    for i, hyp in enumerate(hyps):
        line_refs = [stream[i] for stream in streams]
        yield {name: float(m.sentence_score(hyp, line_refs).score) for name, m in scorers.items()}


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Cased sacreBLEU BLEU (13a) of detokenized hypotheses against raw references, 0..100."""
    return corpus_scores(hyps, refs, ("bleu",))["bleu"]["score"]


@contextlib.contextmanager
def _sacrebleu_seed(seed: int | None) -> Iterator[None]:
    """sacreBLEU's significance module reads its seed from $SACREBLEU_SEED; set it for one call."""
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = "none" if seed is None else str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(hyps_a: Sequence[str], hyps_b: Sequence[str],
                     refs: Sequence[str] | Sequence[Sequence[str]], *, metric: str = "bleu",
                     seed: int | None = DEFAULT_SEED, n_samples: int = DEFAULT_SAMPLES,
                     alpha: float = 0.05, scoring: Scoring = Scoring()) -> dict[str, Any]:
    """sacreBLEU's paired bootstrap resampling test (Koehn 2004) of system B against baseline A.

    Returns ``{"metric", "score_a", "score_b", "difference" (b - a), "p_value", "significant"
    (p_value < alpha), "mean_a", "ci_a", "mean_b", "ci_b" (bootstrap mean and 95% half-interval),
    "n_samples", "seed", "signature"}``. ``seed=None`` draws fresh randomness (results vary); the
    same seed gives the same p-value. The test is two-sided: it says whether the systems differ.
    The p-value is sacreBLEU's, except that equal scores get p = 1 (sacreBLEU would give 1/(n+1)).
    """
    from sacrebleu.significance import PairedTest

    streams = _streams(refs)
    if len(hyps_a) != len(hyps_b):
        raise BadInput(f"the two systems have {len(hyps_a)} and {len(hyps_b)} lines; "
                       "compare translations of the same source file")
    check_line_counts(hyps_a, streams)
    if n_samples < 1:
        raise UsageError(f"the number of bootstrap samples must be at least 1, got {n_samples}")
    if seed is not None and seed <= 0:
        raise UsageError(f"the bootstrap seed must be a positive integer, got {seed}")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"the significance level must be between 0 and 1, got {alpha}")
    name = parse_metrics([metric])[0]
    with _sacrebleu_seed(seed):
        test = PairedTest([("a", list(hyps_a)), ("b", list(hyps_b))], {name: make_metric(name, scoring.check())},
                          streams, test_type="bs", n_samples=n_samples)
        signatures, results = test()
    key = next(k for k in results if k != "System")
    base, other = results[key]
    p_value = float(other.p_value)
    if other.score == base.score:
        # sacreBLEU counts resampled differences strictly larger than the observed one, so equal
        # scores (e.g. identical outputs) would get p = 1/(n+1), "significant"; no difference is p = 1.
        p_value = 1.0
    return {
        "metric": name,
        "score_a": float(base.score),
        "score_b": float(other.score),
        "difference": float(other.score) - float(base.score),
        "p_value": p_value,
        "significant": p_value < alpha,
        "alpha": alpha,
        "mean_a": float(base.mean),
        "ci_a": float(base.ci),
        "mean_b": float(other.mean),
        "ci_b": float(other.ci),
        "n_samples": n_samples,
        "seed": seed,
        "signature": signatures[key].format(),
    }
