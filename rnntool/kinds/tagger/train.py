"""The transducer kind (`rnntool train tag` without the CLI): tagged sentences -> TaggerTask -> the one
training loop -> a ``tagger`` bundle (weights, the vocabularies in vocab.json, the training log).

    spec = TagRunSpec(train="train.conllu", valid="dev.conllu", name="ewt-upos", model={"crf": False}).check()
    outcome = train_model(KIND, spec, train_cfg, RunContext(registry, run_dir=Path("runs/x")))

The ModelKind contract is in rnntool/training/kind.py. The vocabularies (words with at least
``--min-count`` occurrences, every character, every tag) are built from the training sentences, so a
resumed run rebuilds the same ones; a warm start (``--init-from`` a tagger) keeps its parent's.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, UsageError
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE
from rnntool.training.kind import ModelKind, Trainee
from rnntool.training.publishing import check_destination
from rnntool.training.inputs import TrainValidFiles, prepare_train_valid

Log = Callable[[str], None]
SELECT_METRICS = ("accuracy", "span_f1")
SCHEMES = ("auto", "iob1", "iob2", "iobes")
HOLDOUT_SEED = 12345


@dataclass
class TagRunSpec(TrainValidFiles):
    """What to train on and what to build; JSON-able (it is the run's ``run_meta``)."""

    train: str | None = None
    valid: str | None = None
    valid_fraction: float = 0.1
    format: str = "auto"
    tag_column: str | None = None
    name: str | None = None
    output: str | None = None
    model: dict = field(default_factory=dict)  # TaggerConfig settings but the vocabulary sizes
    min_count: int = 1
    lowercase: bool = False
    max_len: int = 200
    on_long: str = "split"
    batch_size: int = 32
    scheme: str = "auto"  # BIO spans: what span F1 counts and what the CRF may not do
    select: str = "accuracy"
    on_bad_utf8: str = "strict"
    init_from: str | None = None
    fingerprints: list[dict] = field(default_factory=list)
    run_id: str | None = None
    promote: str | None = None
    min_delta: float = 0.0
    init_embeddings: str | None = None  # --init-embeddings FILE (rnntool/vectors/pretrained.py)
    freeze_embeddings: bool = False

    def check(self) -> "TagRunSpec":
        from rnntool.kinds.tagger.data import FORMATS, ON_LONG

        check_destination(self.name, self.output)
        if self.train is None:
            raise UsageError("no training data: give a tagged file (CoNLL or CoNLL-U), or '-' for stdin")
        if self.format not in FORMATS or self.format == "lines":
            raise ConfigError(f"--format must be one of auto, conll, conllu for training (got {self.format!r})")
        if self.valid is None and not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (got {self.valid_fraction}), or give --valid FILE")
        if self.min_count < 1 or self.batch_size < 1 or self.max_len < 1:
            raise ConfigError("--min-count, --batch-size and --max-len must be positive")
        if self.on_long not in ON_LONG:
            raise ConfigError(f"--on-long must be one of {', '.join(ON_LONG)} (got {self.on_long!r})")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"--scheme must be one of {', '.join(SCHEMES)} (got {self.scheme!r})")
        if self.select not in SELECT_METRICS:
            raise ConfigError(f"--select must be one of accuracy, span-f1 (got {self.select!r})")
        return self


def model_config(spec: TagRunSpec, vocab, constraints: str | None = None):
    """The TaggerConfig of this run; ``constraints``: the BIO scheme a CRF must respect (from the data)."""
    from rnntool.kinds.tagger.model import TaggerConfig

    settings = {k: v for k, v in spec.model.items() if k != "constraints"}  # a warm-start parent's: re-derived
    return TaggerConfig(vocab_size=vocab.word_vocab_size, char_vocab_size=vocab.char_vocab_size,
                        num_tags=len(vocab.tags), constraints=constraints, **settings)


def read_splits(spec: TagRunSpec, log: Log):
    """(training sentences, validation sentences): ``--valid``, or a seeded random hold-out."""
    from rnntool.kinds.tagger.data import check_known_tags, read_tagged

    kw = dict(format=spec.format, tag_column=spec.tag_column, max_len=spec.max_len, on_long=spec.on_long,
              on_bad_utf8=spec.on_bad_utf8)
    train = read_tagged(spec.train, **kw)
    if spec.valid is not None:
        valid = read_tagged(spec.valid, **kw)
        check_known_tags(valid, sorted({t for s in train for t in s.tags}), spec.valid)
        return train, valid
    held = max(1, round(len(train) * spec.valid_fraction))
    if len(train) - held < 1:
        raise BadInput(f"{spec.train}: {len(train)} sentences are too few to hold out validation sentences; give "
                       "more data or --valid FILE")
    order = list(range(len(train)))
    random.Random(HOLDOUT_SEED).shuffle(order)
    out = set(order[:held])
    seen = {t for i, s in enumerate(train) if i not in out for t in s.tags}
    for i in sorted(out):  # a tag only held-out sentences have goes back to training
        if not set(train[i].tags) <= seen:
            out.discard(i)
            seen.update(train[i].tags)
    log(f"holding out {len(out)} random sentences for validation (give --valid FILE to choose)")
    return [s for i, s in enumerate(train) if i not in out], [train[i] for i in sorted(out)]


def first_broken(sentences, tags: list[str], scheme: str):
    """The first sentence whose tags take a transition ``scheme`` forbids (rnntool.layers.crf), or None."""
    from rnntool.layers.crf import bio_transitions

    allowed, start, end = (m.tolist() for m in bio_transitions(tags, scheme))
    index = {t: i for i, t in enumerate(tags)}
    for s in sentences:
        ids = [index[t] for t in s.tags]
        if ids and (not start[ids[0]] or not end[ids[-1]] or not all(allowed[a][b] for a, b in zip(ids, ids[1:]))):
            return s
    return None


def sentence_counts(gold, pred, scheme: str | None):
    """Per sentence: tokens, correct tokens, and (BIO tags) gold, predicted and correct spans."""
    import numpy as np

    from rnntool.kinds.tagger.spans import extract_spans

    rows = []
    for g, p in zip(gold, pred):
        row = [len(g), sum(a == b for a, b in zip(g, p))]
        if scheme is not None:
            gs, ps = set(extract_spans(g, scheme)), set(extract_spans(p, scheme))
            row += [len(gs), len(ps), len(gs & ps)]
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def metric_of(counts, key: str):
    """A statistic for rnntool.evaluation.bootstrap: token accuracy or span F1 of resampled sentences."""
    def statistic(idx) -> float:
        c = counts[idx].sum(0)
        if key == "accuracy":
            return float(c[1] / c[0]) if c[0] else 0.0
        gold, found, correct = c[2], c[3], c[4]
        return float(2 * correct / (gold + found)) if gold + found else 0.0
    return statistic


class TaggerKind(ModelKind):
    """The transducer: an RNN sequence tagger (see rnntool/training/kind.py for the contract)."""

    name, command, spec_type, temp_prefix = "tagger", "train tag", TagRunSpec, "rnntool-tag-"

    def check_model(self, spec: TagRunSpec) -> None:
        from rnntool.kinds.tagger.model import RNNTagger, TaggerConfig
        from rnntool.layers.weights import abstract_model, check_fits

        cfg = TaggerConfig(vocab_size=1, char_vocab_size=1, num_tags=2, **spec.model)
        check_fits(abstract_model(lambda: RNNTagger(cfg)), training=True,
                   hint="lower --hidden-dim, --embed-dim or --layers")

    def prepare_inputs(self, spec: TagRunSpec, work_dir: Path, log: Log) -> TagRunSpec:

        return prepare_train_valid(spec, work_dir, log, what="sentences")

    def warm_start(self, spec: TagRunSpec, registry, ref: str, log: Log):
        from rnntool.training.retrain import adopt_architecture

        parent = registry.load(ref, kind="tagger")
        adopt_architecture(spec, parent, dict(parent.config.get("model") or {}),
                           derived=("vocab_size", "char_vocab_size", "num_tags"),
                           describe="{cell}, {layers}x{hidden_dim}", log=log)
        return parent, dataclasses.replace(spec, model=dict(spec.model))

    def key_settings(self, spec: TagRunSpec, train_cfg, registry, parent) -> dict:
        from rnntool.training.retrain import model_settings

        return model_settings("tagger", spec, train_cfg, registry, parent, tokenizer_fields=(),
                              runtime_fields=("train", "valid"))

    def build(self, spec: TagRunSpec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        from rnntool.kinds.tagger.model import RNNTagger
        from rnntool.kinds.tagger.task import TaggerTask, Vocabulary, bio_scheme
        from rnntool.layers.weights import build_model, load_weights
        from rnntool.training.checkpoint import has_checkpoint
        from rnntool.training.trainer import seed_everything

        train, valid = read_splits(spec, ctx.log)
        if parent is not None:
            vocab = Vocabulary.from_dict(json.loads(parent.file(VOCAB_FILE).read_text(encoding="utf-8")))
            unknown = sorted({t for s in [*train, *valid] for t in s.tags} - set(vocab.tags))
            if unknown:
                raise BadInput(f"{spec.train}: tag {unknown[0]!r} is not one of {parent.ref}'s; train a new tagger "
                               "without --init-from")
        else:
            vocab = Vocabulary.build(train, min_count=spec.min_count, lowercase=spec.lowercase)
        scheme = bio_scheme(vocab.tags) if spec.scheme == "auto" else spec.scheme
        if spec.select == "span_f1" and scheme is None:
            raise UsageError(f"--select span-f1: the tags of {spec.train} are not BIO-style (B-X, I-X, O); "
                             "select accuracy, or give --scheme")
        constraints = scheme if spec.model.get("crf") else None
        if constraints is not None:
            broken = first_broken(train, vocab.tags, constraints)
            if broken is not None:
                ctx.warn(f"{spec.train}:{broken.line}: a tag sequence {constraints} does not allow (and maybe more); "
                         "the CRF learns its transitions without constraints")
                constraints = None
        cfg = model_config(spec, vocab, constraints=constraints)
        seed_everything(train_cfg.seed)
        model = build_model(lambda: RNNTagger(cfg, vocab.tags), training=True)
        if parent is not None and not (ctx.resume and has_checkpoint(ctx.run_dir)):
            load_weights(model, parent.file(WEIGHTS_FILE), "cpu")
        task = TaggerTask(model, train, valid, vocab, batch_size=spec.batch_size, seed=train_cfg.seed, scheme=scheme)
        words = sum(len(s.tokens) for s in train)
        unknown = sum(vocab.unknown_words(s.tokens) for s in valid)
        valid_words = sum(len(s.tokens) for s in valid)
        ctx.log(f"{len(train)} training sentences ({words} words), {len(valid)} validation sentences "
                f"({valid_words} words, {unknown} not in the {len(vocab.words)}-word vocabulary), "
                f"{len(vocab.tags)} tags" + (f" ({scheme} spans)" if scheme else ""))
        data_config = {"tags": vocab.tags, "scheme": scheme, "format": spec.format, "select": spec.select,
                       "train_sentences": len(train), "train_words": words, "valid_sentences": len(valid),
                       "valid": spec.valid, "valid_fraction": None if spec.valid else spec.valid_fraction,
                       "min_count": spec.min_count, "lowercase": spec.lowercase, "max_len": spec.max_len}
        details = {"data": {k: data_config[k] for k in ("tags", "scheme", "train_sentences", "valid_sentences")}}
        return Trainee(spec, model, task, cfg.to_dict(), data_config, details,
                       state={"vocab": vocab, "valid": valid, "scheme": scheme})

    def input_tables(self, trainee: Trainee) -> list:
        return [("word", trainee.model.word_embedding, ["<pad>", "<unk>", *trainee.state["vocab"].words])]

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        from rnntool.layers.weights import save_weights

        save_weights(trainee.model, stage / WEIGHTS_FILE)
        (stage / VOCAB_FILE).write_text(json.dumps(trainee.state["vocab"].to_dict(), ensure_ascii=False),
                                        encoding="utf-8")

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        from rnntool.kinds.tagger.predict import open_tagger
        from rnntool.kinds.tagger.task import tag_sentences
        from rnntool.evaluation.bootstrap import paired_bootstrap
        from rnntool.training.retrain import decide, first_promotion

        spec, st = trainee.spec, trainee.state
        key = spec.select if st["scheme"] is not None else "accuracy"
        metric = f"val_{key}"
        sents = [s for s in st["valid"] if s.tokens]
        gold = [list(s.tags) for s in sents]
        model = trainee.model
        was = model.training
        model.eval()
        import torch

        with torch.inference_mode():
            new_pred, _ = tag_sentences(model, st["vocab"], [s.tokens for s in sents])
        model.train(was)
        new_counts = sentence_counts(gold, new_pred, st["scheme"])
        current = registry.aliases(spec.name).get(retrain.promote)
        if current is None:
            return first_promotion(retrain.promote, metric, True, metric_of(new_counts, key)(slice(None)))
        old_ref = f"{spec.name}@{current}"
        old = open_tagger(old_ref, registry.root)
        old_pred = [t.tags for t in old.stream([s.tokens for s in sents], batch_size=64)]
        old_counts = sentence_counts(gold, old_pred, st["scheme"])
        test = paired_bootstrap(metric_of(old_counts, key), metric_of(new_counts, key), len(sents))
        log(f"promotion check on {len(sents)} validation sentences: {key} new {test['score_b']:.4f} vs {old_ref} "
            f"{test['score_a']:.4f} (paired bootstrap p={test['p_value']:.3f})")
        return decide(retrain.promote, metric, higher_is_better=True, new_score=test["score_b"],
                      old_score=test["score_a"], old_ref=old_ref, min_delta=retrain.min_delta, p_value=test["p_value"])

    def summary(self, outcome) -> tuple[dict, str]:
        from rnntool.training.reporting import summary_number

        b, r, m = outcome.bundle, outcome.result, outcome.bundle.metrics
        spans = f", span F1 {summary_number(m.get('val_span_f1'))}" if "val_span_f1" in m else ""
        line = (f"{'published' if b.version is not None else 'wrote'} {b.ref}: val accuracy "
                f"{summary_number(m.get('val_accuracy'))}{spans}, loss {summary_number(m.get('val_loss'))} "
                f"({r.steps} steps, stopped by {r.stop_reason})")
        return {"data": outcome.details.get("data")}, line


KIND = TaggerKind()
