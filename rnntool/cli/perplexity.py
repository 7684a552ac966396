"""`rnntool evaluate perplexity`."""


import math
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import (
    DeviceOpt,
    InputArg,
    JsonOpt,
    ModelRefOpt,
    OnBadUtf8Opt,
    QuietOpt,
    RegistryOpt,
    ThreadsOpt,
    batch_size_option,
    line_batch_size,
    set_threads,
)
from rnntool.errors import UsageError

BATCH_SIZE = 64
BatchSizeOpt = batch_size_option("Lines scored", BATCH_SIZE)


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
    per_token: Annotated[bool, typer.Option(
        "--per-token", help="Like KenLM's query: one line per input line with each piece and its log-prob, "
                            "'piece=LOGPROB' tab-separated, </s> last, then 'Total: LOGPROB'. Summary on stderr.")
    ] = False,
    log10: Annotated[bool, typer.Option(
        "--log10", help="Per-line and per-token log-probs in base 10, as KenLM prints them (default: natural "
                        "log); perplexity and bits/char do not change.")] = False,
    batch_size: BatchSizeOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
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
    if per_line and per_token:
        raise UsageError("--per-line and --per-token are two per-line outputs; give one")
    if log10 and not (per_line or per_token):
        raise UsageError("--log10 applies to the log-probs of --per-line and --per-token")
    set_threads(threads)
    lm = open_lm(model, registry, device)
    mode = check_mode(mode or lm.mode)
    totals = Totals()
    base = math.log(10) if log10 else 1.0  # log-probs are natural logs, divided by ln 10 for --log10
    lines = read_lines(input, on_bad_utf8=on_bad_utf8)
    for score in score_lines(lm.model, lm.tokenizer, lines, mode, totals=totals, per_token=per_token,
                             batch_size=line_batch_size(batch_size, input, BATCH_SIZE)):
        if per_token:
            logprobs = [lp / base for lp in score.token_logprobs]
            if json_out:
                console.emit_json({"log_prob": score.logprob / base, "pieces": score.pieces,
                                   "token_log_probs": logprobs})
            else:
                console.emit("\t".join([*(f"{p}={lp:.4f}" for p, lp in zip(score.pieces, logprobs)),
                                        f"Total: {score.logprob / base:.4f}"]))
        elif per_line:
            if json_out:
                console.emit_json({"log_prob": score.logprob / base, "tokens": score.tokens,
                                   "perplexity": score.perplexity})
            else:
                console.emit(f"{score.logprob / base:.4f}\t{score.tokens}\t{score.perplexity:.4f}")
    result = {"model": lm.bundle.ref, "input": display_name(input), **totals.summary(),
              "signature": signature(lm.tokenizer.sha256, mode, log10=log10 and (per_line or per_token))}
    report = (
        f"perplexity {_fmt(result['perplexity'])}  nats/token {_fmt(result['nats_per_token'])}  "
        f"bits/char {_fmt(result['bits_per_character'])}  tokens {result['tokens']}  "
        f"characters {result['characters']}  lines {result['lines']}"
    )
    if per_line or per_token:
        console.log(f"{report}  {result['signature']}")
    elif json_out:
        console.emit_json(result)
    else:
        console.emit(report)
        console.emit(result["signature"])
