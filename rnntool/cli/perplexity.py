"""`rnntool evaluate perplexity`."""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import DeviceOpt, InputArg, JsonOpt, ModelRefOpt, OnBadUtf8Opt, QuietOpt, RegistryOpt


def _fmt(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else str(x)


@evaluate_app.command("perplexity")
def perplexity(
    model: ModelRefOpt,
    input: InputArg = None,
    mode: Annotated[
        Optional[Literal["stream", "sentence"]],
        typer.Option(
            "--mode",
            help="stream: lines read as one text joined by <eos>, state carried; sentence: each line "
            "alone from <bos>. Default: the mode the model was trained in.",
            show_default=False,
        ),
    ] = None,
    per_line: Annotated[
        bool,
        typer.Option(
            "--per-line",
            help="One line per input line, in order, as it is scored: log-prob (nats), tokens, "
            "perplexity, tab-separated (sort -n puts the least likely first). Summary on stderr.",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Lines per forward pass.")] = 64,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
    on_bad_utf8: OnBadUtf8Opt = "strict",
) -> None:
    """Score text with a language model: tokens, characters, nats/token, perplexity, bits/char.

    Every line is scored with its <eos>. Bits per character = total negative log-likelihood in bits
    divided by the number of characters of the text, counting one newline per line, so models with
    different tokenizers compare fairly. The signature line lists every setting behind the numbers.
    """
    from rnntool.kinds.lm.model import open_lm
    from rnntool.kinds.lm.scoring import Totals, check_mode, score_lines, signature
    from rnntool.textio import display_name, read_lines

    console.quiet = quiet
    lm = open_lm(model, registry, device)
    mode = check_mode(mode or lm.mode)
    totals = Totals()
    lines = read_lines(input, on_bad_utf8=on_bad_utf8)
    for score in score_lines(lm.model, lm.tokenizer, lines, mode, totals=totals, batch_size=batch_size):
        if not per_line:
            continue
        if json_out:
            console.emit_json({"logprob": score.logprob, "tokens": score.tokens, "perplexity": score.perplexity})
        else:
            console.emit(f"{score.logprob:.4f}\t{score.tokens}\t{score.perplexity:.4f}")
    result = {"model": lm.bundle.ref, "input": display_name(input), **totals.summary(),
              "signature": signature(lm.tokenizer.sha256, mode)}
    report = (
        f"perplexity {_fmt(result['perplexity'])}  nats/token {_fmt(result['nats_per_token'])}  "
        f"bits/char {_fmt(result['bits_per_character'])}  tokens {result['tokens']}  "
        f"characters {result['characters']}  lines {result['lines']}"
    )
    if per_line:
        console.log(f"{report}  {result['signature']}")
    elif json_out:
        console.emit_json(result)
    else:
        console.emit(report)
        console.emit(result["signature"])
