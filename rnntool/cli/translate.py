"""`rnntool translate`: beam search (or greedy) translation, one output line per input line, streamed."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from rnntool.cli.app import app
from rnntool.cli.console import console
from rnntool.cli.options import DeviceOpt, InputArg, ModelRefOpt, OnBadUtf8Opt, OutputOpt, QuietOpt, RegistryOpt
from rnntool.errors import UsageError

DEFAULT_LENGTH_PENALTY = 0.6  # = rnntool.kinds.translation.translate.DEFAULT_LENGTH_PENALTY (not imported here: torch)


@app.command("translate")
def translate(
    model: ModelRefOpt,
    input: InputArg = None,
    beam: Annotated[int, typer.Option("--beam", "-k", help="Beam size K.")] = 5,
    greedy: Annotated[bool, typer.Option("--greedy", help="Greedy decoding (the same output as --beam 1).")] = False,
    length_penalty: Annotated[
        Optional[float],
        typer.Option("--length-penalty", metavar="ALPHA", show_default=False,
                     help=f"GNMT length penalty: rank by log-prob / ((5+len)/6)^ALPHA; 0 = raw log-prob "
                          f"(default: {DEFAULT_LENGTH_PENALTY})."),
    ] = None,
    normalize: Annotated[bool, typer.Option("--normalize", help="Rank hypotheses by log-prob / length instead.")] = False,
    max_len_ratio: Annotated[
        float, typer.Option("--max-len-ratio", help="Output at most RATIO x source subwords + 10 subwords.")
    ] = 2.0,
    min_len: Annotated[int, typer.Option("--min-len", help="Output at least this many subwords.")] = 0,
    nbest: Annotated[
        Optional[int],
        typer.Option("--nbest", show_default=False,
                     help="Print the N best (N <= K) as 'LINE ||| TEXT ||| SCORE', LINE counted from 0."),
    ] = None,
    alignments: Annotated[
        bool, typer.Option("--alignments", help="Append ' ||| i-j ...' hard attention alignments "
                                                "(source subword i, target subword j, from 0).")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Lines read and translated together; 1 answers each line at once.")
    ] = 32,
    batch_tokens: Annotated[
        int, typer.Option("--batch-tokens", help="Most padded source subwords per model batch.")
    ] = 4096,
    device: DeviceOpt = "auto",
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (JSON Lines): hypotheses, scores, "
                                          "token log-probs.")
    ] = False,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Translate text with a translation model: one output line per input line, in input order."""
    import json

    from rnntool.textio import line_writer, open_output, read_lines
    from rnntool.kinds.translation.translate import DecodeSettings, open_translator

    console.quiet = quiet
    if normalize and length_penalty is not None:
        raise UsageError("--length-penalty and --normalize are two ways to rank by length; give one")
    if greedy and beam != 5:
        raise UsageError("--greedy and --beam exclude each other; --beam 1 is greedy")
    settings = DecodeSettings(
        beam=1 if greedy else beam,
        greedy=greedy,
        length_penalty=0.0 if (normalize or greedy) else
        (DEFAULT_LENGTH_PENALTY if length_penalty is None else length_penalty),
        normalize=normalize,
        max_len_ratio=max_len_ratio,
        min_len=min_len,
        nbest=nbest or 1,
        alignments=alignments,
    )
    translator = open_translator(model, registry, device, settings)
    how = "greedy" if greedy else f"beam {settings.beam}"
    console.log(f"translating with {translator.ref} ({how}, device {translator.device})")
    lines = read_lines(input, on_bad_utf8=on_bad_utf8, allow_empty=True)
    started, count = time.perf_counter(), 0
    with open_output(output) as out:
        write = line_writer(out)
        for result in translator.stream(lines, batch_size=batch_size, batch_tokens=batch_tokens):
            count += 1
            if json_output:
                write(json.dumps(result.to_dict(alignments), ensure_ascii=False))
            elif nbest is not None:
                for h in result.hypotheses:
                    fields = [str(result.index), h.text, f"{h.score:.6f}"]
                    write(" ||| ".join(fields + ([h.alignment_text()] if alignments else [])))
            elif alignments:
                write(f"{result.best.text} ||| {result.best.alignment_text()}")
            else:
                write(result.best.text)
    elapsed = time.perf_counter() - started
    if translator.unknown_pieces:
        console.warn(f"{translator.unknown_pieces} source subwords were unknown to the tokenizer (<unk>); "
                     "a tokenizer trained with byte fallback avoids this")
    console.log(f"translated {count} lines in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.1f} lines/s)")

