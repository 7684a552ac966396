"""The body every `train` command shares once its options are parsed (the kind supplies the rest).

    @train_app.command("lm")
    @train_options
    def train_lm(inputs, ..., json_out, registry, *, train: TrainOptions) -> None:
        train_command("lm", train, registry, json_out, new_spec=lambda: LMRunSpec(...).check(),
                      given_on_resume=bool(inputs or name or output), what_to_drop="the inputs, --name and -o")

Resume or start (``--resume RUN_DIR`` reads the run's spec back), the TrainConfig, the cron options
and the time budget, the run directory, progress on stderr, the driver (rnntool/training/driver.py)
and the one summary line (or ``--json``). Must not import torch at import time.
"""


from collections.abc import Callable
from typing import Any

from rnntool.cli.console import console
from rnntool.cli.options import open_registry
from rnntool.cli.train_options import TrainOptions, explicit_names, run_directory
from rnntool.training.distributed import is_main_process
from rnntool.cli.train_report import ConsoleProgress, report_result, report_skipped
from rnntool.errors import UsageError


def train_command(kind_name: str, train: TrainOptions, registry, json_out: bool, *, new_spec: Callable[[], Any],
                  given_on_resume: bool, what_to_drop: str, config_overrides: Callable[[Any], dict] | None = None
                  ) -> None:
    """Train and publish (or resume) a model of the catalog's kind ``kind_name``, and report it.

    ``new_spec()``: the checked spec of a new run from this command's options; ``given_on_resume``:
    whether options that only a new run takes were given (an error with --resume, naming
    ``what_to_drop``); ``config_overrides(spec)``: TrainConfig settings of the kind for a new run."""
    from rnntool.kinds.catalog import model_kind
    from rnntool.training.checkpoint import read_run_info
    from rnntool.training.driver import RunContext, default_run_dir, train_model

    kind = model_kind(kind_name)
    reg = open_registry(registry)
    saved = read_run_info(train.resume) if train.resuming else None
    if saved is not None:
        if given_on_resume:
            raise UsageError(f"--resume RUN_DIR continues that run's data and name; drop {what_to_drop}")
        spec = kind.spec_from_run(saved)
    else:
        spec = new_spec()
        if train.init_embeddings is not None:
            from rnntool.vectors.pretrained import with_pretrained_embeddings

            given = "embed_dim" in explicit_names(("embed_dim",))
            spec = with_pretrained_embeddings(spec, str(train.init_embeddings), train.freeze_embeddings,
                                              spec.model.get("embed_dim") if given else None)
        kind.check_model(spec)  # before the run directory is made or any data read
    overrides = {} if saved or config_overrides is None else config_overrides(spec)
    cfg = train.config(base=saved["train"] if saved else None, **overrides)
    retrain = train.retrain_options(spec if saved else None, saved["train"] if saved else None)
    budget = train.time_budget(cfg)
    callbacks: list = []
    if train.tensorboard is not None and is_main_process():
        from rnntool.training.tensorboard import TensorBoardLog

        callbacks.append(TensorBoardLog(train.tensorboard))
    try:
        with run_directory(train, make_default=lambda: default_run_dir(reg, spec)) as (run_dir, kept), \
                ConsoleProgress(kind.command) as progress:
            ctx = RunContext(reg, run_dir=run_dir, record_run_dir=kept, resume=train.resuming, retrain=retrain,
                             budget=budget, callbacks=[progress, *callbacks], log=console.log, warn=console.warn)
            outcome = train_model(kind, spec, cfg, ctx)
    finally:
        for callback in callbacks:
            callback.close()
    if outcome.skipped:
        report_skipped(outcome.bundle, json_out, outcome.skipped)
        return
    if outcome.bundle is None:  # a DDP rank other than 0
        return
    b, r = outcome.bundle, outcome.result
    fields, line = kind.summary(outcome)
    summary = {"status": "published" if b.version is not None else "written", "ref": b.ref, "path": str(b.path),
               "metrics": b.metrics, **fields, "steps": r.steps, "stop_reason": r.stop_reason,
               "elapsed": round(r.elapsed, 2), "promotion": outcome.promotion.to_dict() if outcome.promotion else None,
               "time": budget.to_dict()}
    if b.parents:  # e.g. the tokenizers a run trained, published beside the model as NAME-tokenizer
        line += "; with " + ", ".join(f"{role.replace('_', ' ')} {ref}" for role, ref in b.parents.items())
    if outcome.promotion is not None:
        line += f"; {outcome.promotion.summary()}"
    report_result(summary, line, json_out, budget)


__all__ = ["train_command"]
