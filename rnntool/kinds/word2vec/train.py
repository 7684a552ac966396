"""The word2vec kind (`rnntool train word2vec` without the CLI): a text corpus -> gensim's Word2Vec
(CBOW or skip-gram, negative sampling) -> a ``word2vec`` bundle: the vectors in model.safetensors
(one (V, D) float32 tensor), the words and their counts in vocab.json, the training log. No pickles:
gensim's own model files are not kept.

    spec = Word2VecRunSpec(train="corpus.txt", name="w2v", model={"algorithm": "skipgram", "embed_dim": 100}).check()
    outcome = train_model(KIND, spec, train_cfg, RunContext(registry))

It follows the kind contract (rnntool/training/kind.py) but trains itself (``fit``): gensim runs the
epochs, not rnntool's loop. Words are the corpus's whitespace-separated tokens (lowercased with
``lowercase``), as in the original word2vec tool; a line longer than gensim's 10,000-word limit is fed
in slices (gensim would silently drop the rest). ``--seed`` with one thread (``--threads 1``) repeats
exactly in any process (tested); more threads are faster, and not repeatable.
Needs gensim: ``pip install 'rnntool[word2vec]'``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, OptionalDependencyMissing, UsageError
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE
from rnntool.kinds.word2vec import ALGORITHMS, VECTORS_TENSOR
from rnntool.training.inputs import TrainValidFiles, prepare_train_valid
from rnntool.training.kind import ModelKind, Trainee
from rnntool.training.publishing import check_destination

Log = Callable[[str], None]
INSTALL_HINT = "train word2vec needs gensim: pip install 'rnntool[word2vec]'"
MAX_SENTENCE_WORDS = 10_000  # gensim's MAX_WORDS_IN_BATCH: its trainer stops reading a sentence there
DEFAULTS = {"algorithm": "skipgram", "embed_dim": 100, "window": 5, "negative": 5, "min_count": 5,
            "subsample": 1e-3, "lowercase": False}


@dataclass
class Word2VecRunSpec(TrainValidFiles):
    train: str | None = None
    valid: str | None = None  # unused: word2vec has no validation data
    name: str | None = None
    output: str | None = None
    model: dict = field(default_factory=dict)  # DEFAULTS' keys
    on_bad_utf8: str = "strict"
    init_from: str | None = None
    fingerprints: list[dict] = field(default_factory=list)
    run_id: str | None = None
    promote: str | None = None
    min_delta: float = 0.0

    def check(self) -> "Word2VecRunSpec":
        check_destination(self.name, self.output)
        m = {**DEFAULTS, **self.model}
        unknown = sorted(set(m) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown word2vec settings {unknown}")
        if m["algorithm"] not in ALGORITHMS:
            raise ConfigError(f"--algorithm must be one of {', '.join(ALGORITHMS)} (got {m['algorithm']!r})")
        for key in ("embed_dim", "window", "min_count"):
            if int(m[key]) < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be at least 1 (got {m[key]})")
        if int(m["negative"]) < 1:
            raise ConfigError(f"--negative must be at least 1 (got {m['negative']}): rnntool trains with "
                              "negative sampling")
        if not 0.0 <= float(m["subsample"]) < 1.0:
            raise ConfigError(f"--subsample must be in [0, 1) (got {m['subsample']}); 0 keeps every word")
        self.model = m
        return self


class CorpusSentences:
    """The corpus as token lists, read again for each pass (gensim makes one per epoch plus one)."""

    def __init__(self, path: str, lowercase: bool, on_bad_utf8: str) -> None:
        self.path, self.lowercase, self.on_bad_utf8 = path, lowercase, on_bad_utf8

    def __iter__(self) -> Iterator[list[str]]:
        from rnntool.textio import read_lines

        for line in read_lines(self.path, on_bad_utf8=self.on_bad_utf8):
            tokens = (line.lower() if self.lowercase else line).split()
            for start in range(0, len(tokens), MAX_SENTENCE_WORDS):  # gensim reads no further in one
                yield tokens[start:start + MAX_SENTENCE_WORDS]


class Word2VecKind(ModelKind):
    """Word vectors by gensim (see the module docstring)."""

    name, command, spec_type, temp_prefix = "word2vec", "train word2vec", Word2VecRunSpec, "rnntool-word2vec-"

    def prepare_inputs(self, spec, work_dir: Path, log: Log):
        return prepare_train_valid(spec, work_dir, log, what="text")

    def warm_start(self, spec, registry, ref: str, log: Log):
        raise UsageError("train word2vec starts from scratch; drop --init-from")

    def key_settings(self, spec, train_cfg, registry, parent) -> dict:
        from rnntool.training.retrain import model_settings

        return model_settings("word2vec", spec, train_cfg, registry, parent, tokenizer_fields=(),
                              runtime_fields=("train", "valid"))

    def build(self, spec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        try:
            import gensim  # noqa: F401
        except ImportError:
            raise OptionalDependencyMissing(INSTALL_HINT) from None
        sentences = CorpusSentences(spec.train, spec.model["lowercase"], spec.on_bad_utf8)
        return Trainee(spec, None, None, dict(spec.model), {"corpus": spec.train}, {},
                       state={"sentences": sentences})

    def fit(self, trainee: Trainee, train_cfg, ctx):
        """Train with gensim; the vectors land in ``trainee.state``. Returns the TrainResult."""
        from gensim.models import Word2Vec
        from gensim.models.callbacks import CallbackAny2Vec

        from rnntool.training.trainer import TrainResult

        from rnntool.training.distributed import env_world_size

        if env_world_size() > 1:
            raise UsageError("train word2vec runs in one process (gensim's threads: --threads); run it without "
                             "torchrun")
        m, log = trainee.spec.model, ctx.log
        threads = train_cfg.threads or os.cpu_count() or 1
        epochs = train_cfg.epochs or 5
        history: list[dict] = []

        class EpochLog(CallbackAny2Vec):
            def __init__(self) -> None:
                self.epoch, self.previous, self.started = 0, 0.0, time.perf_counter()

            def on_epoch_end(self, model) -> None:
                self.epoch += 1
                total = model.get_latest_training_loss()
                record = {"step": self.epoch, "epoch": self.epoch, "train_loss": round(total - self.previous, 4),
                          "elapsed": round(time.perf_counter() - self.started, 2)}
                self.previous = total
                history.append(record)
                log(f"epoch {self.epoch}/{epochs}: loss {record['train_loss']:.1f} ({record['elapsed']:.1f}s)")

        started = time.perf_counter()
        model = Word2Vec(vector_size=int(m["embed_dim"]), window=int(m["window"]), min_count=int(m["min_count"]),
                         sg=1 if m["algorithm"] == "skipgram" else 0, hs=0, negative=int(m["negative"]),
                         sample=float(m["subsample"]), alpha=train_cfg.lr, seed=train_cfg.seed, workers=threads,
                         compute_loss=True)
        model.build_vocab(trainee.state["sentences"])
        words = list(model.wv.index_to_key)
        if not words:
            raise BadInput(f"{trainee.spec.train}: no word occurs --min-count {m['min_count']} times; lower "
                           "--min-count or give more text")
        corpus_words = model.corpus_total_words
        log(f"{len(words):,} words occur at least {m['min_count']} times in {corpus_words:,} ({model.corpus_count:,} "
            f"lines); training {m['algorithm']}, {m['embed_dim']} dimensions, {epochs} epochs on {threads} "
            f"thread{'s' if threads > 1 else ''}")
        model.train(trainee.state["sentences"], total_examples=model.corpus_count, total_words=corpus_words,
                     epochs=epochs, compute_loss=True, callbacks=[EpochLog()])
        elapsed = time.perf_counter() - started
        counts = [int(model.wv.get_vecattr(w, "count")) for w in words]
        trainee.state.update(words=words, counts=counts, matrix=model.wv.vectors.astype("float32"))
        trainee.data_config.update(words=len(words), corpus_words=int(corpus_words), lines=int(model.corpus_count))
        trainee.details["data"] = {"words": len(words), "corpus_words": int(corpus_words)}
        return TrainResult(best_metrics={}, last_metrics={}, best_step=epochs, steps=epochs, epochs=epochs,
                           elapsed=elapsed, stop_reason="epochs", skipped_steps=0, history=history,
                           tokens=int(corpus_words) * epochs, tokens_per_s=corpus_words * epochs / max(elapsed, 1e-9),
                           unit="words")

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        import numpy as np
        from safetensors.numpy import save_file

        st = trainee.state
        save_file({VECTORS_TENSOR: np.ascontiguousarray(st["matrix"])}, str(stage / WEIGHTS_FILE))
        (stage / VOCAB_FILE).write_text(json.dumps({"words": st["words"], "counts": st["counts"],
                                                    "lowercase": trainee.spec.model["lowercase"]},
                                                   ensure_ascii=False), encoding="utf-8")

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        raise UsageError("train word2vec has no validation metric to --promote by; move the alias with "
                         "'rnntool models alias'")

    def summary(self, outcome) -> tuple[dict, str]:
        b, r, data = outcome.bundle, outcome.result, outcome.details.get("data") or {}
        verb = "published" if b.version is not None else "wrote"
        line = (f"{verb} {b.ref}: {data.get('words', 0):,} words x {b.config['model']['embed_dim']} dimensions "
                f"({r.epochs} epochs over {data.get('corpus_words', 0):,} words, {r.elapsed:.1f}s, "
                f"{r.tokens_per_s:,.0f} words/s)")
        return {"data": data}, line


KIND = Word2VecKind()


__all__ = ["DEFAULTS", "KIND", "Word2VecRunSpec"]
