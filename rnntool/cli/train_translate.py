"""`rnntool train translate`."""


from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import train_app
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, RegistryOpt
from rnntool.cli.train_command import train_command
from rnntool.cli.train_options import (
    CELL_HELP,
    MODEL_TYPE_HELP,
    Cell,
    ModelType,
    TrainOptions,
    check_select,
    select_option,
    train_options,
)
from rnntool.layers.names import ATTENTION_TYPES, BRIDGE_TYPES

ATTENTION_HELP = ("none (the encoder summary is the context at every step), dot or general (Luong), "
                  "mlp (Bahdanau's additive score).")


SELECTS = ("bleu", "loss")
SelectOpt = select_option(SELECTS, "Validation metric for early stopping and the published weights.")


def _opt(help: str, *names: str, **kw):
    return typer.Option(*names, help=help, **kw)


@train_app.command("translate")
@train_options
def train_translate(
    src: Annotated[Optional[Path], _opt("Training source text, one sentence per line.", "--src",
                                        show_default=False)] = None,
    tgt: Annotated[Optional[Path], _opt("Training target text, line N translating --src line N.", "--tgt",
                                        show_default=False)] = None,
    tsv: Annotated[Optional[str], _opt("Training pairs as 'source<TAB>target' lines instead ('-': stdin).",
                                       "--tsv", show_default=False)] = None,
    valid_src: Annotated[Optional[Path], _opt("Validation source text (for loss and BLEU).", "--valid-src",
                                              show_default=False)] = None,
    valid_tgt: Annotated[Optional[Path], _opt("Validation references, aligned with --valid-src.", "--valid-tgt",
                                              show_default=False)] = None,
    valid_fraction: Annotated[float, _opt("Without --valid-src/--valid-tgt: hold out this fraction of the "
                                          "pairs (at most 1000), from the end.", "--valid-fraction")] = 0.05,
    name: Annotated[Optional[str], _opt("Publish to the registry under this name.", "--name",
                                        show_default=False)] = None,
    output: Annotated[Optional[Path], _opt("Write the bundle to this directory instead of the registry.",
                                           "-o", "--output", show_default=False)] = None,
    tokenizer: Annotated[Optional[str], _opt("One tokenizer for both sides (registry reference or bundle).",
                                             "-t", "--tokenizer", show_default=False)] = None,
    src_tokenizer: Annotated[Optional[str], _opt("Source-side tokenizer (registry reference or bundle).",
                                                 "--src-tokenizer", show_default=False)] = None,
    tgt_tokenizer: Annotated[Optional[str], _opt("Target-side tokenizer (registry reference or bundle).",
                                                 "--tgt-tokenizer", show_default=False)] = None,
    vocab_size: Annotated[int, _opt("Vocabulary of tokenizers trained on the fly (byte fallback on).",
                                    "--vocab-size")] = 8000,
    joint_vocab: Annotated[bool, _opt("Train one tokenizer on both sides (and share one embedding table).",
                                      "--joint-vocab")] = False,
    model_type: Annotated[ModelType, _opt(MODEL_TYPE_HELP, "--model-type")] = "bpe",
    cell: Annotated[Cell, _opt(CELL_HELP, "--cell")] = "lstm",
    layers: Annotated[int, _opt("Stacked recurrent layers (encoder and decoder).", "--layers")] = 2,
    embed_dim: Annotated[int, _opt("Embedding size.", "--embed-dim")] = 256,
    hidden_dim: Annotated[int, _opt("Recurrent state size (a bidirectional encoder gives each direction "
                                    "half).", "--hidden-dim")] = 256,
    bidirectional: Annotated[bool, _opt("Bidirectional encoder.", "--bidirectional/--unidirectional")] = True,
    attention: Annotated[Literal[ATTENTION_TYPES], _opt(ATTENTION_HELP, "--attention")] = "general",
    bridge: Annotated[Literal[BRIDGE_TYPES], _opt("Decoder's initial state: linear (+tanh) from the encoder's final states, "
                                "or zeros.", "--bridge")] = "linear",
    input_feeding: Annotated[bool, _opt("Feed each step's attentional vector into the next step (better, but "
                                        "training runs step by step).", "--input-feeding/--no-input-feeding")] = True,
    tie_embeddings: Annotated[bool, _opt("Share the target embeddings with the output layer.",
                                         "--tie-embeddings/--no-tie-embeddings")] = True,
    dropout: Annotated[float, _opt("Dropout on embeddings, between layers and before the output.",
                                   "--dropout")] = 0.2,
    max_len: Annotated[int, _opt("Drop training pairs with a side longer than this many tokens (counted).",
                                 "--max-len")] = 100,
    batch_tokens: Annotated[int, _opt("Padded tokens per batch (sentences of similar length are batched "
                                      "together).", "--batch-tokens")] = 4096,
    label_smoothing: Annotated[float, _opt("Label smoothing of the training loss.", "--label-smoothing")] = 0.1,
    sample_alpha: Annotated[float, _opt("Subword regularisation: each epoch draws new segmentations of both "
                                        "sides (unigram sampling with this smoothing, or BPE-dropout at this "
                                        "rate; 0.1 is usual). 0: off.", "--sample-alpha")] = 0.0,
    select: SelectOpt = "bleu",
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    *,
    train: TrainOptions,
) -> None:
    """Train an RNN encoder-decoder translation model; publish it (--name) or write it (-o DIR).

    Validation (each epoch, or every --eval-every steps) reports loss, ppl and BLEU (greedy decoding,
    cased sacreBLEU on detokenized output); --select picks the metric that chooses the published weights.
    """
    from rnntool.kinds.translation.train import TranslationRunSpec

    def new_spec() -> TranslationRunSpec:
        path = lambda p: None if p is None else str(p)  # noqa: E731
        return TranslationRunSpec(
            src=path(src), tgt=path(tgt), tsv=tsv, valid_src=path(valid_src), valid_tgt=path(valid_tgt),
            valid_fraction=valid_fraction, name=name, output=str(output.resolve()) if output else None,
            model=dict(cell=cell, layers=layers, embed_dim=embed_dim, hidden_dim=hidden_dim,
                       bidirectional=bidirectional, attention=attention, bridge=bridge,
                       input_feeding=input_feeding, tie_embeddings=tie_embeddings, dropout=dropout),
            tokenizer=tokenizer, src_tokenizer=src_tokenizer, tgt_tokenizer=tgt_tokenizer, vocab_size=vocab_size,
            joint_vocab=joint_vocab, model_type=model_type, max_len=max_len, batch_tokens=batch_tokens,
            label_smoothing=label_smoothing, sample_alpha=sample_alpha, select=check_select(select, SELECTS), on_bad_utf8=on_bad_utf8,
        ).check()

    train_command("translation", train, registry, json_out, new_spec=new_spec,
                  given_on_resume=any(v is not None for v in (src, tgt, tsv, valid_src, valid_tgt, name, output)),
                  what_to_drop="the data files, --name and -o",
                  config_overrides=lambda spec: {"best_metric": "bleu", "best_mode": "max"} if spec.select == "bleu" else {})
