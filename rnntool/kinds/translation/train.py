"""The encoder-decoder kind (`rnntool train translate` without the CLI): parallel data + tokenizers
-> TranslationTask -> the one training loop -> a ``translation`` bundle.

    spec = TranslationRunSpec(src="train.en", tgt="train.de", valid_src="val.en", valid_tgt="val.de",
                              name="en-de", model={"attention": "general", ...}).check()
    outcome = train_model(KIND, spec, train_cfg, RunContext(registry, run_dir=Path("runs/x")))
    outcome.bundle.ref                                   # "en-de@1" (rank 0 only)

The ModelKind contract is in rnntool/training/kind.py; the driver in rnntool/training/driver.py.

Order of work (each step can fail before the costlier next one): options checked; data fingerprinted
(stdin spooled first); ``--if-changed`` may stop here; both sides read (line counts compared, UTF-8
validated); tokenizers resolved or trained; pairs tokenized and filtered by ``max_len``; training;
publishing. Everything a resume needs is the spec,
saved in the run directory's ``run.json``; tokenizers live in the run directory, so a resumed run
uses the very files it started with.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, CheckpointError, ConfigError, UsageError
from rnntool.kinds.catalog import SHORTLIST_FILE, WEIGHTS_FILE
from rnntool.kinds.translation.retrain import translation_promotion, translation_settings, warm_start_parent
from rnntool.tokenizers.sentencepiece import SIDE_FILES, Tokenizer
from rnntool.tokenizers.training import train_tokenizer
from rnntool.training.driver import publish_tokenizer
from rnntool.training.inputs import data_fingerprints
from rnntool.training.kind import ModelKind, Trainee
from rnntool.training.publishing import check_destination

Log = Callable[[str], None]
SELECT_METRICS = ("bleu", "loss")
JOINT_TOKENIZER_FILE = "tokenizer.joint.model"  # in the run directory; copied to both sides in the bundle


@dataclass
class TranslationRunSpec:
    """What to train on and what to build; JSON-able (it is the run's ``run_meta``)."""

    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None  # instead of src + tgt: "source<TAB>target" lines
    valid_src: str | None = None
    valid_tgt: str | None = None
    valid_fraction: float = 0.05  # without valid files: hold out this fraction (at most VALID_MAX_LINES)
    name: str | None = None  # publish under this name ...
    output: str | None = None  # ... or write the bundle to this directory
    model: dict = field(default_factory=dict)  # Seq2SeqConfig fields except the vocabulary sizes
    tokenizer: str | None = None  # -t REF: one tokenizer for both sides
    src_tokenizer: str | None = None
    tgt_tokenizer: str | None = None
    vocab_size: int = 8000  # tokenizers trained on the fly
    joint_vocab: bool = False
    model_type: str = "bpe"
    max_len: int = 100
    batch_tokens: int = 4096
    label_smoothing: float = 0.1
    sample_alpha: float = 0.0  # subword regularisation: > 0 samples each epoch's segmentations
    select: str = "bleu"
    on_bad_utf8: str = "strict"
    init_from: str | None = None  # --init-from: the resolved parent (name@version)
    fingerprints: list[dict] = field(default_factory=list)  # train (+ valid) files, before training
    run_id: str | None = None  # set when the run starts; recorded in what it publishes
    promote: str | None = None  # --promote/--min-delta, so that --resume does them too
    min_delta: float = 0.0
    init_embeddings: str | None = None  # --init-embeddings FILE (rnntool/vectors/pretrained.py)
    freeze_embeddings: bool = False

    VALID_MAX_LINES = 1000

    def check(self) -> "TranslationRunSpec":
        check_destination(self.name, self.output)
        if self.tsv is not None and (self.src is not None or self.tgt is not None):
            raise UsageError("give either --tsv FILE or --src FILE --tgt FILE, not both")
        if self.tsv is None and (self.src is None or self.tgt is None):
            raise UsageError("no training data: give --src FILE and --tgt FILE (aligned lines), or --tsv FILE")
        if (self.valid_src is None) != (self.valid_tgt is None):
            raise UsageError("give both --valid-src and --valid-tgt, or neither (then part of the data is held out)")
        if self.valid_src is None and not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (got {self.valid_fraction})")
        if self.tokenizer is not None and (self.src_tokenizer or self.tgt_tokenizer):
            raise UsageError("-t/--tokenizer serves both sides; drop --src-tokenizer/--tgt-tokenizer")
        if (self.src_tokenizer is None) != (self.tgt_tokenizer is None):
            raise UsageError("give both --src-tokenizer and --tgt-tokenizer (or -t for one shared tokenizer)")
        if self.src_tokenizer is not None and self.joint_vocab:
            raise UsageError("--joint-vocab trains one tokenizer; with two given tokenizers drop it")
        if self.max_len < 1:
            raise ConfigError(f"--max-len must be at least 1 (got {self.max_len})")
        if self.batch_tokens < 1:
            raise ConfigError(f"--batch-tokens must be at least 1 (got {self.batch_tokens})")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})")
        if not 0.0 <= self.sample_alpha <= 1.0:
            raise ConfigError(f"--sample-alpha must be in [0, 1] (got {self.sample_alpha}); 0 turns sampling off")
        if self.select not in SELECT_METRICS:
            raise ConfigError(f"--select must be one of {', '.join(SELECT_METRICS)} (got {self.select!r})")
        return self

    @property
    def label(self) -> str:
        return self.name or Path(self.output).name

    @property
    def shared_tokenizer(self) -> bool:
        return self.joint_vocab or self.tokenizer is not None

    @property
    def train_files(self) -> list[str]:
        return [self.tsv] if self.tsv is not None else [self.src, self.tgt]

    @property
    def valid_files(self) -> list[str]:
        return [self.valid_src, self.valid_tgt] if self.valid_src is not None else []


@dataclass
class Corpora:
    train_src: list[str]
    train_tgt: list[str]
    valid_src: list[str]
    valid_tgt: list[str]


# -- data ------------------------------------------------------------------------------------------
def prepare_inputs(spec: TranslationRunSpec, work_dir: Path, log: Log) -> TranslationRunSpec:
    """The spec with ``--tsv -`` spooled into ``work_dir`` (so it can be fingerprinted and resumed),
    paths absolute and the data fingerprints taken: all that ``--if-changed`` needs, without reading
    pairs."""
    from rnntool.training.distributed import env_world_size
    from rnntool.textio import fingerprint_file, is_stdin, spool_stdin

    tsv = spec.tsv
    if tsv is not None and is_stdin(tsv):
        if env_world_size() > 1:
            raise UsageError("a distributed run cannot read stdin; give the training pairs as files")
        log("reading training pairs from stdin")
        tsv = str(spool_stdin(work_dir, on_bad_utf8=spec.on_bad_utf8))
    if tsv is None and (is_stdin(spec.src) or is_stdin(spec.tgt)):
        raise UsageError("--src and --tgt must be files; for stdin use --tsv - with 'source<TAB>target' lines")
    paths = {attr: getattr(spec, attr) for attr in ("src", "tgt", "valid_src", "valid_tgt")} | {"tsv": tsv}
    spec = dataclasses.replace(spec, **{k: str(Path(v).resolve()) if v is not None else None for k, v in paths.items()})
    roles = ["train"] if spec.tsv is not None else ["train-src", "train-tgt"]
    files = [*zip(spec.train_files, roles), *zip(spec.valid_files, ["valid-src", "valid-tgt"])]
    return dataclasses.replace(spec, fingerprints=[{**fingerprint_file(p), "role": role} for p, role in files])


def read_corpora(spec: TranslationRunSpec, log: Log) -> Corpora:
    """Read and check every text file (line counts, UTF-8); hold out validation pairs if needed."""
    from rnntool.kinds.translation.data import read_parallel, read_tsv

    if spec.tsv is not None:
        src, tgt = read_tsv(spec.tsv, on_bad_utf8=spec.on_bad_utf8)
    else:
        src, tgt = read_parallel(spec.src, spec.tgt, on_bad_utf8=spec.on_bad_utf8)
    if spec.valid_src is not None:
        valid_src, valid_tgt = read_parallel(spec.valid_src, spec.valid_tgt, on_bad_utf8=spec.on_bad_utf8)
    else:
        held = min(max(1, round(len(src) * spec.valid_fraction)), spec.VALID_MAX_LINES)
        if len(src) - held < 1:
            raise BadInput(f"{len(src)} sentence pairs are too few to hold out validation pairs; "
                           "give more data or --valid-src/--valid-tgt")
        src, valid_src = src[:-held], src[-held:]
        tgt, valid_tgt = tgt[:-held], tgt[-held:]
        log(f"holding out the last {held} pairs for validation (give --valid-src/--valid-tgt to choose)")
    return Corpora(src, tgt, valid_src, valid_tgt)


# -- tokenizers ------------------------------------------------------------------------------------
def _registry_tokenizer(registry, ref: str) -> tuple[Tokenizer, str]:
    bundle = registry.load(ref, kind=("tokenizer", "lm"))
    tok = Tokenizer.from_bundle(bundle)
    tok.require_rnntool_ids()
    return tok, bundle.ref if bundle.version is not None else str(bundle.path)


def resolve_tokenizers(spec: TranslationRunSpec, corpora: Corpora, registry, work_dir: Path, resume: bool,
                       log: Log, warn: Log) -> tuple[Tokenizer, Tokenizer, dict]:
    """(src tokenizer, tgt tokenizer, registry refs) with their files in ``work_dir``.

    A resumed run finds its files there; ``-t``/``--src-tokenizer``/``--tgt-tokenizer`` are copied in;
    otherwise tokenizers are trained on the training pairs (byte fallback on): one on both sides with
    ``--joint-vocab``, else one per side."""
    joint = work_dir / JOINT_TOKENIZER_FILE
    sides = {side: work_dir / f for side, f in SIDE_FILES.items()}
    if resume:  # the files the run started with (and spec holds the refs it resolved then)
        missing = [p for p in ([joint] if spec.shared_tokenizer else sides.values()) if not p.exists()]
        if missing:
            raise CheckpointError(f"{missing[0]}: missing from the run directory; start a new run instead")
    elif spec.tokenizer is not None:
        tok, spec.tokenizer = _registry_tokenizer(registry, spec.tokenizer)  # "spm" -> "spm@3"
        shutil.copyfile(tok.path, joint)
    elif spec.src_tokenizer is not None:
        for side in ("src", "tgt"):
            tok, ref = _registry_tokenizer(registry, getattr(spec, f"{side}_tokenizer"))
            setattr(spec, f"{side}_tokenizer", ref)
            shutil.copyfile(tok.path, sides[side])
    else:
        texts = {"src": corpora.train_src, "tgt": corpora.train_tgt}
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            files = {}
            for side, lines in texts.items():  # the training side only: no validation text leaks in
                files[side] = Path(tmp) / f"train.{side}"
                files[side].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            kw = dict(vocab_size=spec.vocab_size, model_type=spec.model_type, on_log=log, on_warning=warn)
            if spec.joint_vocab:
                train_tokenizer([files["src"], files["tgt"]], joint, **kw)
            else:
                for side in ("src", "tgt"):
                    train_tokenizer([files[side]], sides[side], **kw)
    refs = ({"tokenizer": spec.tokenizer} if spec.tokenizer is not None else
            {"src_tokenizer": spec.src_tokenizer, "tgt_tokenizer": spec.tgt_tokenizer}
            if spec.src_tokenizer is not None else {})
    if spec.shared_tokenizer:
        tok = Tokenizer.load(joint)
        return tok, tok, refs
    return Tokenizer.load(sides["src"]), Tokenizer.load(sides["tgt"]), refs


def publish_tokenizers(spec: TranslationRunSpec, registry, work_dir: Path, refs: dict) -> dict:
    """Tokenizers trained on the fly become registry entries (``<name>-tokenizer``, or
    ``<name>-src-tokenizer`` and ``<name>-tgt-tokenizer``) so the model's parents can name them."""
    if refs or spec.name is None:
        return refs
    if spec.shared_tokenizer:
        return {"tokenizer": publish_tokenizer(registry, spec.name, work_dir / JOINT_TOKENIZER_FILE,
                                               data_fingerprints(spec))}
    return {f"{side}_tokenizer": publish_tokenizer(registry, f"{spec.name}-{side}", work_dir / SIDE_FILES[side],
                                                   data_fingerprints(spec), trained_for=spec.name)
            for side in ("src", "tgt")}


# -- the kind ----------------------------------------------------------------------------------------
def model_config(spec: TranslationRunSpec, src_vocab: int, tgt_vocab: int):
    """The Seq2SeqConfig for this run (a joint vocabulary shares one embedding table)."""
    from rnntool.kinds.translation.model import Seq2SeqConfig

    return Seq2SeqConfig(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab,
                         share_embeddings=spec.shared_tokenizer, **spec.model)


def check_model_settings(spec: TranslationRunSpec) -> None:
    """The model settings, checked before any data is read (a typo or an absurd size fails fast)."""
    from rnntool.kinds.translation.model import Seq2Seq
    from rnntool.layers.weights import abstract_model, check_fits

    vocab = spec.vocab_size if spec.tokenizer is None and spec.src_tokenizer is None else 1
    cfg = model_config(spec, vocab, vocab)
    check_fits(abstract_model(lambda: Seq2Seq(cfg)), training=True,
               hint="lower --hidden-dim, --embed-dim, --layers or --vocab-size")


class TranslationKind(ModelKind):
    """The encoder-decoder: an attention translation model (see rnntool/training/kind.py)."""

    name, command, spec_type, temp_prefix = "translation", "train translate", TranslationRunSpec, "rnntool-translate-"

    def check_model(self, spec: TranslationRunSpec) -> None:
        check_model_settings(spec)

    def prepare_inputs(self, spec: TranslationRunSpec, work_dir: Path, log: Log) -> TranslationRunSpec:
        return prepare_inputs(spec, work_dir, log)

    def warm_start(self, spec: TranslationRunSpec, registry, ref: str, log: Log):
        spec = dataclasses.replace(spec, model=dict(spec.model))
        return warm_start_parent(spec, registry, ref, log), spec

    def key_settings(self, spec: TranslationRunSpec, train_cfg, registry, parent) -> dict:
        return translation_settings(spec, train_cfg, registry, parent)

    def build(self, spec: TranslationRunSpec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        from rnntool.kinds.translation.data import ParallelData, SampledSegmentations
        from rnntool.kinds.translation.model import Seq2Seq
        from rnntool.kinds.translation.task import TranslationTask
        from rnntool.layers.weights import build_model, load_weights
        from rnntool.training.checkpoint import has_checkpoint
        from rnntool.training.trainer import seed_everything

        log = ctx.log
        corpora = read_corpora(spec, log)  # line counts and UTF-8 are checked here, before tokenizers
        spec = dataclasses.replace(spec)  # resolve_tokenizers records the references it resolved in it
        src_tok, tgt_tok, refs = resolve_tokenizers(spec, corpora, ctx.registry, work_dir, ctx.resume, log, ctx.warn)
        train_data = ParallelData.from_lines(corpora.train_src, corpora.train_tgt, src_tok.encode_batch,
                                             tgt_tok.encode_batch, max_len=spec.max_len)
        valid_data = ParallelData.from_lines(corpora.valid_src, corpora.valid_tgt, src_tok.encode_batch,
                                             tgt_tok.encode_batch, keep_all=True)
        data_summary = {
            "pairs": len(train_data), "dropped_long": train_data.dropped_long,
            "dropped_empty": train_data.dropped_empty, "src_tokens": train_data.src_tokens,
            "tgt_tokens": train_data.tgt_tokens, "valid_pairs": len(valid_data), "max_len": spec.max_len,
            "batch_tokens": spec.batch_tokens, "label_smoothing": spec.label_smoothing, "select": spec.select,
            "sample_alpha": spec.sample_alpha,
        }
        dropped = ""
        if train_data.dropped_long:
            dropped += f"; dropped {train_data.dropped_long} pairs longer than --max-len {spec.max_len}"
        if train_data.dropped_empty:
            dropped += f"; dropped {train_data.dropped_empty} pairs with an empty side"
        log(f"{len(train_data)} training pairs ({train_data.src_tokens} source, {train_data.tgt_tokens} target "
            f"tokens), {len(valid_data)} validation pairs{dropped}")
        cfg = model_config(spec, src_tok.vocab_size, tgt_tok.vocab_size)
        seed_everything(train_cfg.seed)
        model = build_model(lambda: Seq2Seq(cfg), training=True)
        # a warm start begins from the parent (so does a resume of a run killed before its first checkpoint)
        if parent is not None and not (ctx.resume and has_checkpoint(ctx.run_dir)):
            load_weights(model, parent.file(WEIGHTS_FILE), "cpu")
        resample = None
        if spec.sample_alpha:
            alpha = spec.sample_alpha
            resample = SampledSegmentations(
                corpora.train_src, corpora.train_tgt, train_data.kept,
                lambda lines, seed: src_tok.sample_batch(lines, alpha, seed),
                lambda lines, seed: tgt_tok.sample_batch(lines, alpha, seed), seed=train_cfg.seed).for_epoch
            log(f"subword regularisation: each epoch samples new segmentations of both sides (--sample-alpha {alpha})")
        task = TranslationTask(model, train_data, batch_tokens=spec.batch_tokens, seed=train_cfg.seed,
                               label_smoothing=spec.label_smoothing, valid_data=valid_data,
                               valid_refs=corpora.valid_tgt, detokenize=tgt_tok.decode, resample=resample)
        return Trainee(spec, model, task, cfg.to_dict(), data_summary,
                       {"tokenizers": refs, "data": data_summary},
                       state={"src": src_tok, "tgt": tgt_tok, "corpora": corpora, "train_data": train_data})

    def input_tables(self, trainee: Trainee) -> list:
        model, src, tgt = trainee.model, trainee.state["src"], trainee.state["tgt"]
        if model.cfg.share_embeddings:  # one table for both sides
            return [("shared", model.encoder.embedding, src.pieces())]
        return [("source", model.encoder.embedding, src.pieces()), ("target", model.decoder.embedding, tgt.pieces())]

    def publish_parents(self, trainee: Trainee, registry, work_dir: Path) -> dict:
        refs = publish_tokenizers(trainee.spec, registry, work_dir, trainee.details["tokenizers"])
        trainee.details["tokenizers"] = refs
        return dict(refs)

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        from rnntool.kinds.translation.shortlist import build_lexical_table
        from rnntool.layers.weights import save_weights, unwrap_model

        save_weights(trainee.model, stage / WEIGHTS_FILE)
        for name in SIDE_FILES.values():
            source = work_dir / (JOINT_TOKENIZER_FILE if trainee.spec.shared_tokenizer else name)
            shutil.copyfile(source, stage / name)
        data, cfg = trainee.state["train_data"], unwrap_model(trainee.model).cfg  # the lexical table for `translate --shortlist`
        build_lexical_table([data.source(i) for i in range(len(data))], [data.target(i) for i in range(len(data))],
                            cfg.src_vocab_size, cfg.tgt_vocab_size).save(stage / SHORTLIST_FILE)

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        st = trainee.state
        return translation_promotion(trainee.spec, registry, trainee.model, st["src"], st["tgt"],
                                     st["corpora"].valid_src, st["corpora"].valid_tgt, retrain, log)

    def summary(self, outcome) -> tuple[dict, str]:
        from rnntool.training.reporting import summary_number

        b, r, m = outcome.bundle, outcome.result, outcome.bundle.metrics
        fields = {"tokenizers": outcome.details.get("tokenizers"), "data": outcome.details.get("data")}
        verb = "published" if b.version is not None else "wrote"
        line = (f"{verb} {b.ref}: val BLEU {summary_number(m.get('val_bleu'))}, loss {summary_number(m.get('val_loss'))}, "
                f"ppl {summary_number(m.get('val_ppl'))} ({r.steps} steps, {summary_number(m.get('tokens_per_s'))} tok/s, "
                f"stopped by {r.stop_reason})")
        return fields, line


KIND = TranslationKind()
