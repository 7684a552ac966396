"""`rnntool tokenize train|encode|decode` (SentencePiece).

    rnntool tokenize train corpus.txt --name spm --vocab-size 8000
    printf 'a b\\nc\\n' | rnntool tokenize encode -m spm | rnntool tokenize decode -m spm
"""


import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from rnntool.cli.app import tokenize_app
from rnntool.cli.console import console
from rnntool.cli.options import (
    InputArg,
    JsonOpt,
    ModelRefOpt,
    OnBadUtf8Opt,
    OutputOpt,
    QuietOpt,
    RegistryOpt,
    open_registry,
    side_option,
)
from rnntool.errors import BadInput, DiskFull, UsageError


class ModelType(str, Enum):
    bpe = "bpe"
    unigram = "unigram"
    char = "char"
    word = "word"


class Normalization(str, Enum):
    identity = "identity"
    nfkc = "nfkc"
    nmt_nfkc = "nmt_nfkc"
    nfkc_cf = "nfkc_cf"
    nmt_nfkc_cf = "nmt_nfkc_cf"


class TokenFormat(str, Enum):  # spm_encode --output_format / spm_decode --input_format
    piece = "piece"
    id = "id"


OutputFormatOpt = Annotated[
    TokenFormat, typer.Option("--output-format", help="Write each line's tokens as space-separated pieces or ids "
                                                      "(spm_encode's --output_format).")]
InputFormatOpt = Annotated[
    TokenFormat, typer.Option("--input-format", help="Each line holds space-separated pieces or ids (spm_decode's "
                                                     "--input_format; what encode's --output-format wrote).")]
SideOpt = side_option("Which tokenizer of a translation model: source or target.")


# -- train ---------------------------------------------------------------------------------------


@tokenize_app.command("train")
def tokenize_train(
    files: Annotated[
        Optional[list[str]],
        typer.Argument(help="Training text files; '-' or nothing reads stdin.", show_default=False),
    ] = None,
    name: Annotated[
        Optional[str], typer.Option("--name", help="Publish to the registry under this name.")
    ] = None,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Number of pieces, specials included.")] = 8000,
    model_type: Annotated[ModelType, typer.Option("--model-type", help="SentencePiece algorithm.")] = ModelType.bpe,
    character_coverage: Annotated[
        float, typer.Option("--character-coverage", help="Share of characters kept as pieces (rest: bytes/unk).")
    ] = 1.0,
    byte_fallback: Annotated[
        Optional[bool],
        typer.Option(
            "--byte-fallback/--no-byte-fallback",
            help="Spell unseen characters as UTF-8 bytes (lossless) (default: on, off for word models).",
            show_default=False,
        ),
    ] = None,
    user_symbols: Annotated[
        Optional[str], typer.Option("--user-symbols", help="Comma-separated pieces never split, e.g. '<sep>,@@'.")
    ] = None,
    normalization: Annotated[
        Normalization,
        typer.Option("--normalization", help="Text normalization; 'identity' keeps text exactly (round trips)."),
    ] = Normalization.identity,
    split_digits: Annotated[bool, typer.Option("--split-digits", help="Split numbers into single digits.")] = False,
    max_line_bytes: Annotated[
        int, typer.Option("--max-line-bytes", help="Leave longer lines out of training (with a warning).")
    ] = 65536,
    sample_lines: Annotated[
        int, typer.Option("--sample-lines", help="Train on a random sample of this many lines; 0: all.")
    ] = 5_000_000,
    threads: Annotated[
        int, typer.Option("--threads", help="Training threads (unigram models depend on the count).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for sampling (same seed, same model).")] = 0,
    output: Annotated[
        Optional[Path],
        typer.Option("-o", "--output", help="Write a bundle to this directory (or a plain FILE.model) instead."),
    ] = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a SentencePiece tokenizer and publish it (or write it with -o)."""
    import tempfile

    from rnntool import textio
    from rnntool.tokenizers.sentencepiece import TOKENIZER_FILE
    from rnntool.tokenizers.training import train_tokenizer

    console.quiet = quiet
    if name is None and output is None:
        raise UsageError("give --name NAME to publish to the registry, or -o DIR to write a bundle directory")
    if name is not None:
        from rnntool.registry.bundle import validate_name

        validate_name(name)  # fail before training, not after
    symbols = [s.strip() for s in user_symbols.split(",") if s.strip()] if user_symbols else []
    paths = files or ["-"]
    if paths.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    train_kw = dict(
        vocab_size=vocab_size,
        model_type=model_type.value,
        character_coverage=character_coverage,
        byte_fallback=byte_fallback,
        user_symbols=symbols,
        normalization=normalization.value,
        split_digits=split_digits,
        max_line_bytes=max_line_bytes,
        sample_lines=sample_lines,
        threads=threads,
        seed=seed,
        on_bad_utf8=on_bad_utf8,
        on_log=console.log,
        on_warning=console.warn,
        display_names=[textio.display_name(p) for p in paths],
    )
    with tempfile.TemporaryDirectory(prefix="rnntool-tokenize-") as spool_dir:
        inputs = [_input_file(p, Path(spool_dir), on_bad_utf8) for p in paths]
        data = [_fingerprint(p, stdin=textio.is_stdin(orig)) for p, orig in zip(inputs, paths)]
        if output is not None and output.suffix == ".model":
            tok = train_tokenizer(inputs, output, **train_kw)
            result = {"path": str(output), "vocab_size": tok.vocab_size, "sha256": tok.sha256}
            return _report(result, json_out, f"wrote tokenizer {output} ({tok.vocab_size} pieces)")
        if output is not None:
            from rnntool.registry.store import write_bundle

            with tempfile.TemporaryDirectory(prefix="rnntool-bundle-") as tmp:
                tok = train_tokenizer(inputs, Path(tmp) / TOKENIZER_FILE, **train_kw)
                bundle = write_bundle(tmp, output, name=name or output.resolve().name, kind="tokenizer",
                                      config=tok.train_config, metrics=_metrics(tok), data=data)
            what = f"wrote tokenizer bundle {output}"
        else:
            reg = open_registry(registry)
            reg.check_name_kind(name, "tokenizer")  # before the work, not after it
            with reg.staging() as tmp:
                tok = train_tokenizer(inputs, tmp / TOKENIZER_FILE, **train_kw)
                with DiskFull.translating(tmp):  # a full disk here: nothing was published
                    bundle = reg.publish(tmp, name=name, kind="tokenizer", config=tok.train_config,
                                         metrics=_metrics(tok), data=data)
            what = f"published tokenizer {bundle.ref} at {bundle.path}"
    result = {
        "ref": bundle.ref,
        "name": bundle.name,
        "version": bundle.version,
        "kind": bundle.kind,
        "path": str(bundle.path),
        "vocab_size": tok.vocab_size,
        "sha256": tok.sha256,
    }
    _report(result, json_out, f"{what} ({tok.vocab_size} pieces)")


def _input_file(path: str, spool_dir: Path, on_bad_utf8: str) -> Path:
    """A training input as a file: stdin is spooled (to fingerprint it); a missing file fails now."""
    from rnntool import textio

    if textio.is_stdin(path):
        if sys.stdin.isatty():
            console.log("reading training text from the terminal; end it with Ctrl-D")
        return textio.spool_stdin(spool_dir, on_bad_utf8=on_bad_utf8)
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file" if not p.exists() else f"{p}: not a regular file")
    return p


def _fingerprint(path: Path, *, stdin: bool) -> dict:
    from rnntool.textio import fingerprint_file

    fp = fingerprint_file(path)
    if stdin:
        fp["path"] = "<stdin>"
    return fp


def _metrics(tok) -> dict:
    return {"vocab_size": tok.vocab_size, **tok.train_stats}


def _report(result: dict, json_out: bool, message: str) -> None:
    if json_out:
        console.emit_json(result)
    else:
        console.emit(message)


# -- encode / decode ---------------------------------------------------------------------------------


def load_tokenizer(model: str, side: Optional[str], registry: Optional[Path]):
    """A tokenizer from a plain ``.model`` file, a bundle directory or a registry reference."""
    from rnntool.tokenizers.sentencepiece import Tokenizer

    p = Path(model)
    if p.is_file():
        if side is not None:
            console.warn(f"--side {side} ignored: {model} is a single tokenizer file")
        return Tokenizer.load(p)
    from rnntool.errors import InvalidName, ModelNotFound

    try:
        bundle = open_registry(registry).load(model)
    except (ModelNotFound, InvalidName):
        if p.suffix == ".model" and not p.exists():
            raise BadInput(f"{model}: no such tokenizer file") from None
        raise
    return Tokenizer.from_bundle(bundle, side=side)


@tokenize_app.command("encode")
def tokenize_encode(
    model: ModelRefOpt,
    input: InputArg = None,
    format: OutputFormatOpt = TokenFormat.piece,
    nbest: Annotated[Optional[int], typer.Option(
        "--nbest", "-n", min=1, metavar="N", show_default=False,
        help="The N most likely segmentations of each line, best first, as 'LINE ||| TOKENS ||| SCORE' (LINE "
             "from 0; SCORE the sum of the pieces' log-probs), like spm_encode --nbest_size. Unigram "
             "tokenizers only.")] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="One segmentation drawn at random per line (subword regularisation: l-best sampling "
                         "for unigram, BPE-dropout for bpe), like spm_encode's sampling; see --alpha and --seed.")] = False,
    alpha: Annotated[Optional[float], typer.Option(
        "--alpha", min=0.0, show_default=False,
        help="With --sample: the unigram smoothing (smaller: more varied) or the BPE-dropout rate (default: "
             "0.1).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", show_default=False,
                                                help="With --sample: the same seed draws the same segmentations, in any "
                                                     "process.")
                    ] = None,
    side: SideOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Text to tokens, line by line (pieces or ids, space-separated)."""
    from rnntool import textio

    console.quiet = quiet
    if nbest is not None and sample:
        raise UsageError("--nbest lists the best segmentations, --sample draws one; give one")
    if (alpha is not None or seed is not None) and not sample:
        raise UsageError("--alpha and --seed apply to --sample")
    tok = load_tokenizer(model, side.value if side else None, registry)
    sampler = tok.sampler(0.1 if alpha is None else alpha, seed) if sample else None

    def tokens(pieces: list[str]) -> str:
        return " ".join(str(tok.piece_to_id(p)) for p in pieces) if format is TokenFormat.id else " ".join(pieces)

    with textio.open_output(output) as out:
        write = textio.line_writer(out, flush_each=textio.is_stdin(output))
        for i, line in enumerate(textio.read_lines(input, on_bad_utf8=on_bad_utf8)):
            if nbest is not None:
                for pieces, score in tok.nbest_pieces(line, nbest):
                    write(f"{i} ||| {tokens(pieces)} ||| {score:.6f}")
            elif sampler is not None:
                write(tokens(sampler.sample_pieces(line)))
            elif format is TokenFormat.id:
                write(" ".join(map(str, tok.encode(line))))
            else:
                write(" ".join(tok.encode_pieces(line)))


@tokenize_app.command("vocab")
def tokenize_vocab(
    model: ModelRefOpt,
    side: SideOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The vocabulary: 'PIECE<TAB>SCORE' per line in id order (spm_export_vocab's layout; unigram scores are
    log-probabilities, bpe's the merge order)."""
    from rnntool import textio

    console.quiet = quiet
    tok = load_tokenizer(model, side.value if side else None, registry)
    with textio.open_output(output) as out:
        write = textio.line_writer(out)
        for piece, score in tok.vocabulary():
            write(f"{piece}\t{score:g}")


@tokenize_app.command("decode")
def tokenize_decode(
    model: ModelRefOpt,
    input: InputArg = None,
    format: InputFormatOpt = TokenFormat.piece,
    side: SideOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Tokens to text, line by line (the inverse of encode: --input-format as encode's --output-format)."""
    from rnntool import textio

    console.quiet = quiet
    tok = load_tokenizer(model, side.value if side else None, registry)
    name = textio.display_name(input)
    with textio.open_output(output) as out:
        write = textio.line_writer(out, flush_each=textio.is_stdin(output))
        for lineno, line in enumerate(textio.read_lines(input, on_bad_utf8=on_bad_utf8), start=1):
            if format is TokenFormat.id:
                write(_decode_ids(tok, line.split(), name, lineno))
            else:  # pieces may hold tabs and other whitespace: split on spaces only
                write(tok.decode_pieces([t for t in line.split(" ") if t]))


def _decode_ids(tok, tokens: list[str], name: str, lineno: int) -> str:
    ids = []
    for t in tokens:
        try:
            ids.append(int(t))
        except ValueError:
            raise BadInput(
                f"{name}:{lineno}: {t!r} is not a token id; --input-format id expects space-separated "
                "integers (use --input-format piece for pieces)"
            ) from None
    try:
        return tok.decode(ids)
    except BadInput as e:
        raise BadInput(f"{name}:{lineno}: {e}") from None
