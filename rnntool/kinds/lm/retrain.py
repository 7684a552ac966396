"""Cron retraining for language models: warm starts, the retrain key, and the promotion check.

The generic rules (what the key covers, how a promotion is decided) are in rnntool/training/retrain.py;
this module supplies what is particular to language models: the tokenizer and architecture of a
warm-start parent, and the fresh evaluation of two models on the same validation text in bits
per character (fair even when their tokenizers differ).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterator

from rnntool.errors import BadInput, RegistryError
from rnntool.training.retrain import (
    PromotionDecision,
    RetrainOptions,
    adopt_architecture,
    decide,
    first_promotion,
    model_settings,
    tokenizer_sha,
)
from rnntool.textio import read_lines
from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE

Log = Callable[[str], None]
METRIC = "val_bpc"


def warm_start_parent(spec, registry, ref: str, log: Log):
    """The published LM to start from. Its tokenizer and architecture become the run's; a different
    ``-t`` tokenizer is an error (the embeddings would mean nothing)."""
    parent = registry.load(ref, kind="lm")
    parent_tok_sha = parent.files.get(TOKENIZER_FILE, {}).get("sha256")
    if spec.tokenizer is not None:
        tok_bundle = registry.resolve(spec.tokenizer)
        sha = tok_bundle.files.get(TOKENIZER_FILE, {}).get("sha256")
        if sha != parent_tok_sha:
            raise BadInput(
                f"tokenizer mismatch: {tok_bundle.ref} is not the tokenizer of {parent.ref}; a warm start "
                f"keeps the vocabulary — drop -t, or give -t {parent.parents.get('tokenizer', parent.ref)}"
            )
    else:  # the parent's own tokenizer version when it has one (the same file), else the LM bundle
        tok_ref = parent.parents.get("tokenizer")
        same = False
        if tok_ref is not None:
            try:
                same = tokenizer_sha(registry, tok_ref) == parent_tok_sha
            except RegistryError:
                same = False
        spec.tokenizer = tok_ref if same else parent.ref
    from rnntool.kinds.lm.model import LMConfig

    adopt_architecture(spec, parent, LMConfig.from_dict(parent.config["model"]).to_dict(), derived=("vocab_size",),
                       describe="{cell}, {layers}x{hidden_dim}", log=log)
    return parent


def lm_settings(spec, train_cfg, registry, parent) -> dict:
    """What shapes the model, for the retrain key (see rnntool.training.retrain.model_settings)."""
    return model_settings("lm", spec, train_cfg, registry, parent, tokenizer_fields=("tokenizer",),
                          runtime_fields=("inputs", "valid", "cache_dir"))


def validation_lines(spec) -> Iterator[str]:
    """The validation text the run held out: ``--valid``, or the last fraction of the input lines."""
    if spec.valid is not None:
        yield from read_lines(spec.valid, on_bad_utf8=spec.on_bad_utf8)
        return
    n_lines = sum(fp["lines"] for fp in spec.fingerprints[: len(spec.inputs)])
    n_valid = max(1, round(n_lines * spec.valid_fraction))
    tail: collections.deque[str] = collections.deque(maxlen=n_valid)
    for path in spec.inputs:
        tail.extend(read_lines(path, on_bad_utf8=spec.on_bad_utf8, allow_empty=True))
    yield from tail


def bits_per_char(model, tokenizer, mode: str, lines) -> float:
    from rnntool.kinds.lm.scoring import Totals, score_lines

    model.eval()
    totals = Totals()
    for _ in score_lines(model, tokenizer, lines, mode, totals=totals):
        pass
    summary = totals.summary()
    return summary["bits_per_character"]


def lm_promotion(spec, registry, model, tokenizer, retrain: RetrainOptions, log: Log) -> PromotionDecision:
    """Evaluate the new model and the aliased one, fresh, on this run's validation text."""
    from rnntool.kinds.lm.model import open_lm
    from rnntool.layers.weights import model_device

    alias = retrain.promote
    new_bpc = bits_per_char(model, tokenizer, spec.mode, validation_lines(spec))
    current = registry.aliases(spec.name).get(alias)
    if current is None:
        return first_promotion(alias, METRIC, False, new_bpc)
    old_ref = f"{spec.name}@{current}"
    old = open_lm(old_ref, registry.root, device=str(model_device(model)))  # WrongKind unless a language model
    old_mode = (old.bundle.config.get("data") or {}).get("mode", spec.mode)
    old_bpc = bits_per_char(old.model, old.tokenizer, old_mode, validation_lines(spec))
    log(f"promotion check on the validation text: new {new_bpc:.4f} vs {old_ref} {old_bpc:.4f} bits/char")
    if not (math.isfinite(new_bpc) and math.isfinite(old_bpc)):
        return PromotionDecision(alias, False, "a score is not finite", METRIC, False, new_bpc, old_bpc, old_ref,
                                 retrain.min_delta)
    return decide(alias, METRIC, higher_is_better=False, new_score=new_bpc, old_score=old_bpc, old_ref=old_ref,
                  min_delta=retrain.min_delta)
