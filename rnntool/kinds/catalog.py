"""The model kinds rnntool knows, one line each (torch-free: the registry and the CLI read it).

    entry("lm").label                   # "a language model"
    entry("lm").files                   # what its bundles hold (publishing and verify enforce it)
    entry("translation").key_metrics    # what `models list/show` report first
    model_kind("lm")                    # its ModelKind (rnntool/training/kind.py), imported on demand
    entry("lm").input_embeddings        # what reads its word vectors (rnntool/vectors/io.py: load_vectors)

The registry (bundle kinds and files), `models list/show` (key metrics, curves), tokenizer loading
(which files are tokenizers) and `train` (which implementation trains a kind) ask this table rather
than compare kind names. A new kind is a folder under rnntool/kinds/, a CLI module and a line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

METRICS_FILE = "metrics.jsonl"  # the training log: in the run directory, copied into trained bundles
WEIGHTS_FILE = "model.safetensors"  # every trained kind's weights
TOKENIZER_FILE = "tokenizer.model"  # one SentencePiece model
SIDE_FILES = {"src": "tokenizer.src.model", "tgt": "tokenizer.tgt.model"}  # a translation's two
SHORTLIST_FILE = "shortlist.safetensors"  # a translation's lexical table (rnntool/kinds/translation/shortlist.py)
VOCAB_FILE = "vocab.json"  # a tagger's word, character and tag vocabularies


@dataclass(frozen=True)
class KindEntry:
    name: str  # the manifest's "kind"
    noun: str  # "language model"
    files: tuple[str, ...]  # every file its bundles may hold besides the manifest
    tokenizer_files: tuple[str, ...]  # which of them are SentencePiece models (one, or src and tgt)
    key_metrics: tuple[str, ...] = ()  # how good a version is, best known first (`models list/show`)
    curve_metrics: tuple[str, ...] = ()  # the metric a training curve follows, best known first
    implementation: str | None = None  # "module:attribute" of its ModelKind, for kinds rnntool trains
    sentence_encoder: str | None = None  # "module:function" (bundle, device) -> its encoder for `rnntool embed`
    input_embeddings: str | None = None  # "module:function" (bundle, side) -> its input embedding table (WordVectors)

    @property
    def label(self) -> str:
        return f"a {self.noun}"


CATALOG: dict[str, KindEntry] = {e.name: e for e in (
    KindEntry("tokenizer", "tokenizer", (TOKENIZER_FILE,), (TOKENIZER_FILE,)),
    KindEntry("lm", "language model", (WEIGHTS_FILE, TOKENIZER_FILE, METRICS_FILE), (TOKENIZER_FILE,),
              key_metrics=("val_ppl", "val_bpc"), curve_metrics=("val_bpc", "val_ppl"),
              implementation="rnntool.kinds.lm.train:KIND",
              sentence_encoder="rnntool.kinds.lm.sentences:open_lm_encoder",
              input_embeddings="rnntool.kinds.lm.vectors:lm_vectors"),
    KindEntry("translation", "translation model", (WEIGHTS_FILE, *SIDE_FILES.values(), METRICS_FILE, SHORTLIST_FILE),
              tuple(SIDE_FILES.values()), key_metrics=("val_bleu", "val_loss"),
              curve_metrics=("val_bleu", "val_ppl"), implementation="rnntool.kinds.translation.train:KIND",
              sentence_encoder="rnntool.kinds.translation.sentences:open_translation_encoder",
              input_embeddings="rnntool.kinds.translation.vectors:translation_vectors"),
    KindEntry("classifier", "text classifier", (WEIGHTS_FILE, TOKENIZER_FILE, METRICS_FILE), (TOKENIZER_FILE,),
              key_metrics=("val_accuracy", "val_macro_f1"), curve_metrics=("val_accuracy", "val_loss"),
              implementation="rnntool.kinds.classifier.train:KIND",
              sentence_encoder="rnntool.kinds.classifier.sentences:open_classifier_encoder",
              input_embeddings="rnntool.kinds.classifier.vectors:classifier_vectors"),
    KindEntry("tagger", "sequence tagger", (WEIGHTS_FILE, VOCAB_FILE, METRICS_FILE), (),
              key_metrics=("val_span_f1", "val_accuracy"), curve_metrics=("val_span_f1", "val_accuracy"),
              implementation="rnntool.kinds.tagger.train:KIND",
              sentence_encoder="rnntool.kinds.tagger.sentences:open_tagger_encoder",
              input_embeddings="rnntool.kinds.tagger.vectors:tagger_vectors"),
    KindEntry("word2vec", "word2vec model", (WEIGHTS_FILE, VOCAB_FILE, METRICS_FILE), (),
              implementation="rnntool.kinds.word2vec.train:KIND",
              sentence_encoder="rnntool.kinds.word2vec.vectors:open_word2vec_encoder",
              input_embeddings="rnntool.kinds.word2vec.vectors:word2vec_vectors"),
)}
KINDS = tuple(CATALOG)


def entry(kind: str) -> KindEntry:
    """The catalog line of ``kind`` (KeyError for a kind rnntool does not know: check it first)."""
    return CATALOG[kind]


def model_kind(kind: str):
    """The ModelKind that trains ``kind`` (imports its module, and so torch)."""
    module, _, attribute = (entry(kind).implementation or "").partition(":")
    if not module:
        raise KeyError(f"rnntool does not train {kind!r} bundles with the training driver")
    return getattr(importlib.import_module(module), attribute)


__all__ = ["CATALOG", "KINDS", "METRICS_FILE", "SHORTLIST_FILE", "SIDE_FILES", "TOKENIZER_FILE", "VOCAB_FILE", "WEIGHTS_FILE", "KindEntry",
           "entry", "model_kind"]
