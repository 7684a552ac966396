"""`rnntool translate`: beam search (or greedy) translation, one output line per input line, streamed."""


import time
from typing import Annotated, Optional

import typer

from rnntool.cli.app import app
from rnntool.cli.console import console
from rnntool.cli.options import (
    DeviceOpt,
    InferencePrecisionOpt,
    InputArg,
    OnBadUtf8Opt,
    OutputOpt,
    QuietOpt,
    RegistryOpt,
    TemperatureOpt,
    ThreadsOpt,
    TopKOpt,
    TopPOpt,
    batch_size_option,
    line_batch_size,
    set_threads,
)
from rnntool.errors import UsageError

DEFAULT_LENGTH_PENALTY = 0.6  # = rnntool.kinds.translation.translate.DEFAULT_LENGTH_PENALTY (not imported here: torch)
DEFAULT_BEAM = 5
# Lines read ahead when the input is not a terminal: sorted by length, they fill model batches of
# --batch-tokens with little padding (Marian's maxi-batch). 1,000 against 32 lines: 1.5x the sentences/s
# at beam 5 (bench/opennmt_side_by_side.py, bench/RESULTS.md).
BATCH_SIZE = 1000
BatchSizeOpt = batch_size_option("Lines read and translated", BATCH_SIZE)


@app.command("translate")
def translate(
    model: Annotated[list[str], typer.Option(
        "-m", "--model", metavar="MODEL", show_default=False,
        help="Model: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory; give -m again for an ensemble "
             "(the mean of the models' next-subword distributions; they must share their tokenizers).")],
    input: InputArg = None,
    beam: Annotated[Optional[int], typer.Option(
        "--beam", "-b", min=1, metavar="K", show_default=False,
        help=f"Beam search with K hypotheses (1 = greedy; default: {DEFAULT_BEAM}).")] = None,
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
        typer.Option("--nbest", "-n", min=1, metavar="N", show_default=False,
                     help="Print the N best (N <= K) as 'LINE ||| TEXT ||| SCORE', LINE counted from 0."),
    ] = None,
    no_repeat_ngram: Annotated[int, typer.Option(
        "--no-repeat-ngram", min=0, metavar="N",
        help="No translation repeats an n-gram of N subwords (fairseq's --no-repeat-ngram-size); 0: off.")] = 0,
    coverage_penalty: Annotated[float, typer.Option(
        "--coverage-penalty", min=0.0, metavar="BETA",
        help="GNMT's coverage penalty: BETA x sum over source subwords of log(min(attention received, 1)) "
             "is added to each finished hypothesis' score, so translations that skip source words rank "
             "lower; 0: off.")] = 0.0,
    early_stop: Annotated[bool, typer.Option(
        "--early-stop", help="Beam search stops a sentence as soon as its best candidate ends, as OpenNMT-py "
                             "does, instead of when K hypotheses have ended: faster; with a length penalty a "
                             "longer translation could have ranked higher (with --nbest 1 and no --length-penalty, "
                             "--normalize or --coverage-penalty it is exact, and always on).")] = False,
    shortlist: Annotated[int, typer.Option(
        "--shortlist", min=0, metavar="K",
        help="Choose each target subword from a shortlist per sentence: the --shortlist-frequent most frequent "
             "target subwords and the K likeliest translations of each source subword (the model's lexical "
             "table, see `rnntool models shortlist`). Faster with large vocabularies; a subword outside the "
             "list cannot be chosen, so translations can differ, and scores (--json, --nbest) are "
             "log-probabilities over the list. 0: the whole vocabulary.")] = 0,
    shortlist_frequent: Annotated[Optional[int], typer.Option(
        "--shortlist-frequent", min=0, metavar="N", show_default=False,
        help="With --shortlist: how many of the most frequent target subwords every sentence may use "
             "(default 100).")] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Draw each token from the model's distribution instead of searching (back-translation, "
                         "as fairseq's --sampling); see --temperature, --top-k, --top-p, --seed.")] = False,
    temperature: TemperatureOpt = 1.0,
    top_k: TopKOpt = 0,
    top_p: TopPOpt = 1.0,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", show_default=False,
        help="With --sample: the same seed (and --batch-size) repeats exactly.")] = None,
    alignments: Annotated[
        bool, typer.Option("--alignments", help="Append ' ||| i-j ...' hard attention alignments "
                                                "(source subword i, target subword j, from 0).")
    ] = False,
    batch_size: BatchSizeOpt = None,
    batch_tokens: Annotated[
        int, typer.Option("--batch-tokens", help="Most padded source subwords per model batch.")
    ] = 4096,
    device: DeviceOpt = "auto",
    precision: InferencePrecisionOpt = "fp32",
    threads: ThreadsOpt = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (JSON Lines): index, source, translation and "
                                          "the hypotheses, each with text, score (what ranks it), log_prob "
                                          "(natural log, </s> included), tokens with token_log_probs (one each), "
                                          "eos_log_prob (null if cut at the length limit), finished.")
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
    if greedy and beam is not None:
        raise UsageError("--greedy and --beam exclude each other; --beam 1 is greedy")
    if sample and (greedy or beam is not None):
        raise UsageError("--sample draws each token; --greedy and --beam search: give one")
    if seed is not None and not sample:
        raise UsageError("--seed applies to --sample")
    if sample and length_penalty is not None:
        raise UsageError("--length-penalty ranks beam search's hypotheses; --sample draws one: drop one")
    beam = DEFAULT_BEAM if beam is None else beam
    size = line_batch_size(batch_size, input, BATCH_SIZE)
    set_threads(threads)
    settings = DecodeSettings(
        beam=1 if greedy else beam,
        greedy=greedy,
        length_penalty=0.0 if (normalize or greedy or sample) else
        (DEFAULT_LENGTH_PENALTY if length_penalty is None else length_penalty),
        normalize=normalize,
        max_len_ratio=max_len_ratio,
        min_len=min_len,
        nbest=1 if nbest is None else nbest,
        alignments=alignments,
        no_repeat_ngram=no_repeat_ngram, coverage_penalty=coverage_penalty, early_stop=early_stop,
        sample=sample, temperature=temperature, top_k=top_k, top_p=top_p,
    )
    if shortlist_frequent is not None and not shortlist:
        raise UsageError("--shortlist-frequent applies to --shortlist K; give both")
    shortlist_frequent = 100 if shortlist_frequent is None else shortlist_frequent
    translator = open_translator(model, registry, device, settings, precision, shortlist, shortlist_frequent)
    if sample:
        translator.seed_sampling(seed)
    how = "greedy" if greedy else "sampling" if sample else f"beam {settings.beam}"
    listed = f", shortlist {shortlist_frequent} + {shortlist} per source subword" if shortlist else ""
    console.log(f"translating with {translator.ref} ({how}, device {translator.device}, {precision}{listed})")
    lines = read_lines(input, on_bad_utf8=on_bad_utf8, allow_empty=True)
    started, count = time.perf_counter(), 0
    with open_output(output) as out:
        write = line_writer(out)
        for result in translator.stream(lines, batch_size=size, batch_tokens=batch_tokens):
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
    console.log(f"translated {count} lines in {elapsed:.2f}s ({count / max(elapsed, 1e-9):.1f} lines/s)")
    if translator.shortlist is not None and translator.shortlist.sentences:
        console.log(f"shortlists: {translator.shortlist.mean_size:.0f} target subwords per sentence on average, "
                    f"of {translator.tgt_tokenizer.vocab_size}")

