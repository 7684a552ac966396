"""Options and the run directory shared by `train lm` and `train translate` (what they print:
rnntool/cli/train_report.py).

How a training command uses this module: it declares its own options, takes the shared ones as one
``train: TrainOptions`` argument, and hands everything else to
``rnntool.cli.train_command.train_command`` (resume, TrainConfig, run directory, progress, the
driver, the summary)::

    from rnntool.cli.train_command import train_command
    from rnntool.cli.train_options import TrainOptions, train_options

    @train_app.command("lm")
    @train_options                                   # adds --optimizer --lr ... --resume -q
    def train_lm(inputs: ..., json_out: ..., registry: ..., *, train: TrainOptions) -> None:
        \"\"\"Train an RNN language model and publish it to the registry.\"\"\"
        from rnntool.kinds.lm.train import LMRunSpec   # kind modules (torch) are imported inside
        train_command("lm", train, registry, json_out, new_spec=lambda: LMRunSpec(...).check(),
                      given_on_resume=bool(inputs), what_to_drop="the inputs")

- ``@train_options`` must sit *below* ``@train_app.command(...)``. It adds the options as keyword
  parameters, passes them to the command as one ``train: TrainOptions`` argument, and applies
  ``-q`` (``console.quiet = True``; also on DDP ranks other than 0). Don't declare ``-q/--quiet``
  (or any option named here) in the command itself.
- ``train.config(base=None, **overrides)``: a validated ``TrainConfig``. On ``--resume``
  ``train_command`` passes the run's saved ``run.json["train"]`` as ``base``: the saved settings
  apply, and only options given explicitly on this command line override them (e.g. a larger
  ``--max-steps``). ``overrides`` are the kind's settings (``best_metric="bleu", best_mode="max"``)
  applied last.
- ``run_directory(train, make_default=...)``: the run directory (``--resume`` > ``--run-dir`` > a
  new one) and whether it is kept.
- The Annotated aliases (``LrOpt``...) are exported too, for a command that needs one of them alone.

This module must not import torch (``rnntool --help`` stays fast); ``rnntool.training.config`` is
torch-free, so importing TrainConfig/parse_duration from it here is fine.
"""


import contextlib
import dataclasses
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from rnntool.cli.console import console
from rnntool.cli.options import DeviceOpt, ThreadsOpt, check_offered, subset_option
from rnntool.training.distributed import is_main_process
from rnntool.errors import ConfigError
from rnntool.layers.names import CELLS
from rnntool.tokenizers.sentencepiece import MODEL_TYPES
from rnntool.layers.precision import check_training_device
from rnntool.training.time_budget import TimeBudget, command_start
from rnntool.training.config import (
    OPTIMIZERS,
    PRECISIONS,
    TRAIN_PRECISIONS,
    SCHEDULES,
    TrainConfig,
    parse_duration,
)

try:  # typer >= 0.25 vendors click as typer._click
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click import get_current_context
    from click.core import ParameterSource

_D = TrainConfig()  # defaults shown in --help come from TrainConfig itself

# Choices every training command offers alike (one set of choices per option name: docs/cli.md)
Cell = Literal[CELLS]
CELL_HELP = "Recurrent cell: Elman RNN (rnn-tanh, rnn-relu), GRU or LSTM (torch's fused layers)."
ModelType = Literal[MODEL_TYPES]
MODEL_TYPE_HELP = "SentencePiece algorithm of a tokenizer trained on the fly."
# --select: the validation metric that picks the published weights; each kind offers those it computes
SELECT_METRICS = ("loss", "bleu", "accuracy", "macro-f1", "span-f1")


def select_option(offers: tuple[str, ...], help: str):
    return subset_option("--select", SELECT_METRICS, offers, help, "METRIC")


def check_select(value: str, offers: tuple[str, ...]) -> str:
    return check_offered("--select", value, offers, "this model kind offers")
DEFAULT_EPOCHS = _D.epochs

OptimizerOpt = Annotated[Literal[OPTIMIZERS], typer.Option("--optimizer", help="Optimizer.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate.")]
ClipOpt = Annotated[float, typer.Option("--clip", help="Clip the gradient norm to this value; 0 turns it off.")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="Weight decay (L2; decoupled for adamw).")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Linear learning-rate warm-up over this many steps.")]
ScheduleOpt = Annotated[
    Literal[SCHEDULES],
    typer.Option(
        "--schedule",
        help="Learning rate after warm-up: constant; plateau halves it when validation stops improving; cosine "
        "decays it to --min-lr by the end of --max-steps, --epochs or --max-time.",
    ),
]
MinLrOpt = Annotated[float, typer.Option("--min-lr", help="Lowest learning rate for plateau and cosine.")]
EpochsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--epochs",
        help=f"Passes over the training data (default: {DEFAULT_EPOCHS}, or no limit when --max-steps or "
        "--max-time is given).",
        show_default=False,
    ),
]
MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps (batches).")]
MaxTimeOpt = Annotated[
    Optional[str],
    typer.Option("--max-time", help="Wall-clock budget for the whole command, e.g. 90s, 10m, 1h30m: training stops "
                 "early enough that validation, --promote and publishing still fit. With --resume: this much "
                 "more (without it, what is left of the run's own budget).", show_default=False),
]
EvalEveryOpt = Annotated[
    Optional[int], typer.Option("--eval-every", help="Validate every N steps (default: after each epoch).")
]
PatienceOpt = Annotated[
    Optional[int], typer.Option("--patience", help="Stop after N validations without improvement (default: off).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result on CPU).")]
PrecisionOpt = subset_option("--precision", PRECISIONS, TRAIN_PRECISIONS,
                             "bf16: autocast, faster on recent GPUs and on CPUs with bf16 instructions. fp16: autocast "
                             "with a dynamic loss scale, GPU only.", "P")
RunDirOpt = Annotated[
    Optional[Path],
    typer.Option("--run-dir", help="Directory for checkpoints and metrics.jsonl of this run.", show_default=False),
]
ResumeOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--resume",
        metavar="RUN_DIR",
        help="Continue the interrupted run in RUN_DIR from its last checkpoint and do what its command "
        "asked (same settings, --promote included; options given here, e.g. a larger --max-steps, override "
        "them). A run that already published exits 0 without publishing again, unless --max-steps, "
        "--epochs or --max-time given here raise its budget: then it trains on and publishes a new version.",
        show_default=False,
    ),
]
AccumulateOpt = Annotated[int, typer.Option(
    "--accumulate", min=1, metavar="N",
    help="Each optimizer step adds up the gradients of N batches: an N times larger effective batch in the "
         "memory of one (fairseq's --update-freq, OpenNMT-py's accum_count). --max-steps, --eval-every and "
         "--save-every count steps.")]
InitRangeOpt = Annotated[float, typer.Option(
    "--init-range", min=0.0, metavar="R",
    help="Start every weight of a new model uniform in [-R, R] (OpenNMT-py's param_init; 0.1 there). "
         "0: each kind's own initialisation.")]
EmaOpt = Annotated[float, typer.Option(
    "--ema", min=0.0, max=0.999999, metavar="DECAY",
    help="Keep an exponential moving average of the weights (each step: avg = DECAY x avg + (1 - DECAY) x "
         "weights; DECAY ramps up from 0.1 over the first steps) and validate, keep and publish the average "
         "instead of the last weights (Marian's exponential smoothing, Polyak averaging); e.g. 0.999. 0: off.")]
SaveEveryOpt = Annotated[
    Optional[int],
    typer.Option("--save-every", help="Checkpoint every N steps (also at each validation and at the end)."),
]
TrainQuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors and warnings on stderr.")]
IfChangedOpt = Annotated[bool, typer.Option(
    "--if-changed", help="Skip training (exit 0) when the data and settings equal those of the latest version of --name.")]
PromoteOpt = Annotated[Optional[str], typer.Option(
    "--promote", metavar="ALIAS", show_default=False,
    help="Move ALIAS (e.g. prod) to the new version only if it beats the version ALIAS points to on the "
    "same validation data (LM: bits/char; translation: BLEU with a paired bootstrap test).")]
MinDeltaOpt = Annotated[float, typer.Option(
    "--min-delta", help="With --promote: the least improvement that counts (bits/char or BLEU points).")]
InitFromOpt = Annotated[Optional[str], typer.Option(
    "--init-from", metavar="REF", show_default=False,
    help="Warm start: continue training from a published version (same tokenizer and architecture).")]
WaitOpt = Annotated[bool, typer.Option(
    "--wait", help="If another run trains the same --name, wait for it instead of exiting 75.")]
LogFileOpt = Annotated[Optional[Path], typer.Option(
    "--log-file", show_default=False, help="Also append every message, timestamped, to this file (cron).")]
TensorBoardOpt = Annotated[Optional[Path], typer.Option(
    "--tensorboard", metavar="DIR", show_default=False,
    help="Also write TensorBoard event files to DIR: training loss, learning rate, tokens/s and every "
         "validation metric by step (needs: pip install 'rnntool\\[tensorboard]').")]

InitEmbeddingsOpt = Annotated[Optional[Path], typer.Option(
    "--init-embeddings", metavar="FILE", show_default=False,
    help="Start the input embeddings from these word vectors: word2vec text (a 'count dim' header) or GloVe "
         "text, .gz too. Sets --embed-dim; the coverage of the vocabulary is logged and recorded.")]
FreezeEmbeddingsOpt = Annotated[bool, typer.Option(
    "--freeze-embeddings", help="With --init-embeddings: keep the loaded embeddings fixed during training.")]

# (parameter name, annotation, default, TrainConfig field or None)
_SPECS: list[tuple[str, Any, Any, str | None]] = [
    ("optimizer", OptimizerOpt, _D.optimizer, "optimizer"),
    ("lr", LrOpt, _D.lr, "lr"),
    ("clip", ClipOpt, _D.clip, "clip"),
    ("weight_decay", WeightDecayOpt, _D.weight_decay, "weight_decay"),
    ("warmup", WarmupOpt, _D.warmup_steps, "warmup_steps"),
    ("schedule", ScheduleOpt, _D.schedule, "schedule"),
    ("min_lr", MinLrOpt, _D.min_lr, "min_lr"),
    ("epochs", EpochsOpt, None, "epochs"),
    ("max_steps", MaxStepsOpt, _D.max_steps, "max_steps"),
    ("max_time", MaxTimeOpt, None, "max_time"),
    ("eval_every", EvalEveryOpt, _D.eval_every, "eval_every"),
    ("patience", PatienceOpt, _D.patience, "patience"),
    ("seed", SeedOpt, _D.seed, "seed"),
    ("device", DeviceOpt, _D.device, "device"),
    ("threads", ThreadsOpt, _D.threads, "threads"),
    ("precision", PrecisionOpt, _D.precision, "precision"),
    ("accumulate", AccumulateOpt, _D.accumulate, "accumulate"),
    ("init_range", InitRangeOpt, _D.init_range, "init_range"),
    ("ema", EmaOpt, _D.ema, "ema"),
    ("save_every", SaveEveryOpt, _D.save_every, "save_every"),
    ("run_dir", RunDirOpt, None, None),
    ("resume", ResumeOpt, None, None),
    ("quiet", TrainQuietOpt, False, None),
    ("if_changed", IfChangedOpt, False, None),
    ("promote", PromoteOpt, None, None),
    ("min_delta", MinDeltaOpt, 0.0, None),
    ("init_from", InitFromOpt, None, None),
    ("wait", WaitOpt, False, None),
    ("log_file", LogFileOpt, None, None),
    ("tensorboard", TensorBoardOpt, None, None),
    ("init_embeddings", InitEmbeddingsOpt, None, None),
    ("freeze_embeddings", FreezeEmbeddingsOpt, False, None),
]
OPTION_NAMES = tuple(name for name, *_ in _SPECS)


@dataclass
class TrainOptions:
    """The shared options as given on the command line (``explicit``: names set by the user)."""

    optimizer: str = _D.optimizer
    lr: float = _D.lr
    clip: float = _D.clip
    weight_decay: float = _D.weight_decay
    warmup: int = _D.warmup_steps
    schedule: str = _D.schedule
    min_lr: float = _D.min_lr
    epochs: int | None = None
    max_steps: int | None = _D.max_steps
    max_time: str | None = None
    eval_every: int | None = _D.eval_every
    patience: int | None = _D.patience
    seed: int = _D.seed
    device: str = _D.device
    threads: int | None = _D.threads
    precision: str = _D.precision
    accumulate: int = _D.accumulate
    init_range: float = _D.init_range
    ema: float = _D.ema
    save_every: int | None = _D.save_every
    run_dir: Path | None = None
    resume: Path | None = None
    quiet: bool = False
    if_changed: bool = False
    promote: str | None = None
    min_delta: float = 0.0
    init_from: str | None = None
    wait: bool = False
    log_file: Path | None = None
    tensorboard: Path | None = None
    init_embeddings: Path | None = None
    freeze_embeddings: bool = False
    explicit: frozenset[str] = field(default_factory=frozenset)
    budget: TimeBudget = field(default_factory=lambda: TimeBudget(start=command_start()))

    def retrain_options(self, resumed=None, saved_train: dict | None = None):
        """The cron options as a core ``RetrainOptions`` (checked against --resume and -o). ``resumed``:
        the spec of the run ``--resume`` continues, whose --promote/--min-delta apply unless given here;
        ``saved_train``: its training settings (a resume that raises them trains a published run on)."""
        from rnntool.training.retrain import RetrainOptions

        if self.resuming and (self.if_changed or self.init_from or self.init_embeddings
                              or "init_range" in self.explicit):
            raise ConfigError("--resume continues a run as it was; drop --if-changed, --init-from, "
                              "--init-embeddings and --init-range")
        if self.init_from and self.init_embeddings:
            raise ConfigError("--init-from continues a published model, --init-embeddings starts a new one "
                              "from word vectors: give one")
        if self.init_from and self.init_range:
            raise ConfigError("--init-from continues a published model's weights, --init-range starts new ones: "
                              "give one")
        if self.freeze_embeddings and not self.init_embeddings:
            raise ConfigError("--freeze-embeddings goes with --init-embeddings FILE")
        if self.min_delta < 0:
            raise ConfigError(f"--min-delta must be 0 or more (got {self.min_delta})")
        promote, min_delta = self.promote, self.min_delta
        if resumed is not None:
            promote = promote if "promote" in self.explicit else getattr(resumed, "promote", None)
            if "min_delta" not in self.explicit:
                min_delta = getattr(resumed, "min_delta", 0.0)
        if promote is None and "min_delta" in self.explicit:
            raise ConfigError("--min-delta goes with --promote ALIAS")
        return RetrainOptions(if_changed=self.if_changed, promote=promote, min_delta=min_delta,
                              init_from=self.init_from, wait=self.wait,
                              train_further=self.resuming and self._raises_budget(saved_train or {}))

    def _raises_budget(self, saved: dict) -> bool:
        """Whether this resume asks for more training than the run had: an explicit --max-time (extra
        time), or a --max-steps/--epochs above the run's own."""
        if "max_time" in self.explicit and self.max_time is not None:
            return True
        for name in ("max_steps", "epochs"):
            new, old = getattr(self, name), saved.get(name)
            if name in self.explicit and new is not None and (old is None or new > old):
                return True
        return False

    def time_budget(self, cfg: TrainConfig) -> TimeBudget:
        """The command's TimeBudget: --max-time for a new run; on --resume an explicit --max-time is
        that much more training, and without one the run's own budget goes on (see time_budget.py)."""
        if self.resuming:
            explicit = "max_time" in self.explicit and self.max_time is not None
            self.budget.limit = parse_duration(self.max_time, option="--max-time") if explicit else None
            self.budget.extends_run = explicit
        else:
            self.budget.limit = cfg.max_time
        return self.budget

    @property
    def resuming(self) -> bool:
        return self.resume is not None

    @property
    def is_main(self) -> bool:
        """False on DDP ranks other than 0 (they must not publish or print results)."""
        return is_main_process()

    def run_dir_for(self, default: Path | None = None) -> Path | None:
        """The run directory: ``--resume RUN_DIR``, else ``--run-dir``, else ``default``."""
        if self.resume is not None and self.run_dir is not None and self.run_dir != self.resume:
            raise ConfigError("--resume RUN_DIR already names the run directory; drop --run-dir")
        return self.resume or self.run_dir or default

    def config(self, base: dict | None = None, **overrides: Any) -> TrainConfig:
        """A validated TrainConfig: defaults < ``base`` (a saved run) < explicit options < overrides."""
        values: dict[str, Any] = dataclasses.asdict(TrainConfig())  # every field (to_dict leaves defaults out)
        if base:
            values.update({k: v for k, v in base.items() if k in values})
        for name, _annot, _default, cfg_field in _SPECS:
            if cfg_field is None:
                continue
            if base is None or name in self.explicit:
                values[cfg_field] = getattr(self, name)
        check_offered("--precision", self.precision, TRAIN_PRECISIONS, "training takes")
        device = self.device  # fp16 off a GPU is refused here, before any data is read
        if self.precision == "fp16" and device == "auto":
            from rnntool.runtime import prepare_device  # imports torch: fp16 asked for, so training follows

            device = prepare_device(device).type
        check_training_device(self.precision, device)
        if base is None or "max_time" in self.explicit:
            values["max_time"] = parse_duration(self.max_time, option="--max-time")
        if "epochs" not in self.explicit and self.epochs is None:
            # --max-steps/--max-time alone mean "train for that long", not "stop at 10 epochs"
            if {"max_steps", "max_time"} & self.explicit or self.max_steps is not None or self.max_time:
                values["epochs"] = None
            elif base is None:
                values["epochs"] = DEFAULT_EPOCHS
        values.update(overrides)
        return TrainConfig.from_dict(values).validate()


def explicit_names(names=OPTION_NAMES) -> frozenset[str]:
    """Which of ``names`` the user gave on this command's line (not defaults)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return frozenset()
    return frozenset(name for name in names
                     if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT,
                                                               ParameterSource.DEFAULT_MAP))


def train_options(func=None, *, only: tuple[str, ...] | None = None):
    """Decorator: add the shared training options to a typer command (see the module docstring);
    ``only``: just these of them (a kind that trains itself: `train word2vec`)."""
    if func is None:
        return functools.partial(train_options, only=only)
    specs = [s for s in _SPECS if only is None or s[0] in only]
    names = tuple(name for name, *_ in specs)
    sig = inspect.signature(func, eval_str=True)
    if "train" not in sig.parameters:
        raise TypeError(f"{func.__name__} must take a keyword parameter 'train: TrainOptions'")
    clash = set(names) & set(sig.parameters)
    if clash:
        raise TypeError(f"{func.__name__} declares {sorted(clash)}, which @train_options already adds")
    own = [p for p in sig.parameters.values() if p.name != "train"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annot)
             for name, annot, default, _ in specs]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in names if name in kwargs}
        opts = TrainOptions(**values, explicit=explicit_names())
        if opts.quiet or not is_main_process():
            console.quiet = True
        if opts.log_file is not None and is_main_process():
            console.add_log_file(opts.log_file)
        return func(*args, train=opts, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + added)
    annotations = {p.name: p.annotation for p in own + added}
    if sig.return_annotation is not inspect.Signature.empty:
        annotations["return"] = sig.return_annotation
    wrapper.__annotations__ = annotations
    return wrapper


# ---------------------------------------------------------------------------------------------
# The run directory
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def run_directory(train: TrainOptions, *, make_default):
    """Yield ``(run directory, kept)``: ``--resume RUN_DIR`` > ``--run-dir`` > a new one from
    ``make_default()``; ``kept`` says whether it outlives a published model (manifests name only those).

    A directory made here is only scaffolding: it is removed when the command ends with the model
    published (the bundle holds the metrics log) or with nothing worth resuming in it (skipped by
    --if-changed, lock held, bad input). It is kept, and named, when an interrupted or failed run
    left a checkpoint to ``--resume`` from. ``--run-dir`` and ``--resume`` directories are never removed.
    """
    import shutil

    run_dir = train.run_dir_for(default=None)
    owned = run_dir is None  # --resume and --run-dir name their directory
    if owned:
        run_dir = make_default()
    ok = False
    try:
        yield run_dir, not owned
        ok = True
    finally:
        if owned and run_dir is not None and run_dir.exists():
            from rnntool.training.checkpoint import has_checkpoint

            if ok or not has_checkpoint(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)


__all__ = [
    "OPTION_NAMES",
    "TrainOptions",
    "run_directory",
    "train_options",
]
