"""`rnntool train lm` without the CLI: data + tokenizer → LMTask → the training loop → a bundle.

    spec = LMRunSpec(inputs=["corpus.txt"], name="shakespeare", model={"cell": "lstm", ...})
    outcome = train_language_model(spec, train_cfg, registry=None, run_dir=Path("runs/x"),
                                   resume=False, callbacks=[...], log=print)
    outcome.bundle.ref                                   # "shakespeare@1" (rank 0 only)

Everything a resume needs is in ``LMRunSpec``, saved in the run directory's ``run.json``; a
resumed run checks that the input files still have the fingerprints recorded when the run began.
A tokenizer trained on the fly is written into the run directory, published as
``<name>-tokenizer`` (unless its latest version is the same file) and named in the LM's
``parents``; bundles always carry a copy of it (``tokenizer.model``).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, UsageError
from rnntool.kinds.lm.data import MODES, Corpus, build_token_cache
from rnntool.kinds.lm.retrain import lm_promotion, lm_settings, warm_start_parent
from rnntool.training.publishing import check_output_dir, publish_trained
from rnntool.training.retrain import RetrainOptions
from rnntool.textio import fingerprint_file, is_stdin, spool_stdin
from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE, Tokenizer
from rnntool.tokenizers.training import train_tokenizer
from rnntool.training.driver import publish_tokenizer, training_run

Log = Callable[[str], None]


@dataclass
class LMRunSpec:
    """What to train on and what to build; JSON-able (it is the run's ``run_meta``)."""

    inputs: list[str]
    name: str | None = None  # publish to the registry under this name ...
    output: str | None = None  # ... or write the bundle to this directory
    model: dict = field(default_factory=dict)  # LMConfig fields except vocab_size
    mode: str = "stream"
    batch_size: int = 32
    bptt: int = 64
    valid: str | None = None
    valid_fraction: float = 0.05
    tokenizer: str | None = None  # -t REF; None: train one
    vocab_size: int = 8000
    model_type: str = "bpe"
    cache_dir: str | None = None
    on_bad_utf8: str = "strict"
    init_from: str | None = None  # --init-from: the resolved parent (name@version)
    fingerprints: list[dict] = field(default_factory=list)  # inputs (+ valid), taken before training
    run_id: str | None = None  # set when the run starts; recorded in what it publishes
    promote: str | None = None  # --promote/--min-delta, so that --resume does them too
    min_delta: float = 0.0

    def check(self) -> "LMRunSpec":
        if (self.name is None) == (self.output is None):
            raise UsageError("give --name NAME (publish to the registry) or -o DIR (write a bundle), not both")
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.batch_size < 1 or self.bptt < 1:
            raise ConfigError("--batch-size and --bptt must be positive")
        if self.valid is None and not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (got {self.valid_fraction}), or give --valid FILE")
        if not self.inputs:
            raise UsageError("no training data: give text files, or '-' for stdin")
        check_output_dir(self.output)
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "LMRunSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def label(self) -> str:
        return self.name or Path(self.output).name


@dataclass
class LMTrainOutcome:
    result: object | None  # rnntool.training.trainer.TrainResult (None when skipped)
    bundle: object | None  # the published Bundle (rank 0), None on other ranks; the latest when skipped
    tokenizer_ref: str | None
    skipped: str | None = None  # "unchanged" (--if-changed found nothing new) or "published" (resume of a finished run)
    promotion: object | None = None  # rnntool.training.retrain.PromotionDecision with --promote


def check_model_settings(spec: LMRunSpec) -> None:
    """The model settings, checked before any data is read (a typo or an absurd size fails fast)."""
    from rnntool.kinds.lm.model import LMConfig, RNNLM
    from rnntool.layers.weights import abstract_model, check_fits

    cfg = LMConfig(vocab_size=spec.vocab_size if spec.tokenizer is None else 1, **spec.model)
    check_fits(abstract_model(lambda: RNNLM(cfg)), training=True,
               hint="lower --hidden-dim, --embed-dim, --layers or --vocab-size")


# -- preparation -----------------------------------------------------------------------------------
def prepare_inputs(spec: LMRunSpec, work_dir: Path, log: Log) -> None:
    """Spool stdin into ``work_dir`` (so it can be fingerprinted, re-read and resumed), make paths
    absolute and take the data fingerprints — all before training starts."""
    from rnntool.training.distributed import env_world_size

    if env_world_size() > 1 and any(is_stdin(p) for p in spec.inputs):
        raise UsageError("a distributed run cannot read stdin; give the training text as files")
    if sum(is_stdin(p) for p in spec.inputs) > 1 or (spec.valid is not None and is_stdin(spec.valid)):
        raise UsageError("stdin ('-') can be read only once: give it as one training input at most")
    inputs = []
    for p in spec.inputs:
        if is_stdin(p):
            log("reading training text from stdin")
            p = spool_stdin(work_dir, on_bad_utf8=spec.on_bad_utf8)
        elif not Path(p).is_file():
            raise BadInput(f"{p}: no such file")
        inputs.append(str(Path(p).resolve()))
    spec.inputs = inputs
    if spec.valid is not None:
        if not Path(spec.valid).is_file():
            raise BadInput(f"{spec.valid}: no such file (--valid)")
        spec.valid = str(Path(spec.valid).resolve())
    spec.fingerprints = [fingerprint_file(p) for p in [*spec.inputs, *([spec.valid] if spec.valid else [])]]
    if all(fp["bytes"] == 0 for fp in spec.fingerprints[: len(spec.inputs)]):
        raise BadInput(f"{', '.join(spec.inputs)}: training input is empty; give a file with some text")
    if spec.valid is not None and spec.fingerprints[-1]["bytes"] == 0:
        raise BadInput(f"{spec.valid}: validation input is empty; give a file with some text")


def resolve_tokenizer(spec: LMRunSpec, registry, work_dir: Path, resume: bool, log: Log,
                      warn: Log) -> tuple[Tokenizer, str | None]:
    """The run's tokenizer (copied into ``work_dir``) and its registry reference, if any."""
    local = work_dir / TOKENIZER_FILE
    if resume:  # the very file the run started with
        return Tokenizer.load(local), spec.tokenizer
    if spec.tokenizer is not None:
        bundle = registry.load(spec.tokenizer, kind=("tokenizer", "lm"))
        tok = Tokenizer.from_bundle(bundle)
        tok.require_rnntool_ids()
        shutil.copyfile(tok.path, local)
        spec.tokenizer = bundle.ref if bundle.version is not None else str(bundle.path)
        return Tokenizer.load(local), spec.tokenizer
    tok = train_tokenizer(spec.inputs, local, vocab_size=spec.vocab_size, model_type=spec.model_type,
                          on_bad_utf8=spec.on_bad_utf8, on_log=log, on_warning=warn)
    return tok, None


def load_corpora(spec: LMRunSpec, tok: Tokenizer, cache_dir: Path, log: Log) -> tuple[Corpus, Corpus]:
    n_inputs = len(spec.inputs)
    shas = [fp["sha256"] for fp in spec.fingerprints]
    data, hit = build_token_cache(spec.inputs, shas[:n_inputs], tok, cache_dir, on_bad_utf8=spec.on_bad_utf8)
    log(f"{'token cache hit' if hit else 'tokenized'}: {data.n_lines} lines, {data.n_tokens} tokens")
    if spec.valid is None:
        return data.split_last(spec.valid_fraction)
    valid, _ = build_token_cache([spec.valid], shas[n_inputs:], tok, cache_dir, on_bad_utf8=spec.on_bad_utf8)
    return data, valid


# -- publishing ------------------------------------------------------------------------------------
def publish_lm(spec: LMRunSpec, registry, model, tok_path: Path, run_dir: Path | None, result, train_cfg,
               corpora: tuple[Corpus, Corpus], parents: dict, more_extra: dict | None = None,
               record_run_dir: bool = True) -> object:
    from rnntool.kinds.lm.model import save_lm
    from rnntool.kinds.lm.task import corpus_summary

    config = {
        "model": model.config.to_dict(),
        "train": train_cfg.to_dict(),
        "data": {"mode": spec.mode, "batch_size": spec.batch_size, "bptt": spec.bptt,
                 "valid": spec.valid, "valid_fraction": None if spec.valid else spec.valid_fraction,
                 "train_data": corpus_summary(corpora[0]), "valid_data": corpus_summary(corpora[1])},
    }

    def write_files(stage: Path) -> None:
        save_lm(model, stage / "model.safetensors")
        shutil.copyfile(tok_path, stage / TOKENIZER_FILE)

    return publish_trained(registry, kind="lm", name=spec.name, output=spec.output, result=result, run_dir=run_dir,
                           write_files=write_files, config=config, data=spec.fingerprints, parents=parents,
                           more_extra=more_extra, record_run_dir=record_run_dir)


# -- the whole run ---------------------------------------------------------------------------------
def train_language_model(
    spec: LMRunSpec,
    train_cfg,
    *,
    registry,
    run_dir: Path | None,
    resume: bool,
    callbacks: Sequence = (),
    log: Log = lambda msg: None,
    warn: Log | None = None,
    retrain: RetrainOptions | None = None,
    record_run_dir: bool = True,
    budget=None,
) -> LMTrainOutcome:
    """Prepare data and tokenizer, train (resuming when asked), publish on rank 0.

    ``retrain`` (cron): skip unchanged work, warm-start from a published version, and move an alias
    to the new version only when it beats the aliased one (see rnntool.training.retrain). ``record_run_dir``
    False: the manifest does not name ``run_dir`` (the caller removes it after publishing)."""
    from rnntool.kinds.lm.model import LMConfig, RNNLM, load_lm
    from rnntool.kinds.lm.task import LMTask
    from rnntool.training.checkpoint import has_checkpoint
    from rnntool.training.trainer import seed_everything, train
    from rnntool.layers.weights import build_model

    warn = warn or log
    retrain = retrain or RetrainOptions()
    spec.check()
    with training_run(spec, registry, train_cfg, retrain, kind="lm", run_dir=run_dir, resume=resume,
                      budget=budget, prepare=prepare_inputs,
                      warm_start=warm_start_parent, settings=lm_settings, log=log, temp_prefix="rnntool-lm-") as run:
        if run.skip is not None:
            return LMTrainOutcome(None, run.skip, None, skipped=run.skip_reason)
        parent, work_dir = run.parent, run.work_dir
        tok, tok_ref = resolve_tokenizer(spec, registry, work_dir, resume, log, warn)
        cache_dir = Path(spec.cache_dir) if spec.cache_dir else registry.root / "cache"
        corpora = load_corpora(spec, tok, cache_dir, log)
        model_cfg = LMConfig(vocab_size=tok.vocab_size, **spec.model)
        seed_everything(train_cfg.seed)
        model = build_model(lambda: RNNLM(model_cfg), training=True)
        # a warm start begins from the parent (so does a resume of a run killed before its first checkpoint)
        if parent is not None and not (resume and has_checkpoint(run_dir)):
            model.load_state_dict(load_lm(parent.config["model"], parent.file("model.safetensors")).state_dict())
        task = LMTask(model, corpora[0], corpora[1], mode=spec.mode, batch_size=spec.batch_size,
                      bptt=spec.bptt, seed=train_cfg.seed)
        result = train(task, train_cfg, run_dir=run_dir, resume=resume, callbacks=callbacks,
                       model_config=model_cfg.to_dict(), run_meta=dataclasses.asdict(spec), budget=run.budget)
        if not result.is_main:
            return LMTrainOutcome(result, None, tok_ref)
        if tok_ref is None and spec.name is not None:
            tok_ref = publish_tokenizer(registry, spec.name, work_dir / TOKENIZER_FILE, spec.fingerprints)
        parents = {"tokenizer": tok_ref} if tok_ref is not None else {}
        if parent is not None:
            parents["init"] = parent.ref
        bundle, decision = run.publish(
            promote=lambda: lm_promotion(spec, registry, model, tok, retrain, log),
            publish=lambda extra: publish_lm(spec, registry, model, work_dir / TOKENIZER_FILE, run_dir, result,
                                             train_cfg, corpora, parents, extra, record_run_dir))
        return LMTrainOutcome(result, bundle, tok_ref, promotion=decision)
