"""The steps every `train` command shares around its model kind's own work.

    with training_run(spec, registry, train_cfg, retrain, run_dir=run_dir, resume=resume,
                      prepare=prepare_inputs, warm_start=warm_start_parent, settings=lm_settings,
                      log=log, temp_prefix="rnntool-lm-") as run:
        if run.skip is not None:
            return ...                              # --if-changed: nothing new since run.skip
        ...                                         # tokenizers, data, model (from run.parent), train
        bundle, decision = run.publish(promote=lambda: ..., publish=lambda extra: ...)

Before the kind's work: the ``--name``/``--if-changed`` check, the work directory (the run directory,
else a temporary one), the inputs (fingerprints checked on ``--resume``, else ``prepare``d: stdin
spooled, paths made absolute, fingerprints taken), the per-name training lock, and the retrain start
(warm-start parent, retrain key, skip). After it: the promotion check, publishing with the retrain key
(and the decision) in the manifest, and the alias move.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnntool.errors import BadInput, UsageError
from rnntool.retrain import RetrainOptions, begin, training_lock

Log = Callable[[str], None]


@dataclass
class TrainingRun:
    """A run under way: where it works, what it starts from, and how it ends."""

    registry: Any
    retrain: RetrainOptions
    work_dir: Path
    parent: Any  # the warm-start Bundle, or None
    key: dict  # the retrain key the published manifest records
    skip: Any = None  # with --if-changed and nothing new: the latest version (train nothing)

    def publish(self, *, promote: Callable[[], Any], publish: Callable[[dict], Any]) -> tuple[Any, Any]:
        """(bundle, promotion decision or None): ``promote()`` decides when ``--promote`` was given,
        ``publish(extra)`` writes the bundle; the alias moves only after the bundle is published."""
        extra: dict = {"retrain_key": self.key}
        decision = None
        if self.retrain.promote is not None:
            decision = promote()
            extra["promotion"] = decision.to_dict()
        bundle = publish(extra)
        if decision is not None and decision.promoted:
            self.registry.set_alias(bundle.ref, decision.alias)
        return bundle, decision


@contextlib.contextmanager
def training_run(spec, registry, train_cfg, retrain: RetrainOptions, *, run_dir: Path | None, resume: bool,
                 prepare: Callable[[Any, Path, Log], None], warm_start, settings, log: Log,
                 temp_prefix: str) -> Iterator[TrainingRun]:
    """Yield the TrainingRun (see the module docstring); the lock is held until the block ends."""
    from rnntool.distributed import is_main_process

    if spec.name is None and (retrain.if_changed or retrain.promote):
        raise UsageError("--if-changed and --promote need --name (they compare with the registry)")
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
        if resume:
            check_fingerprints(spec)
        else:
            prepare(spec, work_dir, log)
        if spec.name is not None and is_main_process():
            stack.enter_context(training_lock(registry, spec.name, retrain, log))
        start = begin(spec, registry, train_cfg, retrain, resume=resume, warm_start=warm_start,
                      settings=settings, log=log)
        yield TrainingRun(registry, retrain, work_dir, start.parent, start.key, start.skip)


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()  # fails, and keeps it, when anything was written there


def check_fingerprints(spec) -> None:
    """On resume: the inputs must be the files the run started with (``spec.fingerprints``)."""
    from rnntool.textio import fingerprint_file

    for fp in spec.fingerprints:
        path = Path(fp["path"])
        if not path.is_file() or fingerprint_file(path)["sha256"] != fp["sha256"]:
            raise BadInput(f"{path}: changed or missing since the run started; restore it, or start a new run")


def default_run_dir(registry, spec) -> Path | None:
    """A new ``<registry>/runs/<label>-<time>-<random>``; None under torchrun (give --run-dir there)."""
    from rnntool.distributed import env_world_size

    if env_world_size() > 1:
        return None
    runs = registry.root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{spec.label}-{time.strftime('%Y%m%d-%H%M%S')}-", dir=runs))


def publish_tokenizer(registry, name: str, tok_path: Path, data: list[dict]) -> str:
    """Publish a tokenizer trained on the fly as ``<name>-tokenizer`` (reusing an identical latest)."""
    from rnntool.textio import sha256_file
    from rnntool.tokenizer import TOKENIZER_FILE

    tok_name = f"{name}-tokenizer"
    latest = registry.latest(tok_name)
    if latest is not None and latest.files.get(TOKENIZER_FILE, {}).get("sha256") == sha256_file(tok_path):
        return latest.ref
    with registry.staging() as stage:
        shutil.copyfile(tok_path, stage / TOKENIZER_FILE)
        bundle = registry.publish(stage, name=tok_name, kind="tokenizer", data=data,
                                  extra={"trained_for": name})
    return bundle.ref


__all__ = ["TrainingRun", "check_fingerprints", "default_run_dir", "publish_tokenizer", "training_run"]
