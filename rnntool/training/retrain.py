"""Retraining from cron: skip unchanged work, warm starts, and gated promotion of an alias.

Shared by every `train` command (the per-kind evaluation lives with each model kind).

Skip unchanged work (``--if-changed``)
    Every published model records ``extra.retrain_key`` = the sha256 of each data file (in order)
    and one sha256 of the settings that shape the model (model, data and training options, the
    resolved tokenizer and warm-start parent; not paths, device, threads or checkpoint cadence).
    A run whose key equals the latest version's is skipped. The key is computed from fingerprints
    taken before training starts, so a file edited during training is not recorded wrongly.

Gated promotion (``--promote ALIAS [--min-delta D]``)
    The new model and the version ALIAS points to are both evaluated, fresh, on the same
    validation data. Language models: bits per character (fair across tokenizers; lower is
    better). Translation: sacreBLEU with the paired bootstrap test (higher is better, and the
    difference must be significant at p < 0.05). Classifiers: the ``--select`` metric with the
    paired bootstrap test on the validation examples (rnntool/kinds/classifier/predict.py). The
    new version must win by at least D. No alias
    yet: promote. The decision is stored in the new version's manifest (``extra.promotion``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

# Settings of every kind that do not change what is learned: left out of the retrain key at any depth.
# (A kind names its own spec fields of that sort, such as its input paths: ModelKind.runtime_fields.)
RUNTIME_KEYS = frozenset({
    "device", "threads", "save_every", "run_dir", "resume", "quiet", "log_file", "on_bad_utf8", "name",
    "output", "fingerprints", "json", "registry", "if_changed", "promote", "min_delta", "wait", "run_id",
})
SIGNIFICANCE = 0.05


def tokenizer_sha(registry, ref: str) -> str | None:
    """The sha256 of the tokenizer file of a published tokenizer bundle (what a retrain key and a
    warm start compare, rather than the reference text)."""
    from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE

    return registry.resolve(ref).files.get(TOKENIZER_FILE, {}).get("sha256")


@dataclass
class RetrainOptions:
    """The cron-related options of `train lm|translate`."""

    if_changed: bool = False
    promote: str | None = None
    min_delta: float = 0.0
    init_from: str | None = None
    wait: bool = False
    train_further: bool = False  # a resume that raised the budget: a run that had published trains on


def adopt_architecture(spec, parent, model_config: dict, *, derived: tuple[str, ...], describe: str,
                       log) -> None:
    """A warm start trains the parent's architecture: ``spec.model`` becomes ``model_config`` (the
    parent's, with defaults filled in for settings newer than it) without the ``derived`` fields
    (vocabulary sizes: they follow from the tokenizers), said in the log when it differs from what
    was asked."""
    model = {k: v for k, v in model_config.items() if k not in derived}
    asked = spec.model
    if model != asked:
        ignored = [f"--{k.replace('_', '-')} {asked[k]}" for k in asked if model.get(k) != asked[k]]
        log(f"warm start from {parent.ref}: using its architecture ({describe.format_map(model)})"
            + (f"; ignoring {', '.join(ignored)}" if ignored else ""))
    spec.model = model
    spec.init_from = parent.ref


def model_settings(kind: str, spec, train_cfg, registry, parent, *, tokenizer_fields: tuple[str, ...],
                   runtime_fields: tuple[str, ...] = (), added_later: dict | None = None) -> dict:
    """What shapes the model, for the retrain key (paths and runtime knobs are dropped there): the
    run spec without its ``runtime_fields`` (input paths...) and ``tokenizer_fields`` (references as
    typed, "spm" or "spm@2"), the training config, the tokenizer files themselves (their sha256) and
    the warm-start parent. ``added_later``: spec fields added after keys were first recorded, with
    their defaults; left out while at the default, so that an upgrade alone does not retrain."""
    dropped = set(runtime_fields) | set(tokenizer_fields) | {"init_embeddings"}  # its fingerprint is in the key
    later = {"freeze_embeddings": False, **(added_later or {})}
    spec_settings = {k: v for k, v in asdict(spec).items()
                     if k not in dropped and not (k in later and v == later[k])}
    settings = {"kind": kind, "spec": spec_settings, "train": train_cfg.to_dict()}
    for field in tokenizer_fields:
        ref = getattr(spec, field)
        if ref is not None:
            settings[f"{field}_sha256"] = tokenizer_sha(registry, ref)
    if parent is not None:
        settings["init_from"] = parent.ref
    return settings


def training_lock(registry, name: str, retrain: RetrainOptions, log=lambda msg: None):
    """The per-name training lock: LockHeld (exit 75) when another run holds it, unless --wait, which
    says in the log whom it waits for and then queues behind it."""
    from rnntool.errors import LockHeld

    if not retrain.wait:
        return registry.training_lock(name, hint="wait for it to finish, or pass --wait to queue behind it")
    try:
        return registry.training_lock(name, hint="waiting for it to finish")
    except LockHeld as e:
        log(f"--wait: {e}")
    return registry.training_lock(name, wait=True)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items()) if k not in RUNTIME_KEYS}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def retrain_key(data_fingerprints: list[dict], settings: dict) -> dict:
    """``{"data": [sha256, ...], "settings": sha256}`` — what ``--if-changed`` compares."""
    blob = json.dumps(_canonical(settings), sort_keys=True, separators=(",", ":"), default=str)
    return {
        "data": [fp["sha256"] for fp in data_fingerprints],
        "settings": hashlib.sha256(blob.encode("utf-8")).hexdigest(),
    }


def unchanged(latest, key: dict) -> bool:
    """True when the latest published version was trained from the same data and settings."""
    if latest is None:
        return False
    recorded = (latest.manifest.get("extra") or {}).get("retrain_key")
    return recorded == key


@dataclass
class PromotionDecision:
    alias: str
    promoted: bool
    reason: str
    metric: str  # "val_bpc" | "bleu"
    higher_is_better: bool
    new_score: float | None
    old_score: float | None = None
    old_ref: str | None = None
    min_delta: float = 0.0
    p_value: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.old_ref is None:
            return f"promoted to @{self.alias} (no previous @{self.alias})"
        verb = "promoted to" if self.promoted else "not promoted to"
        p = f", p={self.p_value:.3f}" if self.p_value is not None else ""
        return (f"{verb} @{self.alias}: {self.metric} {self.new_score:.4f} vs {self.old_score:.4f} "
                f"of {self.old_ref}{p} ({self.reason})")


def first_promotion(alias: str, metric: str, higher_is_better: bool, new_score: float | None) -> PromotionDecision:
    return PromotionDecision(alias, True, f"no version had @{alias}", metric, higher_is_better, new_score)


def decide(alias: str, metric: str, *, higher_is_better: bool, new_score: float, old_score: float,
           old_ref: str, min_delta: float = 0.0, p_value: float | None = None) -> PromotionDecision:
    """Promote when the new score beats the old by at least ``min_delta`` (and, when a p-value is
    given, the difference is significant at ``SIGNIFICANCE``)."""
    gain = (new_score - old_score) if higher_is_better else (old_score - new_score)
    if gain < min_delta or gain <= 0:
        better = "higher" if higher_is_better else "lower"
        reason = f"needs {metric} {better} by at least {max(min_delta, 0):g}; gain {gain:+.4f}"
        promoted = False
    elif p_value is not None and p_value >= SIGNIFICANCE:
        reason = f"gain {gain:+.4f} is not significant (paired bootstrap p={p_value:.3f} >= {SIGNIFICANCE})"
        promoted = False
    else:
        reason = f"gain {gain:+.4f}" + (f", significant (p={p_value:.3f})" if p_value is not None else "")
        promoted = True
    return PromotionDecision(alias, promoted, reason, metric, higher_is_better, new_score, old_score,
                             old_ref, min_delta, p_value)
