"""The steps every `train` command shares around its model kind's own work.

    with training_run(spec, registry, train_cfg, retrain, kind="lm", run_dir=run_dir, resume=resume,
                      prepare=prepare_inputs, warm_start=warm_start_parent, settings=lm_settings,
                      log=log, temp_prefix="rnntool-lm-", budget=budget) as run:
        if run.skip is not None:
            return ...                              # nothing new since run.skip, or already published
        ...                                         # tokenizers, data, model (from run.parent), train
        bundle, decision = run.publish(promote=lambda: ..., publish=lambda extra: ...)

Before the kind's work: the ``--name``/``--if-changed`` check, the work directory (the run directory,
else a temporary one), the inputs (fingerprints checked on ``--resume``, else ``prepare``d: stdin
spooled, paths made absolute, fingerprints taken), the run directory's lock, the per-name training
lock, and the retrain start (warm-start parent, retrain key, skip). After it: the promotion check,
publishing with the retrain key, the run's id (and the decision) in the manifest, the record of it in
the run directory (``published.json``), and the alias move.

A resumed run that had already published (killed before it could exit) publishes nothing again: it is
found by its ``published.json``, or by the run id in a manifest when the kill came before the record,
and an alias move the kill prevented is completed. Only a resume that raises the budget
(``retrain.train_further``) trains such a run on and publishes it again. ``--promote``/``--min-delta`` are part of the
run (``spec.promote``), so a resume does everything the original command asked.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnntool.errors import BadInput, DiskFull, LockHeld, RegistryError, UsageError
from rnntool.training.retrain import RetrainOptions, begin, training_lock
from rnntool.training.time_budget import TimeBudget

Log = Callable[[str], None]
PUBLISHED_FILE = "published.json"  # in a run directory: what the run published (its resume does nothing)
RUN_LOCK_FILE = "run.lock"  # in a run directory: held while a process trains or resumes it
PROMOTION_EVALS = 2  # --promote validates the new model and the aliased one
TRAIN_COMMANDS = {"lm": "train lm", "translation": "train translate"}


@dataclass
class TrainingRun:
    """A run under way: where it works, what it starts from, and how it ends."""

    registry: Any
    retrain: RetrainOptions
    work_dir: Path
    parent: Any  # the warm-start Bundle, or None
    key: dict  # the retrain key the published manifest records
    run_id: str | None = None  # recorded in the manifest: a resume finds what its run published
    budget: TimeBudget = field(default_factory=TimeBudget)
    skip: Any = None  # a Bundle when there is nothing to train (see skip_reason)
    skip_reason: str | None = None  # "unchanged" (--if-changed) or "published" (a resume of a finished run)

    def publish(self, *, promote: Callable[[], Any], publish: Callable[[dict], Any]) -> tuple[Any, Any]:
        """(bundle, promotion decision or None): ``promote()`` decides when ``--promote`` was given,
        ``publish(extra)`` writes the bundle; the run directory records it at once (so a resume does
        not publish it again), and the alias moves only after that."""
        extra: dict = {"retrain_key": self.key}
        if self.run_id is not None:
            extra["run_id"] = self.run_id
        decision = None
        if self.retrain.promote is not None:
            with self.budget.phase("promoting"):
                decision = promote()
            extra["promotion"] = decision.to_dict()
        with self.budget.phase("publishing"):
            bundle = publish(extra)
            with contextlib.suppress(OSError):  # best effort: a resume also finds the version by its run id
                record_publication(self.work_dir, bundle, self.run_id)
            if decision is not None and decision.promoted:
                try:
                    with DiskFull.translating(published=bundle.ref):
                        self.registry.set_alias(bundle.ref, decision.alias)
                except LockHeld as e:
                    raise RegistryError(f"published {bundle.ref}, but could not move @{decision.alias} to it: {e}; "
                                        f"move it with 'rnntool models alias {bundle.ref} {decision.alias}'") from None
        return bundle, decision


@contextlib.contextmanager
def training_run(spec, registry, train_cfg, retrain: RetrainOptions, *, kind: str, run_dir: Path | None,
                 resume: bool, prepare: Callable[[Any, Path, Log], None], warm_start, settings, log: Log,
                 temp_prefix: str, budget: TimeBudget | None = None) -> Iterator[TrainingRun]:
    """Yield the TrainingRun (see the module docstring); the locks are held until the block ends."""
    from rnntool.training.distributed import is_main_process
    from rnntool.registry.locking import FileLock

    budget = budget or TimeBudget()
    if spec.name is None and (retrain.if_changed or retrain.promote):
        raise UsageError("--if-changed and --promote need --name (they compare with the registry)")
    if spec.name is not None:
        registry.check_name_kind(spec.name, kind)  # before any work: a name holds one kind of model
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=temp_prefix)))
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
        if resume and not retrain.train_further:
            done = find_publication(spec, registry, work_dir)
            if done is not None:
                if is_main_process():
                    complete_promotion(registry, done, log)
                yield TrainingRun(registry, retrain, work_dir, None, {}, spec.run_id, budget, done, "published")
                return
        if resume:
            check_fingerprints(spec)
        else:
            prepare(spec, work_dir, log)
            spec.run_id = uuid.uuid4().hex
            spec.promote, spec.min_delta = retrain.promote, retrain.min_delta  # a resume does the same
        if spec.name is not None and is_main_process():
            stack.enter_context(training_lock(registry, spec.name, retrain, log))
        start = begin(spec, registry, train_cfg, retrain, resume=resume, warm_start=warm_start,
                      settings=settings, log=log)
        budget.evals_after = 1 + (PROMOTION_EVALS if retrain.promote is not None else 0)
        try:
            yield TrainingRun(registry, retrain, work_dir, start.parent, start.key, spec.run_id, budget,
                              start.skip, "unchanged" if start.skip is not None else None)
        except LockHeld as e:  # only publishing takes a registry lock in there: training is done
            again = (f"publish it with 'rnntool {TRAIN_COMMANDS[kind]} --resume {work_dir}' once the registry is free"
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


def publish_tokenizer(registry, name: str, tok_path: Path, data: list[dict]) -> str:
    """Publish a tokenizer trained on the fly as ``<name>-tokenizer`` (reusing an identical latest)."""
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
                                  extra={"trained_for": name})
    return bundle.ref


__all__ = ["PUBLISHED_FILE", "RUN_LOCK_FILE", "TrainingRun", "check_fingerprints", "complete_promotion",
           "default_run_dir", "find_publication", "publish_tokenizer", "record_publication", "training_run"]
