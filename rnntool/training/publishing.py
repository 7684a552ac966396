"""Publishing a trained model: the steps every model kind shares.

The metrics recorded from a ``TrainResult``, the run's ``metrics.jsonl`` copied into the bundle,
and the choice between the registry (``--name``) and a bundle directory (``-o DIR``). The kind
supplies only its files (weights, tokenizers) and its config.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path


def result_metrics(result) -> dict:
    """``val_*`` of the best evaluation plus how training went."""
    metrics = {f"val_{k}": v for k, v in result.best_metrics.items()}
    unit = getattr(result, "unit", "tokens")
    metrics.update({"best_step": result.best_step, "steps": result.steps, f"train_{unit}": result.tokens,
                    f"{unit}_per_s": round(result.tokens_per_s, 1), "stop_reason": result.stop_reason})
    scale = getattr(result, "loss_scale", None)
    if scale:  # fp16: where the loss scale ended and how many updates its overflows skipped
        metrics.update({"loss_scale": scale["scale"], "overflow_steps": scale["overflows"]})
    return metrics


def bundle_name(output: str, default: str) -> str:
    """A valid model name from an ``-o DIR`` directory name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", Path(output).name.lower()).strip("-._")
    return name or default


def check_destination(name: str | None, output: str | None) -> None:
    """Every run publishes to the registry (``--name``) or writes a bundle (``-o DIR``): exactly one,
    a valid name, an output directory it may write. Checked before any work."""
    from rnntool.errors import UsageError
    from rnntool.registry.bundle import validate_name

    if name is None and output is None:
        raise UsageError("say where the model goes: --name NAME (publish to the registry) or -o DIR (write a "
                         "bundle)")
    if name is not None and output is not None:
        raise UsageError("give --name NAME (publish to the registry) or -o DIR (write a bundle), not both")
    if name is not None:
        validate_name(name)
    check_output_dir(output)


def check_output_dir(output: str | None) -> None:
    """``-o DIR`` must be new, empty or an rnntool bundle: found before training, not after it."""
    from rnntool.registry.bundle import MANIFEST
    from rnntool.errors import UsageError

    out = Path(output) if output else None
    if out is not None and out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())
    ):
        raise UsageError(f"{out} exists and is not an rnntool bundle; choose another -o directory or remove it")


def publish_trained(registry, *, kind: str, name: str | None, output: str | None, result,
                    run_dir: Path | None, write_files: Callable[[Path], None], config: dict, data: list,
                    parents: dict, more_extra: dict | None = None, record_run_dir: bool = True):
    """Stage the kind's files (``write_files(stage)``) and the metrics log, then publish under
    ``name`` or write the bundle to ``output``. Returns the Bundle. ``run_dir`` is recorded in the
    manifest only when it outlives the command (None for a default run directory removed after
    publishing); its metrics log is copied either way."""
    from rnntool.kinds.catalog import METRICS_FILE
    from rnntool.errors import DiskFull
    from rnntool.registry.store import write_bundle

    extra = {"run_dir": str(run_dir) if run_dir and record_run_dir else None, "world_size": result.world_size,
             **(more_extra or {})}
    with DiskFull.translating(registry.staging_dir if name is not None else output):  # a bundle is renamed
        with registry.staging() as stage:                                               # into place whole
            write_files(stage)
            metrics_log = run_dir / METRICS_FILE if run_dir else None
            if metrics_log is not None and metrics_log.exists():
                shutil.copyfile(metrics_log, stage / METRICS_FILE)
            else:
                (stage / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in result.history))
            kw = dict(kind=kind, config=config, metrics=result_metrics(result), data=data, parents=parents,
                      extra=extra)
            if name is not None:
                return registry.publish(stage, name=name, **kw)
            return write_bundle(stage, output, name=bundle_name(output, kind), **kw)
