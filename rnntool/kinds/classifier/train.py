"""The acceptor kind (`rnntool train classify` without the CLI): labelled text -> ClassifierTask -> the
one training loop -> a ``classifier`` bundle.

    spec = ClassifyRunSpec(train="train.tsv", valid="dev.tsv", name="sst2", model={"pooling": "max"}).check()
    outcome = train_model(KIND, spec, train_cfg, RunContext(registry, run_dir=Path("runs/x")))

The ModelKind contract is in rnntool/training/kind.py; the driver in rnntool/training/driver.py.
``--init-from`` takes a classifier (a warm start: its architecture, tokenizer and labels) or a
language model (transfer, ULMFiT-style: its tokenizer, cell and sizes, its embedding and recurrent
weights; the output layers start fresh, and ``--pretrained-lr-scale``/``--unfreeze-every`` slow
down or hold the pretrained layers at first). The bundle's ``config.data`` holds the labels, in the
order of the model's outputs, and how to print them (``label_prefix``).
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, UsageError
from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE, Tokenizer
from rnntool.training.driver import publish_run_tokenizer
from rnntool.training.kind import ModelKind, Trainee
from rnntool.training.publishing import check_destination
from rnntool.training.inputs import TrainValidFiles, prepare_train_valid

Log = Callable[[str], None]
SELECT_METRICS = ("accuracy", "macro_f1")
CLASS_WEIGHTS = ("none", "balanced")
HOLDOUT_SEED = 12345  # which examples a run without --valid holds out (not --seed: the split stays put)
ARCHITECTURE = ("cell", "layers", "embed_dim", "hidden_dim", "bidirectional")  # what an LM fixes


@dataclass
class ClassifyRunSpec(TrainValidFiles):
    """What to train on and what to build; JSON-able (it is the run's ``run_meta``)."""

    train: str | None = None
    valid: str | None = None
    valid_fraction: float = 0.1  # without --valid: hold out this fraction (at most VALID_MAX), at random
    format: str = "auto"
    text_column: str | None = None
    label_column: str | None = None
    name: str | None = None
    output: str | None = None
    model: dict = field(default_factory=dict)  # ClassifierConfig settings given (the rest: its defaults)
    tokenizer: str | None = None  # -t REF; None: train one (or the --init-from model's)
    vocab_size: int = 8000
    model_type: str = "bpe"
    max_len: int = 256  # pieces read of each text
    batch_size: int = 32
    class_weights: str = "none"
    threshold: float = 0.5  # multi-label: classes at or above it are predicted
    select: str = "accuracy"
    pretrained_lr_scale: float = 1.0  # --init-from a language model: its layers' rate multiplier
    unfreeze_every: int = 0  # ... and steps between unfreezing one more of them (0: all from the start)
    on_bad_utf8: str = "strict"
    labels: list[str] = field(default_factory=list)  # resolved from the data (or the warm-start parent)
    init_from: str | None = None
    fingerprints: list[dict] = field(default_factory=list)
    run_id: str | None = None
    promote: str | None = None
    min_delta: float = 0.0
    init_embeddings: str | None = None  # --init-embeddings FILE (rnntool/vectors/pretrained.py)
    freeze_embeddings: bool = False

    VALID_MAX = 5000

    def check(self) -> "ClassifyRunSpec":
        from rnntool.kinds.classifier.data import FORMATS

        check_destination(self.name, self.output)
        if self.train is None:
            raise UsageError("no training data: give a labelled file, or '-' for stdin")
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        if self.valid is None and not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (got {self.valid_fraction}), or give --valid FILE")
        if self.max_len < 1 or self.batch_size < 1:
            raise ConfigError("--max-len and --batch-size must be positive")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ConfigError(f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)} (got {self.class_weights!r})")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be between 0 and 1 (got {self.threshold})")
        if self.select not in SELECT_METRICS:
            raise ConfigError(f"--select must be one of accuracy, macro-f1 (got {self.select!r})")
        if not 0.0 < self.pretrained_lr_scale <= 1.0:
            raise ConfigError(f"--pretrained-lr-scale must be in (0, 1] (got {self.pretrained_lr_scale})")
        if self.unfreeze_every < 0:
            raise ConfigError(f"--unfreeze-every must be 0 or more steps (got {self.unfreeze_every})")
        return self


def architecture(spec: ClassifyRunSpec) -> dict:
    """Every ClassifierConfig setting but the sizes the data decides: the given ones over the defaults."""
    from rnntool.kinds.classifier.model import ClassifierConfig

    defaults = {f.name: f.default for f in dataclasses.fields(ClassifierConfig)
                if f.name not in ("vocab_size", "num_classes")}
    return {**defaults, **spec.model}


def model_config(spec: ClassifyRunSpec, vocab_size: int, num_classes: int, multi_label: bool):
    from rnntool.kinds.classifier.model import ClassifierConfig

    return ClassifierConfig(vocab_size=vocab_size, num_classes=num_classes,
                            **{**architecture(spec), "multi_label": multi_label})


# -- data ------------------------------------------------------------------------------------------
@dataclass
class Splits:
    train: object  # rnntool.kinds.classifier.data.LabelledData
    valid_texts: list[str]
    valid_gold: list[tuple[str, ...]]
    label_prefix: bool  # the training file wrote labels as __label__NAME (fastText): print them so


def read_splits(spec: ClassifyRunSpec, log: Log) -> Splits:
    """The training examples and the validation examples (``--valid``, or a seeded random hold-out)."""
    from rnntool.kinds.classifier.data import check_known_labels, read_labelled

    kw = dict(format=spec.format, text_column=spec.text_column, label_column=spec.label_column,
              on_bad_utf8=spec.on_bad_utf8)
    data = read_labelled(spec.train, **kw)
    if spec.valid is not None:
        valid = read_labelled(spec.valid, min_classes=1, **kw)
        check_known_labels(valid, data.labels)
        texts, gold = [e.text for e in valid.examples], [e.labels for e in valid.examples]
    else:
        held = min(max(1, round(len(data.examples) * spec.valid_fraction)), spec.VALID_MAX)
        if len(data.examples) - held < 2:
            raise BadInput(f"{data.source}: {len(data.examples)} examples are too few to hold out validation "
                           "examples; give more data or --valid FILE")
        order = list(range(len(data.examples)))
        random.Random(HOLDOUT_SEED).shuffle(order)
        out = set(order[:held])
        left = {label for i, e in enumerate(data.examples) if i not in out for label in e.labels}
        for i in sorted(out):  # a class held out whole goes back to training (one example of it)
            if not set(data.examples[i].labels) <= left:
                out.discard(i)
                left.update(data.examples[i].labels)
        texts = [data.examples[i].text for i in sorted(out)]
        gold = [data.examples[i].labels for i in sorted(out)]
        data = dataclasses.replace(data, examples=[e for i, e in enumerate(data.examples) if i not in out])
        log(f"holding out {len(out)} random examples for validation (give --valid FILE to choose)")
    return Splits(data, texts, gold, data.format == "fasttext")


# -- tokenizer and warm starts --------------------------------------------------------------------
def resolve_tokenizer(spec: ClassifyRunSpec, texts: list[str], registry, work_dir: Path, resume: bool, log: Log,
                      warn: Log) -> tuple[Tokenizer, str | None]:
    """The run's tokenizer (its file in ``work_dir``) and its registry reference, if any."""
    from rnntool.tokenizers.training import train_tokenizer

    local = work_dir / TOKENIZER_FILE
    if resume:
        return Tokenizer.load(local), spec.tokenizer
    if spec.tokenizer is not None:
        bundle = registry.load(spec.tokenizer, kind=tokenizer_kinds())
        tok = Tokenizer.from_bundle(bundle)
        tok.require_rnntool_ids()
        shutil.copyfile(tok.path, local)
        return Tokenizer.load(local), bundle.ref if bundle.version is not None else str(bundle.path)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:  # the training texts only: no validation text
        text_file = Path(tmp) / "train.txt"
        text_file.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        tok = train_tokenizer([text_file], local, vocab_size=spec.vocab_size, model_type=spec.model_type,
                              on_log=log, on_warning=warn)
    return Tokenizer.load(local), None


def tokenizer_kinds() -> tuple[str, ...]:
    """The kinds whose bundles carry one tokenizer a classifier can read with (the catalog says)."""
    from rnntool.kinds.catalog import CATALOG

    return tuple(k for k, e in CATALOG.items() if e.tokenizer_files == (TOKENIZER_FILE,))


def lm_kind_name() -> str:
    """The language-model kind, whose embeddings and recurrent layers can start a classifier."""
    from rnntool.kinds.lm.train import KIND as LM_KIND

    return LM_KIND.name


def warm_start(spec: ClassifyRunSpec, registry, ref: str, log: Log):
    """``(parent, spec)`` for ``--init-from REF``: a classifier (its architecture, tokenizer and labels)
    or a language model (its tokenizer, cell and sizes, unidirectional)."""
    from rnntool.kinds.lm.retrain import warm_start_parent as lm_tokenizer_check

    parent = registry.load(ref, kind=(ClassifierKind.name, lm_kind_name()))
    model = dict(spec.model)
    if parent.kind != ClassifierKind.name:  # a language model: transfer its encoder
        lm = parent.config.get("model") or {}
        wanted = {"cell": lm.get("cell"), "layers": lm.get("layers"), "embed_dim": lm.get("embed_dim"),
                  "hidden_dim": lm.get("hidden_dim"), "bidirectional": False}
        clash = [f"--{k.replace('_', '-')} {model[k]}" for k in ARCHITECTURE if k in model and model[k] != wanted[k]]
        if clash:
            raise UsageError(
                f"--init-from {parent.ref}: the language model is a unidirectional {wanted['cell']}, "
                f"{wanted['layers']}x{wanted['hidden_dim']} with {wanted['embed_dim']}-wide embeddings; "
                f"drop {', '.join(clash)} (the classifier takes its architecture)")
        probe = dataclasses.replace(spec, model={})
        lm_tokenizer_check(probe, registry, ref, log=lambda msg: None)  # -t must be the LM's tokenizer
        log(f"--init-from {parent.ref}: its tokenizer, embeddings and {wanted['cell']} layers "
            f"({wanted['layers']}x{wanted['hidden_dim']}, unidirectional); the output layers start fresh")
        spec = dataclasses.replace(spec, model={**model, **wanted}, tokenizer=probe.tokenizer, init_from=parent.ref)
        return parent, spec
    from rnntool.training.retrain import adopt_architecture, tokenizer_sha

    if spec.tokenizer is not None and tokenizer_sha(registry, spec.tokenizer) != \
            parent.files.get(TOKENIZER_FILE, {}).get("sha256"):
        raise BadInput(f"tokenizer mismatch: {spec.tokenizer} is not the tokenizer of {parent.ref}; a warm start "
                       "keeps the vocabulary — drop -t")
    parent_model = {k: v for k, v in (parent.config.get("model") or {}).items()}
    labels = list((parent.config.get("data") or {}).get("labels") or [])
    adopt_architecture(spec, parent, parent_model, derived=("vocab_size", "num_classes", "multi_label"),
                       describe="{cell}, {layers}x{hidden_dim}, {pooling} pooling", log=log)
    spec = dataclasses.replace(spec, model=dict(spec.model), tokenizer=spec.tokenizer or parent.ref, labels=labels)
    return parent, spec


def load_parent_weights(model, parent) -> None:
    """The warm-start parent's weights into ``model``: all of a classifier's; an LM's encoder part."""
    from rnntool.kinds.classifier.model import lm_transfer_weights
    from rnntool.layers.weights import load_weights

    if parent.kind == ClassifierKind.name:
        load_weights(model, parent.file(WEIGHTS_FILE), "cpu")
        return
    from rnntool.kinds.lm.model import load_lm

    lm = load_lm(parent.config["model"], parent.file(WEIGHTS_FILE))
    weights = lm_transfer_weights(lm.state_dict())
    own = model.state_dict()
    wrong = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise BadInput(f"--init-from {parent.ref}: its weights do not fit the classifier ({wrong[0]}); "
                       "train the classifier with the language model's tokenizer and sizes")
    model.load_state_dict(weights, strict=False)


# -- the kind ----------------------------------------------------------------------------------------
class ClassifierKind(ModelKind):
    """The acceptor: an RNN text classifier (see rnntool/training/kind.py for the contract)."""

    name, command, spec_type, temp_prefix = "classifier", "train classify", ClassifyRunSpec, "rnntool-classify-"

    def check_model(self, spec: ClassifyRunSpec) -> None:
        from rnntool.kinds.classifier.model import RNNClassifier
        from rnntool.layers.weights import abstract_model, check_fits

        cfg = model_config(spec, spec.vocab_size if spec.tokenizer is None else 1, 2, False)
        check_fits(abstract_model(lambda: RNNClassifier(cfg)), training=True,
                   hint="lower --hidden-dim, --embed-dim, --layers or --vocab-size")

    def prepare_inputs(self, spec: ClassifyRunSpec, work_dir: Path, log: Log) -> ClassifyRunSpec:

        return prepare_train_valid(spec, work_dir, log, what="examples")

    def warm_start(self, spec: ClassifyRunSpec, registry, ref: str, log: Log):
        return warm_start(spec, registry, ref, log)

    def key_settings(self, spec: ClassifyRunSpec, train_cfg, registry, parent) -> dict:
        from rnntool.training.retrain import model_settings

        settings = model_settings("classifier", dataclasses.replace(spec, model=architecture(spec)), train_cfg,
                                  registry, parent, tokenizer_fields=("tokenizer",),
                                  runtime_fields=("train", "valid", "labels"))
        return settings

    def build(self, spec: ClassifyRunSpec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        from rnntool.kinds.classifier.data import balanced_class_weights
        from rnntool.kinds.classifier.model import RNNClassifier
        from rnntool.kinds.classifier.task import ClassifierTask, EncodedExamples
        from rnntool.layers.weights import build_model
        from rnntool.training.checkpoint import has_checkpoint
        from rnntool.training.trainer import seed_everything

        splits = read_splits(spec, ctx.log)
        data = splits.train
        labels = spec.labels or data.labels
        unknown = sorted((set(data.labels) | {x for g in splits.valid_gold for x in g}) - set(labels))
        if unknown:
            raise BadInput(f"{data.source}: label {unknown[0]!r} is not one of {spec.init_from}'s "
                           f"({', '.join(labels)}); train a new classifier without --init-from")
        multi_label = data.multi_label or any(len(g) != 1 for g in splits.valid_gold)
        if parent is not None and parent.kind == self.name:
            parent_multi = bool((parent.config.get("model") or {}).get("multi_label"))
            if multi_label and not parent_multi:
                raise BadInput(f"{data.source}: examples with several labels, but {parent.ref} is a single-label "
                               "classifier; train a new classifier without --init-from")
            multi_label = parent_multi
        tok, tok_ref = resolve_tokenizer(spec, [e.text for e in data.examples], ctx.registry, work_dir,
                                         ctx.resume, ctx.log, ctx.warn)
        spec = dataclasses.replace(spec, labels=list(labels),
                                   tokenizer=tok_ref if tok_ref is not None else spec.tokenizer)
        encode = dict(encode_batch=tok.encode_batch, max_len=spec.max_len, multi_label=multi_label)
        train_data = EncodedExamples.from_texts([e.text for e in data.examples], [e.labels for e in data.examples],
                                                labels, **encode)
        valid_data = EncodedExamples.from_texts(splits.valid_texts, splits.valid_gold, labels, **encode)
        counts = data.label_counts()
        weights = None
        if spec.class_weights == "balanced":
            if multi_label:  # positives of each class weighted by its negatives / positives
                n = len(data.examples)
                weights = [(n - counts.get(c, 0)) / max(1, counts.get(c, 0)) for c in labels]
            else:
                weights = balanced_class_weights(counts, labels)
        cfg = model_config(spec, tok.vocab_size, len(labels), multi_label)
        seed_everything(train_cfg.seed)
        model = build_model(lambda: RNNClassifier(cfg), training=True)
        if parent is not None and not (ctx.resume and has_checkpoint(ctx.run_dir)):
            load_parent_weights(model, parent)
        transfer = parent is not None and parent.kind != self.name
        pretrained = ({"lr_scale": spec.pretrained_lr_scale, "unfreeze_every": spec.unfreeze_every}
                      if transfer else None)
        task = ClassifierTask(model, train_data, valid_data, labels=labels, batch_size=spec.batch_size,
                              seed=train_cfg.seed, class_weights=weights, threshold=spec.threshold,
                              pretrained=pretrained)
        truncated = f"; {train_data.truncated} texts longer than --max-len {spec.max_len} pieces cut" \
            if train_data.truncated else ""
        ctx.log(f"{len(train_data)} training examples ({train_data.tokens} tokens), {len(valid_data)} validation "
                f"examples, {len(labels)} classes{' (multi-label)' if multi_label else ''}{truncated}")
        data_config = {
            "labels": list(labels), "label_prefix": "__label__" if splits.label_prefix else "",
            "multi_label": multi_label, "threshold": spec.threshold, "max_len": spec.max_len,
            "format": data.format, "select": spec.select, "class_weights": spec.class_weights,
            "label_counts": counts, "train_examples": len(train_data), "valid_examples": len(valid_data),
            "valid": spec.valid, "valid_fraction": None if spec.valid else spec.valid_fraction,
        }
        details = {"tokenizer": tok_ref, "data": {k: data_config[k] for k in
                                                  ("labels", "multi_label", "train_examples", "valid_examples")}}
        return Trainee(spec, model, task, cfg.to_dict(), data_config, details,
                       state={"tokenizer": tok, "valid_texts": splits.valid_texts, "valid_gold": splits.valid_gold})

    def input_tables(self, trainee: Trainee) -> list:
        return [("input", trainee.model.encoder.embedding, trainee.state["tokenizer"].pieces())]

    def publish_parents(self, trainee: Trainee, registry, work_dir: Path) -> dict:
        return publish_run_tokenizer(trainee, registry, work_dir)

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        from rnntool.layers.weights import save_weights

        save_weights(trainee.model, stage / WEIGHTS_FILE)
        shutil.copyfile(work_dir / TOKENIZER_FILE, stage / TOKENIZER_FILE)

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        from rnntool.kinds.classifier.predict import classifier_promotion

        st = trainee.state
        return classifier_promotion(trainee.spec, registry, trainee.model, st["tokenizer"], st["valid_texts"],
                                    st["valid_gold"], retrain, log)

    def summary(self, outcome) -> tuple[dict, str]:
        from rnntool.training.reporting import summary_number

        b, r, m = outcome.bundle, outcome.result, outcome.bundle.metrics
        fields = {"tokenizer": outcome.details.get("tokenizer"), "data": outcome.details.get("data")}
        line = (f"{'published' if b.version is not None else 'wrote'} {b.ref}: val accuracy "
                f"{summary_number(m.get('val_accuracy'))}, macro-F1 {summary_number(m.get('val_macro_f1'))}, "
                f"loss {summary_number(m.get('val_loss'))} ({r.steps} steps, stopped by {r.stop_reason})")
        return fields, line


KIND = ClassifierKind()
