"""Cron retraining for translation models: warm starts, the retrain key, and the promotion check.

The generic rules are in rnntool/training/retrain.py. A promotion here translates the validation source
with both models (the default decoding of `rnntool translate`: beam 5), scores both with sacreBLEU
against the validation references, and runs sacreBLEU's paired bootstrap test: the new model
must be better by at least --min-delta BLEU and the difference significant (p < 0.05).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
from rnntool.tokenizers.sentencepiece import SIDE_FILES

Log = Callable[[str], None]
METRIC = "bleu"
MODEL_ONLY = ("src_vocab_size", "tgt_vocab_size", "share_embeddings")  # follow from the tokenizers


def _file_sha(bundle, side: str) -> str | None:
    return bundle.files.get(SIDE_FILES[side], {}).get("sha256")


def warm_start_parent(spec, registry, ref: str, log: Log):
    """The published translation model to start from: its tokenizers and architecture become the
    run's; different tokenizers given with -t/--src-tokenizer/--tgt-tokenizer are an error."""
    parent = registry.load(ref, kind="translation")
    want = {side: _file_sha(parent, side) for side in ("src", "tgt")}
    given = ({"src": spec.tokenizer, "tgt": spec.tokenizer} if spec.tokenizer is not None else
             {"src": spec.src_tokenizer, "tgt": spec.tgt_tokenizer} if spec.src_tokenizer is not None else None)
    if given is not None:
        for side, tok_ref in given.items():
            if tokenizer_sha(registry, tok_ref) != want[side]:
                raise BadInput(f"tokenizer mismatch: {tok_ref} is not the {side} tokenizer of {parent.ref}; "
                               "a warm start keeps the vocabulary — drop the tokenizer options")
    else:  # the parent's own tokenizer versions (its parents), which must be the very files it carries
        p = parent.parents
        refs = ({"src": p["tokenizer"], "tgt": p["tokenizer"]} if "tokenizer" in p else
                {"src": p.get("src_tokenizer"), "tgt": p.get("tgt_tokenizer")})
        try:
            ok = all(r is not None and tokenizer_sha(registry, r) == want[s] for s, r in refs.items())
        except RegistryError:
            ok = False
        if not ok:
            raise BadInput(f"cannot warm-start from {parent.ref}: its tokenizers are not in the registry; "
                           "give them with --src-tokenizer/--tgt-tokenizer")
        if refs["src"] == refs["tgt"]:
            spec.tokenizer = refs["src"]
        else:
            spec.src_tokenizer, spec.tgt_tokenizer = refs["src"], refs["tgt"]
        spec.joint_vocab = False
    from rnntool.kinds.translation.model import Seq2SeqConfig

    adopt_architecture(spec, parent, Seq2SeqConfig.from_dict(parent.config["model"]).to_dict(), derived=MODEL_ONLY,
                       log=log, describe="{cell}, {layers}x{hidden_dim}, attention {attention}")
    return parent


def translation_settings(spec, train_cfg, registry, parent) -> dict:
    """What shapes the model, for the retrain key (see rnntool.training.retrain.model_settings)."""
    return model_settings("translation", spec, train_cfg, registry, parent,
                          tokenizer_fields=("tokenizer", "src_tokenizer", "tgt_tokenizer"),
                          runtime_fields=("src", "tgt", "tsv", "valid_src", "valid_tgt"),
                          added_later={"sample_alpha": 0.0})


def _settings():
    """The decoding `rnntool translate` uses by default (beam 5, GNMT length penalty)."""
    from rnntool.kinds.translation.translate import DEFAULT_LENGTH_PENALTY, DecodeSettings

    return DecodeSettings(beam=5, length_penalty=DEFAULT_LENGTH_PENALTY)


def _translate(model, src_tok, tgt_tok, sources: Sequence[str]) -> list[str]:
    from rnntool.kinds.translation.translate import Translator

    return [t.best.text for t in Translator(model, src_tok, tgt_tok, _settings()).translate(list(sources))]


def translation_promotion(spec, registry, model, src_tok, tgt_tok, valid_src: Sequence[str],
                          valid_refs: Sequence[str], retrain: RetrainOptions, log: Log) -> PromotionDecision:
    """Translate the validation source with the new and the aliased model; compare by paired bootstrap."""
    from rnntool.kinds.translation.bleu import corpus_bleu, paired_bootstrap
    from rnntool.kinds.translation.translate import open_translator
    from rnntool.layers.weights import model_device

    alias = retrain.promote
    model.eval()
    new_hyps = _translate(model, src_tok, tgt_tok, valid_src)
    current = registry.aliases(spec.name).get(alias)
    if current is None:
        return first_promotion(alias, METRIC, True, corpus_bleu(new_hyps, valid_refs))
    old_ref = f"{spec.name}@{current}"
    old = open_translator(old_ref, registry.root, device=str(model_device(model)), settings=_settings())
    old_hyps = [t.best.text for t in old.translate(list(valid_src))]
    test = paired_bootstrap(old_hyps, new_hyps, list(valid_refs))
    log(f"promotion check on {len(valid_src)} validation sentences: new BLEU {test['score_b']:.2f} vs "
        f"{old_ref} {test['score_a']:.2f} (paired bootstrap p={test['p_value']:.3f})")
    return decide(alias, METRIC, higher_is_better=True, new_score=test["score_b"], old_score=test["score_a"],
                  old_ref=old_ref, min_delta=retrain.min_delta, p_value=test["p_value"])
