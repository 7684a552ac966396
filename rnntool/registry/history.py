"""A model's history as `rnntool models show NAME` presents it: key metrics, promotion, training log.

    key_metrics(bundle)        # {"val_ppl": 31.2, "val_bpc": 1.41} for an LM, BLEU and loss for translation
    promotion(bundle)          # extra.promotion written by `train ... --promote ALIAS`, or None
    training_log(bundle)       # the records of the bundle's metrics.jsonl (what `--plot` draws for NAME@N)

No torch, no printing: the CLI formats, plotting.py draws.
"""

from __future__ import annotations

import json
import math

from rnntool.kinds.catalog import CATALOG, METRICS_FILE
from rnntool.errors import CorruptBundle, RegistryError

# The validation metrics that say how good a version is, best known first, per bundle kind; and the
# one metric that tracks quality over a training run (the lower panel of a training curve).
KEY_METRICS: dict[str, tuple[str, ...]] = {kind: e.key_metrics for kind, e in CATALOG.items() if e.key_metrics}
CURVE_METRIC: dict[str, tuple[str, ...]] = {kind: e.curve_metrics for kind, e in CATALOG.items() if e.curve_metrics}
HIGHER_IS_BETTER = frozenset({"val_bleu", "bleu", "val_chrf", "chrf"})
METRIC_LABELS = {
    "val_ppl": "validation perplexity",
    "val_bpc": "validation bits per character",
    "val_bleu": "validation BLEU",
    "val_loss": "validation loss (nats/token)",
}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_label(metric: str) -> str:
    direction = "higher is better" if metric in HIGHER_IS_BETTER else "lower is better"
    return f"{METRIC_LABELS.get(metric, metric)} ({direction})"


def key_metrics(bundle) -> dict:
    """The kind's key validation metrics this version has; every metric when it has none of them."""
    metrics = bundle.metrics
    keys = [k for k in KEY_METRICS.get(bundle.kind, ()) if k in metrics]
    return {k: metrics[k] for k in keys} if keys else dict(metrics)


def plotted_metrics(bundles: list) -> list[str]:
    """Metrics to draw across versions: the kind's key metrics that any version has, else its val_*."""
    present: dict[str, None] = {}
    for b in bundles:
        for k in KEY_METRICS.get(b.kind, ()):
            if is_number(b.metrics.get(k)):
                present[k] = None
    if not present:
        for b in bundles:
            for k, v in b.metrics.items():
                if k.startswith("val_") and is_number(v):
                    present[k] = None
    return list(present)


def promotion(bundle) -> dict | None:
    """The promotion decision recorded when this version was trained with --promote, if any."""
    extra = bundle.manifest.get("extra") or {}
    p = extra.get("promotion") if isinstance(extra, dict) else None
    return p if isinstance(p, dict) else None


def promotion_text(p: dict | None) -> str:
    """``yes @prod`` / ``no @prod`` / ``-`` (no --promote for that version)."""
    if not p:
        return "-"
    alias = f" @{p['alias']}" if p.get("alias") else ""
    return ("yes" if p.get("promoted") else "no") + alias


def training_log(bundle) -> list[dict]:
    """The records of the bundle's training log (``type`` "train" or "eval", with ``step``)."""
    if not bundle.has_file(METRICS_FILE):
        raise RegistryError(
            f"{bundle.ref} ({bundle.kind}) has no training log ({METRICS_FILE}); "
            "training curves exist for models trained with 'rnntool train'"
        )
    path = bundle.file(METRICS_FILE)
    records: list[dict] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptBundle(f"{path}: cannot read ({e}); run 'rnntool models verify {bundle.ref}'") from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise CorruptBundle(
                f"{path}:{lineno}: not a JSON line; run 'rnntool models verify {bundle.ref}'"
            ) from None
        if isinstance(record, dict) and is_number(record.get("step")):
            records.append(record)
    return records


def series(records: list[dict], kind: str, key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over the records of one ``type``, skipping missing/non-finite values."""
    steps: list[float] = []
    values: list[float] = []
    for r in records:
        if r.get("type") == kind and is_number(r.get(key)):
            steps.append(r["step"])
            values.append(float(r[key]))
    return steps, values


__all__ = [
    "CURVE_METRIC",
    "KEY_METRICS",
    "is_number",
    "key_metrics",
    "metric_label",
    "plotted_metrics",
    "promotion",
    "promotion_text",
    "series",
    "training_log",
]
