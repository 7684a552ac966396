"""The generator kind (`rnntool train lm` without the CLI): data + tokenizer → LMTask → a bundle.

    spec = LMRunSpec(inputs=["corpus.txt"], name="shakespeare", model={"cell": "lstm", ...}).check()
    outcome = train_model(KIND, spec, train_cfg, RunContext(registry, run_dir=Path("runs/x")))
    outcome.bundle.ref                                   # "shakespeare@1" (rank 0 only)

The ModelKind contract is in rnntool/training/kind.py; the driver in rnntool/training/driver.py.
Everything a resume needs is in ``LMRunSpec``, saved in the run directory's ``run.json``. A tokenizer
trained on the fly is written into the run directory, published as ``<name>-tokenizer`` (unless its
latest version is the same file) and named in the LM's ``parents``; bundles always carry a copy of it
(``tokenizer.model``).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, UsageError
from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.kinds.lm.data import Corpus, build_token_cache, check_mode
from rnntool.kinds.lm.retrain import lm_promotion, lm_settings, warm_start_parent
from rnntool.textio import fingerprint_file, is_stdin, spool_stdin
from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE, Tokenizer
from rnntool.tokenizers.training import train_tokenizer
from rnntool.training.driver import publish_run_tokenizer
from rnntool.training.inputs import data_fingerprints
from rnntool.training.kind import ModelKind, Trainee
from rnntool.training.publishing import check_destination

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
    init_embeddings: str | None = None  # --init-embeddings FILE (rnntool/vectors/pretrained.py)
    freeze_embeddings: bool = False

    def check(self) -> "LMRunSpec":
        check_destination(self.name, self.output)
        check_mode(self.mode)
        if self.batch_size < 1 or self.bptt < 1:
            raise ConfigError("--batch-size and --bptt must be positive")
        if self.valid is None and not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (got {self.valid_fraction}), or give --valid FILE")
        if not self.inputs:
            raise UsageError("no training data: give text files, or '-' for stdin")
        return self

    @property
    def label(self) -> str:
        return self.name or Path(self.output).name


def check_model_settings(spec: LMRunSpec) -> None:
    """The model settings, checked before any data is read (a typo or an absurd size fails fast)."""
    from rnntool.kinds.lm.model import LMConfig, RNNLM
    from rnntool.layers.weights import abstract_model, check_fits

    cfg = LMConfig(vocab_size=spec.vocab_size if spec.tokenizer is None else 1, **spec.model)
    check_fits(abstract_model(lambda: RNNLM(cfg)), training=True,
               hint="lower --hidden-dim, --embed-dim, --layers or --vocab-size")


def prepare_inputs(spec: LMRunSpec, work_dir: Path, log: Log) -> LMRunSpec:
    """The spec with stdin spooled into ``work_dir`` (so it can be fingerprinted, re-read and resumed),
    paths made absolute and the data fingerprints taken — all before training starts."""
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
    valid = spec.valid
    if valid is not None:
        if not Path(valid).is_file():
            raise BadInput(f"{valid}: no such file (--valid)")
        valid = str(Path(valid).resolve())
    fingerprints = [{**fingerprint_file(p), "role": "train"} for p in inputs]
    fingerprints += [{**fingerprint_file(valid), "role": "valid"}] if valid else []
    if all(fp["bytes"] == 0 for fp in fingerprints[: len(inputs)]):
        raise BadInput(f"{', '.join(inputs)}: training input is empty; give a file with some text")
    if valid is not None and fingerprints[-1]["bytes"] == 0:
        raise BadInput(f"{valid}: validation input is empty; give a file with some text")
    return dataclasses.replace(spec, inputs=inputs, valid=valid, fingerprints=fingerprints)


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
        return Tokenizer.load(local), bundle.ref if bundle.version is not None else str(bundle.path)
    tok = train_tokenizer(spec.inputs, local, vocab_size=spec.vocab_size, model_type=spec.model_type,
                          on_bad_utf8=spec.on_bad_utf8, on_log=log, on_warning=warn)
    return tok, None


def load_corpora(spec: LMRunSpec, tok: Tokenizer, cache_dir: Path, log: Log) -> tuple[Corpus, Corpus]:
    n_inputs = len(spec.inputs)
    shas = [fp["sha256"] for fp in data_fingerprints(spec)]
    data, hit = build_token_cache(spec.inputs, shas[:n_inputs], tok, cache_dir, on_bad_utf8=spec.on_bad_utf8)
    log(f"{'token cache hit' if hit else 'tokenized'}: {data.n_lines} lines, {data.n_tokens} tokens")
    if spec.valid is None:
        return data.split_last(spec.valid_fraction)
    valid, _ = build_token_cache([spec.valid], shas[n_inputs:], tok, cache_dir, on_bad_utf8=spec.on_bad_utf8)
    return data, valid


# -- the kind ----------------------------------------------------------------------------------------
class LanguageModelKind(ModelKind):
    """The generator: an RNN language model (see rnntool/training/kind.py for the contract)."""

    name, command, spec_type, temp_prefix = "lm", "train lm", LMRunSpec, "rnntool-lm-"

    def check_model(self, spec: LMRunSpec) -> None:
        check_model_settings(spec)

    def prepare_inputs(self, spec: LMRunSpec, work_dir: Path, log: Log) -> LMRunSpec:
        return prepare_inputs(spec, work_dir, log)

    def warm_start(self, spec: LMRunSpec, registry, ref: str, log: Log):
        spec = dataclasses.replace(spec, model=dict(spec.model))
        return warm_start_parent(spec, registry, ref, log), spec

    def key_settings(self, spec: LMRunSpec, train_cfg, registry, parent) -> dict:
        return lm_settings(spec, train_cfg, registry, parent)

    def build(self, spec: LMRunSpec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        from rnntool.kinds.lm.model import RNNLM, LMConfig, load_lm
        from rnntool.kinds.lm.task import LMTask, corpus_summary
        from rnntool.training.checkpoint import has_checkpoint
        from rnntool.training.trainer import seed_everything
        from rnntool.layers.weights import build_model

        tok, tok_ref = resolve_tokenizer(spec, ctx.registry, work_dir, ctx.resume, ctx.log, ctx.warn)
        spec = dataclasses.replace(spec, tokenizer=tok_ref if tok_ref is not None else spec.tokenizer)
        cache_dir = Path(spec.cache_dir) if spec.cache_dir else ctx.registry.root / "cache"
        corpora = load_corpora(spec, tok, cache_dir, ctx.log)
        model_cfg = LMConfig(vocab_size=tok.vocab_size, **spec.model)
        seed_everything(train_cfg.seed)
        model = build_model(lambda: RNNLM(model_cfg), training=True)
        # a warm start begins from the parent (so does a resume of a run killed before its first checkpoint)
        if parent is not None and not (ctx.resume and has_checkpoint(ctx.run_dir)):
            model.load_state_dict(load_lm(parent.config["model"], parent.file(WEIGHTS_FILE)).state_dict())
        task = LMTask(model, corpora[0], corpora[1], mode=spec.mode, batch_size=spec.batch_size,
                      bptt=spec.bptt, seed=train_cfg.seed)
        data_config = {"mode": spec.mode, "batch_size": spec.batch_size, "bptt": spec.bptt,
                       "valid": spec.valid, "valid_fraction": None if spec.valid else spec.valid_fraction,
                       "train_data": corpus_summary(corpora[0]), "valid_data": corpus_summary(corpora[1])}
        return Trainee(spec, model, task, model_cfg.to_dict(), data_config, {"tokenizer": tok_ref},
                       state={"tokenizer": tok})

    def input_tables(self, trainee: Trainee) -> list:
        return [("input", trainee.model.embedding, trainee.state["tokenizer"].pieces())]

    def publish_parents(self, trainee: Trainee, registry, work_dir: Path) -> dict:
        return publish_run_tokenizer(trainee, registry, work_dir)

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        from rnntool.kinds.lm.model import save_lm

        save_lm(trainee.model, stage / WEIGHTS_FILE)
        shutil.copyfile(work_dir / TOKENIZER_FILE, stage / TOKENIZER_FILE)

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        return lm_promotion(trainee.spec, registry, trainee.model, trainee.state["tokenizer"], retrain, log)

    def summary(self, outcome) -> tuple[dict, str]:
        from rnntool.training.reporting import summary_number

        b, r, m = outcome.bundle, outcome.result, outcome.bundle.metrics
        fields = {"tokenizer": outcome.details.get("tokenizer")}
        line = (f"{'published' if b.version is not None else 'wrote'} {b.ref}: val ppl {summary_number(m.get('val_ppl'))}, "
                f"bpc {summary_number(m.get('val_bpc'))} ({r.steps} steps, stopped by {r.stop_reason})")
        return fields, line


KIND = LanguageModelKind()
