"""`rnntool embed`: one sentence vector per input line, streamed, in input order, from any model with an
encoder (a language model, a translation model's encoder, a classifier's or a tagger's).

    rnntool embed -m news sentences.txt > vectors.txt          # space-separated floats, one line each
    rnntool embed -m en-de@prod --pool last --normalize --json < in.txt
    rnntool embed -m sst2 --npy vectors.npy train.txt          # one (N, H) float32 matrix
"""


import io
import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import app
from rnntool.cli.console import console
from rnntool.cli.options import (
    DeviceOpt,
    InputArg,
    OnBadUtf8Opt,
    OutputOpt,
    QuietOpt,
    RegistryOpt,
    ThreadsOpt,
    batch_size_option,
    line_batch_size,
    set_threads,
)
from rnntool.errors import UsageError
from rnntool.layers.names import SENTENCE_POOLINGS

BATCH_SIZE = 64
BatchSizeOpt = batch_size_option("Lines read and embedded", BATCH_SIZE)


def _floats(vector) -> list[float]:
    return [float(f"{x:.6g}") for x in vector.tolist()]


@app.command("embed")
def embed(
    model: Annotated[str, typer.Option(
        "-m", "--model", metavar="MODEL",
        help="Any model with an encoder: a language model, a translation model (its source encoder), a "
             "classifier or a tagger (NAME, NAME@VERSION, NAME@ALIAS or a bundle directory).")],
    input: InputArg = None,
    pool: Annotated[Literal[SENTENCE_POOLINGS], typer.Option(
        "--pool", help="last: the encoder's final state (a bidirectional one: both directions' final states); "
                       "mean or max: over its top layer's outputs at every position.")] = "mean",
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale each vector to unit length (L2), so that "
                                                                "dot products are cosines.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line: {\"vector\": [...]}.")
                           ] = False,
    npy: Annotated[Optional[Path], typer.Option(
        "--npy", metavar="FILE", show_default=False,
        help="Write all vectors as one (lines, dimension) float32 matrix in NumPy's .npy format instead "
             "of text.")] = None,
    batch_size: BatchSizeOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Sentence vectors: one per input line, in input order, as space-separated floats (like fastText's
    print-sentence-vectors). A blank line gets the zero vector."""
    import time

    from rnntool.textio import atomic_write_bytes, finite_json, line_writer, open_output, read_lines
    from rnntool.vectors.sentences import embed_lines, open_sentence_encoder

    console.quiet = quiet
    set_threads(threads)
    if npy is not None and (json_output or output is not None):
        raise UsageError("--npy writes the vectors to its own file; drop --json and -o")
    if npy is not None and str(npy) == "-":
        raise UsageError("--npy needs a file name (the matrix is binary); for text on stdout drop --npy")
    encoder = open_sentence_encoder(model, registry, device)
    console.log(f"embedding with {encoder.ref}: {encoder.dim} dimensions, --pool {pool}"
                f"{', normalized' if normalize else ''}")
    blanks = 0

    def lines():
        nonlocal blanks
        for line in read_lines(input, on_bad_utf8=on_bad_utf8):
            blanks += not line.strip()
            yield line

    vectors = embed_lines(encoder, lines(), pool_how=pool, normalize=normalize,
                          batch_size=line_batch_size(batch_size, input, BATCH_SIZE))
    started, count = time.perf_counter(), 0
    if npy is not None:
        import numpy as np

        rows = list(vectors)
        count = len(rows)
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, encoder.dim), dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, matrix, allow_pickle=False)
        atomic_write_bytes(npy, buffer.getvalue())
        console.log(f"wrote a {matrix.shape[0]} x {matrix.shape[1]} matrix to {npy}")
    else:
        with open_output(output) as out:
            write = line_writer(out)
            for vector in vectors:
                count += 1
                if json_output:
                    write(json.dumps(finite_json({"vector": _floats(vector)}), allow_nan=False))
                else:
                    write(" ".join(f"{x:.6g}" for x in vector.tolist()))
    elapsed = time.perf_counter() - started
    if blanks:
        console.warn(f"{blanks} blank line{'s' if blanks > 1 else ''} got the zero vector")
    console.log(f"embedded {count} lines in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.1f} lines/s)")
