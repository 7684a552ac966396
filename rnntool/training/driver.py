"""The one training driver: what every `train` command does around its model kind's own work.

    ctx = RunContext(registry, run_dir=Path("runs/x"), retrain=RetrainOptions(promote="prod"), log=print)
    outcome = train_model(model_kind("lm"), spec, train_cfg, ctx)    # rnntool/training/kind.py
    outcome.bundle.ref                                               # "news@4" (rank 0)

Before the kind's work: the ``--name``/``--if-changed`` check and the name's kind, the work directory
(the run directory, else a temporary one) and its lock, the inputs (fingerprints checked on
``--resume``, else ``kind.prepare_inputs``: stdin spooled, paths made absolute, fingerprints taken),
the per-name training lock, the warm start and the retrain key (``--if-changed`` may stop here).
Then ``kind.build`` and the training loop. After it: the parents (tokenizers trained on the fly),
the promotion check, publishing with the retrain key, the run's id (and the decision) in the
manifest, the record of it in the run directory (``published.json``), and the alias move.

A resumed run that had already published (killed before it could exit) publishes nothing again: it is
found by its ``published.json``, or by the run id in a manifest when the kill came before the record,
and an alias move the kill prevented is completed. Only a resume that raises the budget
(``retrain.train_further``) trains such a run on and publishes it again. ``--promote``/``--min-delta``
are part of the run (``spec.promote``), so a resume does everything the original command asked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnntool.errors import BadInput, DiskFull, LockHeld, RegistryError, UsageError
from rnntool.training.inputs import INIT_EMBEDDINGS_ROLE, data_fingerprints
from rnntool.training.retrain import RetrainOptions, retrain_key, training_lock, unchanged
from rnntool.training.time_budget import TimeBudget

Log = Callable[[str], None]
PUBLISHED_FILE = "published.json"  # in a run directory: what the run published (its resume does nothing)
RUN_LOCK_FILE = "run.lock"  # in a run directory: held while a process trains or resumes it
PROMOTION_EVALS = 2  # --promote validates the new model and the aliased one


def _quiet(msg: str) -> None:
    pass


@dataclass
class RunContext:
    """Where and how a training command runs: made once (by the CLI), passed down whole."""

    registry: Any  # rnntool.registry.store.Registry
    run_dir: Path | None = None  # checkpoints and metrics.jsonl; None: a temporary work directory
    record_run_dir: bool = True  # name run_dir in the manifest (False: it is removed after publishing)
    resume: bool = False
    retrain: RetrainOptions = field(default_factory=RetrainOptions)
    budget: TimeBudget = field(default_factory=TimeBudget)
    callbacks: Sequence[Any] = ()
    log: Log = _quiet
    warn: Log | None = None

    def __post_init__(self) -> None:
        self.warn = self.warn or self.log


@dataclass
class TrainOutcome:
    result: Any  # rnntool.training.trainer.TrainResult (None when skipped)
    bundle: Any  # the published Bundle (rank 0; None on other ranks); the latest when skipped
    details: dict = field(default_factory=dict)  # the kind's, for the summary (tokenizers, data counts)
    skipped: str | None = None  # "unchanged" (--if-changed found nothing new) or "published" (resume of a finished run)
    promotion: Any = None  # rnntool.training.retrain.PromotionDecision with --promote


def train_model(kind, spec, train_cfg, ctx: RunContext) -> TrainOutcome:
    """Train ``spec`` as ``kind`` says and publish it (see the module docstring)."""
    from rnntool.training.checkpoint import has_checkpoint
    from rnntool.training.publishing import publish_trained
    from rnntool.training.trainer import train

    with training_run(kind, spec, train_cfg, ctx) as run:
        if run.skip is not None:
            return TrainOutcome(None, run.skip, skipped=run.skip_reason)
        trainee = kind.build(run.spec, train_cfg, ctx, run.work_dir, run.parent)
        if train_cfg.init_range and run.parent is None and not (ctx.resume and has_checkpoint(ctx.run_dir)):
            from rnntool.layers.initialization import init_uniform  # (a resumed checkpoint's weights follow)

            init_uniform(trainee.model, train_cfg.init_range)
        if getattr(trainee.spec, "init_embeddings", None):  # a resume too: the checkpoint's weights follow
            from rnntool.vectors.pretrained import coverage_line, initialize_tables

            report = initialize_tables(kind.input_tables(trainee), trainee.spec.init_embeddings,
                                       trainee.spec.freeze_embeddings)
            trainee.data_config["init_embeddings"] = report
            ctx.log(coverage_line(report))
        result = kind.fit(trainee, train_cfg, ctx) or train(
            trainee.task, train_cfg, run_dir=ctx.run_dir, resume=ctx.resume, callbacks=ctx.callbacks,
            model_config=trainee.model_config, run_meta=dataclasses.asdict(trainee.spec), budget=run.budget)
        if not result.is_main:
            return TrainOutcome(result, None, trainee.details)
        parents = kind.publish_parents(trainee, ctx.registry, run.work_dir)
        if run.parent is not None:
            parents["init"] = run.parent.ref
        spec = trainee.spec
        config = {"model": trainee.model_config, "train": train_cfg.to_dict(), "data": trainee.data_config}
        bundle, decision = run.publish(
            promote=lambda: kind.promotion(trainee, ctx.registry, ctx.retrain, ctx.log),
            publish=lambda extra: publish_trained(
                ctx.registry, kind=kind.name, name=spec.name, output=spec.output, result=result,
                run_dir=ctx.run_dir, write_files=lambda stage: kind.write_files(trainee, stage, run.work_dir),
                config=config, data=spec.fingerprints, parents=parents, more_extra=extra,
                record_run_dir=ctx.record_run_dir))
        return TrainOutcome(result, bundle, trainee.details, promotion=decision)


@dataclass
class TrainingRun:
    """A run under way: where it works, what it starts from, and how it ends."""

    registry: Any
    retrain: RetrainOptions
    work_dir: Path
    spec: Any  # the run's spec, inputs resolved (and adapted to a warm-start parent)
    parent: Any  # the warm-start Bundle, or None
    key: dict  # the retrain key the published manifest records
    budget: TimeBudget = field(default_factory=TimeBudget)
    skip: Any = None  # a Bundle when there is nothing to train (see skip_reason)
    skip_reason: str | None = None  # "unchanged" (--if-changed) or "published" (a resume of a finished run)

    def publish(self, *, promote: Callable[[], Any], publish: Callable[[dict], Any]) -> tuple[Any, Any]:
        """(bundle, promotion decision or None): ``promote()`` decides when ``--promote`` was given,
        ``publish(extra)`` writes the bundle; the run directory records it at once (so a resume does
        not publish it again), and the alias moves only after that."""
        run_id = self.spec.run_id
        extra: dict = {"retrain_key": self.key}
        if run_id is not None:
            extra["run_id"] = run_id
        decision = None
        if self.retrain.promote is not None:
            with self.budget.phase("promoting"):
                decision = promote()
            extra["promotion"] = decision.to_dict()
        with self.budget.phase("publishing"):
            bundle = publish(extra)
            with contextlib.suppress(OSError):  # best effort: a resume also finds the version by its run id
                record_publication(self.work_dir, bundle, run_id)
            if decision is not None and decision.promoted:
                try:
                    with DiskFull.translating(published=bundle.ref):
                        self.registry.set_alias(bundle.ref, decision.alias)
                except LockHeld as e:
                    raise RegistryError(f"published {bundle.ref}, but could not move @{decision.alias} to it: {e}; "
                                        f"move it with 'rnntool models alias {bundle.ref} {decision.alias}'") from None
        return bundle, decision


@contextlib.contextmanager
def training_run(kind, spec, train_cfg, ctx: RunContext) -> Iterator[TrainingRun]:
    """Yield the TrainingRun (see the module docstring); the locks are held until the block ends."""
    from rnntool.registry.locking import FileLock
    from rnntool.training.distributed import is_main_process

    registry, retrain, run_dir, log = ctx.registry, ctx.retrain, ctx.run_dir, ctx.log
    if spec.name is None and (retrain.if_changed or retrain.promote):
        raise UsageError("--if-changed and --promote need --name (they compare with the registry)")
    if spec.name is not None:
        registry.check_name_kind(spec.name, kind.name)  # before any work: a name holds one kind of model
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=kind.temp_prefix)))
        else:
            work_dir = Path(run_dir)
            try:
                work_dir.mkdir(parents=True)
            except FileExistsError:  # given, or made by another torchrun rank a moment ago
                pass
            else:
                stack.callback(_remove_if_empty, work_dir)  # bad input leaves no empty --run-dir behind
            if is_main_process():  # (waits a moment: `models gc --runs` holds it briefly while it looks)
                under_registry = work_dir.resolve().is_relative_to(registry.root.resolve())
                stack.enter_context(FileLock(work_dir / RUN_LOCK_FILE, what=f"training run {work_dir}",
                                             hint="it is being trained or resumed by that process",
                                             root=registry.root if under_registry else None).acquire(wait=3.0))
        if ctx.resume and not retrain.train_further:
            done = find_publication(spec, registry, work_dir)
            if done is not None:
                if is_main_process():
                    complete_promotion(registry, done, log)
                yield TrainingRun(registry, retrain, work_dir, spec, None, {}, ctx.budget, done, "published")
                return
        if ctx.resume:
            check_fingerprints(spec)
        else:  # a resume does what the original command asked: --promote is part of the run
            spec = dataclasses.replace(kind.prepare_inputs(spec, work_dir, log), run_id=uuid.uuid4().hex,
                                       promote=retrain.promote, min_delta=retrain.min_delta)
            if getattr(spec, "init_embeddings", None):  # the vectors: in the key, checked on resume
                from rnntool.textio import fingerprint_file

                spec = dataclasses.replace(spec, fingerprints=[
                    *spec.fingerprints, {**fingerprint_file(spec.init_embeddings), "role": INIT_EMBEDDINGS_ROLE}])
        if spec.name is not None and is_main_process():
            stack.enter_context(training_lock(registry, spec.name, retrain, log))
        parent = None
        if retrain.init_from is not None and not ctx.resume:
            parent, spec = kind.warm_start(spec, registry, retrain.init_from, log)
        elif spec.init_from is not None:  # a resumed warm start: the checkpoint has the weights
            parent = registry.resolve(spec.init_from)
        key = retrain_key(spec.fingerprints, kind.key_settings(spec, train_cfg, registry, parent))
        if retrain.if_changed and not ctx.resume:
            latest = registry.latest(spec.name)
            if unchanged(latest, key):
                yield TrainingRun(registry, retrain, work_dir, spec, parent, key, ctx.budget, latest, "unchanged")
                return
        ctx.budget.evals_after = 1 + (PROMOTION_EVALS if retrain.promote is not None else 0)
        try:
            yield TrainingRun(registry, retrain, work_dir, spec, parent, key, ctx.budget)
        except LockHeld as e:  # only publishing takes a registry lock in there: training is done
            again = (f"publish it with 'rnntool {kind.command} --resume {work_dir}' once the registry is free"
                     if run_dir is not None else "run the command again")
            raise RegistryError(f"trained, but not published: {e}; {again}") from None


def _remove_if_empty(path: Path) -> None:
    """Remove a run directory this command made when nothing but its (released) lock is in it."""
    with contextlib.suppress(OSError):
        if [p.name for p in path.iterdir()] == [RUN_LOCK_FILE]:
            (path / RUN_LOCK_FILE).unlink()
        path.rmdir()  # fails, and keeps it, when anything was written there


def record_publication(work_dir: Path, bundle, run_id: str | None) -> None:
    """``published.json`` in the run directory: what this run published (``models gc --runs`` and
    ``--resume`` read it)."""
    from rnntool.textio import atomic_write_text

    record = {"ref": bundle.ref, "path": str(bundle.path), "run_id": run_id,
              "published": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(work_dir / PUBLISHED_FILE, json.dumps(record) + "\n")


def find_publication(spec, registry, work_dir: Path):
    """The Bundle a run already published (its ``published.json``, else a version whose manifest
    records the run's id: a run killed right after publishing has no record yet), or None."""
    from rnntool.registry.bundle import Bundle
    from rnntool.errors import RegistryError

    record = work_dir / PUBLISHED_FILE
    if record.is_file():
        try:
            path = Path(json.loads(record.read_text(encoding="utf-8"))["path"])
            return Bundle.open(path)
        except (OSError, ValueError, KeyError, TypeError, RegistryError):
            pass  # unreadable, or the version was removed since: look for it by the run's id
    run_id = getattr(spec, "run_id", None)
    if run_id is None:
        return None
    if spec.name is not None:
        candidates = list(reversed(registry.versions(spec.name)))
    else:
        try:
            candidates = [Bundle.open(spec.output)]
        except RegistryError:
            candidates = []
    return next((b for b in candidates if (b.manifest.get("extra") or {}).get("run_id") == run_id), None)


def complete_promotion(registry, bundle, log: Log) -> None:
    """A run killed between publishing and moving its alias: move it now, if the alias still points
    where the recorded decision saw it (another version promoted since is left alone)."""
    from rnntool.registry.store import ModelRef

    decision = (bundle.manifest.get("extra") or {}).get("promotion") or {}
    if bundle.version is None or not decision.get("promoted"):
        return
    alias, old_ref = decision["alias"], decision.get("old_ref")
    if registry.aliases(bundle.name).get(alias) == bundle.version:
        return
    if registry.set_alias(bundle.ref, alias, only_from=ModelRef.parse(old_ref).version if old_ref else None):
        log(f"moved @{alias} to {bundle.ref}, as the run had decided before it was stopped")


def check_fingerprints(spec) -> None:
    """On resume: the inputs must be the files the run started with (``spec.fingerprints``)."""
    from rnntool.textio import fingerprint_file

    for fp in spec.fingerprints:
        path = Path(fp["path"])
        if not path.is_file() or fingerprint_file(path)["sha256"] != fp["sha256"]:
            raise BadInput(f"{path}: changed or missing since the run started; restore it, or start a new run")


def default_run_dir(registry, spec) -> Path | None:
    """A new ``<registry>/runs/<label>-<time>-<random>``; None under torchrun (give --run-dir there)."""
    from rnntool.training.distributed import env_world_size

    if env_world_size() > 1:
        return None
    from rnntool.registry.safe_paths import ensure_dirs

    runs = ensure_dirs(registry.root, registry.root / "runs")
    run_dir = Path(tempfile.mkdtemp(prefix=f"{spec.label}-{time.strftime('%Y%m%d-%H%M%S')}-", dir=runs))
    umask = os.umask(0o022)
    os.umask(umask)
    run_dir.chmod(0o777 & ~umask)  # as the registry's other directories: `models gc --runs` of others can read it
    return run_dir


def publish_run_tokenizer(trainee, registry, work_dir: Path) -> dict:
    """``ModelKind.publish_parents`` of a kind with one tokenizer (``trainee.details["tokenizer"]``: its
    registry reference, None when the run trained it): the one it trained becomes
    ``<name>-tokenizer`` (a run writing ``-o DIR`` publishes nothing); the manifest's parents."""
    from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE

    spec, tok_ref = trainee.spec, trainee.details["tokenizer"]
    if tok_ref is None and spec.name is not None:
        tok_ref = publish_tokenizer(registry, spec.name, work_dir / TOKENIZER_FILE, data_fingerprints(spec))
        trainee.details["tokenizer"] = tok_ref
    return {"tokenizer": tok_ref} if tok_ref is not None else {}


def publish_tokenizer(registry, name: str, tok_path: Path, data: list[dict], *,
                      trained_for: str | None = None) -> str:
    """Publish a tokenizer trained on the fly as ``<name>-tokenizer`` (reusing an identical latest);
    ``trained_for``: the model it was trained with (default ``name``), which `models show` names."""
    from rnntool.textio import sha256_file
    from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE

    tok_name = f"{name}-tokenizer"
    try:
        latest = registry.latest(tok_name)
    except RegistryError:  # a broken newest version: publish a good one above it
        latest = None
    if latest is not None and latest.files.get(TOKENIZER_FILE, {}).get("sha256") == sha256_file(tok_path):
        return latest.ref
    with registry.staging() as stage:
        shutil.copyfile(tok_path, stage / TOKENIZER_FILE)
        bundle = registry.publish(stage, name=tok_name, kind="tokenizer", data=data,
                                  extra={"trained_for": trained_for or name})
    return bundle.ref


__all__ = ["PUBLISHED_FILE", "RUN_LOCK_FILE", "RunContext", "TrainOutcome", "TrainingRun", "check_fingerprints",
           "complete_promotion", "train_model",
           "default_run_dir", "find_publication", "publish_run_tokenizer", "publish_tokenizer", "record_publication", "training_run"]
