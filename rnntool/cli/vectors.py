"""`rnntool neighbors`, `rnntool evaluate word-pairs`, `rnntool evaluate analogies`: looking at word vectors.

    rnntool neighbors -m words.vec king queen -k 5          # one line per word: WORD<TAB>N1 COS N2 COS ...
    rnntool neighbors -m words.vec --analogy man king woman  # man : king :: woman : ?
    echo king | rnntool neighbors -m news@prod --json        # words from stdin, each answered at once
    rnntool evaluate word-pairs -m words.vec wordsim353.tsv  # Spearman's rho, Pearson's r, pairs, OOV
    rnntool evaluate analogies -m words.vec questions-words.txt --json

-m takes a word-vectors file (word2vec text with a header, GloVe text without, .gz) or a model in the
registry (its input embedding table). The numbers are gensim's (rnntool/vectors/similarity.py).
"""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rnntool.cli.app import app, evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import InputArg, JsonOpt, OnBadUtf8Opt, QuietOpt, RegistryOpt, side_option
from rnntool.errors import BadInput, UsageError

if TYPE_CHECKING:
    from rnntool.vectors.similarity import SimilarityIndex

RESTRICT_VOCAB = 300000  # gensim's default for the evaluations (rnntool.vectors.similarity.RESTRICT_VOCAB)
TOP = 10
LISTED = 10  # unknown words named in a log line

VectorsOpt = Annotated[str, typer.Option(
    "-m", "--model", metavar="MODEL",
    help="Word vectors: a file (word2vec text with a 'count dim' header, GloVe text without one, .gz) or a "
         "model's input embeddings: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory.")]
CaseSensitiveOpt = Annotated[bool, typer.Option(
    "--case-sensitive", help="Match words as written (default: upper-case both sides, as gensim does; of "
                             "several case variants, the first in the vectors counts).")]
SideOpt = side_option("A translation model's table: src (the encoder's, the default) or tgt (the decoder's).")
ScoreOovOpt = Annotated[bool, typer.Option(
    "--score-oov", help="Score out-of-vocabulary items instead of leaving them out: similarity 0 for a pair, a "
                        "wrong answer for a question (gensim's dummy4unknown).")]


def restrict_option(default: str):
    return Annotated[Optional[int], typer.Option(
        "--restrict-vocab", min=1, metavar="N", show_default=False,
        help=f"Only the first N words of the vectors count (a word2vec file lists the most frequent first; "
             f"default: {default}).")]


SearchRestrictOpt = restrict_option("all")
EvalRestrictOpt = restrict_option(f"{RESTRICT_VOCAB}, gensim's")


def _open(model: str, registry: Optional[Path], side, reads_stdin: bool) -> "SimilarityIndex":
    """The vectors of -m as an index; ``reads_stdin``: whether the command reads its input from stdin."""
    from rnntool.textio import is_stdin
    from rnntool.vectors.io import load_vectors
    from rnntool.vectors.similarity import SimilarityIndex

    if is_stdin(model) and reads_stdin:
        raise UsageError("-m - reads the vectors from stdin, which this command also reads its input from; give "
                         "one of them as a file (or the words as arguments)")

    vectors = load_vectors(model, registry, side=side.value if side is not None else None)
    console.log(f"{model}: {len(vectors):,} words, {vectors.dim} dimensions")
    return SimilarityIndex(vectors, name=model)


def _settings(model: str, restrict: Optional[int], case_sensitive: bool, score_oov: bool) -> str:
    """The line that says what the numbers were computed with."""
    return (f"vectors:{model}|restrict-vocab:{restrict if restrict else 'all'}|"
            f"case:{'sensitive' if case_sensitive else 'insensitive'}|oov:{'scored' if score_oov else 'skipped'}")


# -- neighbors ----------------------------------------------------------------------------------------

@app.command("neighbors")
def neighbors(
    model: VectorsOpt,
    words: Annotated[Optional[list[str]], typer.Argument(
        metavar="WORD", show_default=False,
        help="Words to look up (with --analogy: A B C, three at a time); none: read them from stdin, one query "
             "per line, each answered at once.")] = None,
    top: Annotated[int, typer.Option("-k", "--top", min=1, metavar="K", show_default=False,
                                     help=f"The K nearest words per query (default: {TOP}).")] = TOP,
    analogy: Annotated[bool, typer.Option(
        "--analogy", help="Each query is three words A B C, read as 'A is to B as C is to ?', answered by 3CosAdd "
                          "(word2vec's and gensim's: the nearest words to B - A + C, none of the three).")] = False,
    restrict_vocab: SearchRestrictOpt = None,
    side: SideOpt = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="One JSON object per query: the query and its neighbours with their cosines.")] = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """The nearest words of each word by cosine similarity, or the answers to analogies.

    One output line per query, in order: the query, a tab, then each neighbour and its cosine, best first
    ('king<TAB>queen 0.7118 prince 0.6833 ...'). A query that cannot be answered (a word not in the
    vocabulary) gets its line with no neighbours; the others are answered, and the command then fails
    naming what it could not answer.
    """
    from rnntool.textio import read_lines

    console.quiet = quiet
    if words and analogy and len(words) % 3:
        raise UsageError(f"--analogy takes words three at a time (A B C: A is to B as C is to ?); got {len(words)}")
    index = _open(model, registry, side, reads_stdin=not words)
    if words:
        queries = [" ".join(words[i:i + 3]) for i in range(0, len(words), 3)] if analogy else list(words)
    else:
        queries = (line.strip() for line in read_lines("-", on_bad_utf8=on_bad_utf8))
    streaming = not words
    failed: list[str] = []
    asked = 0
    for query in queries:
        asked += 1
        try:
            found = _answer(index, query, top, analogy, restrict_vocab) if query else []
        except BadInput as e:  # a word not in the vocabulary (UnknownWord), a malformed query
            found, error = [], str(e)
            failed.append(error)
            if streaming:  # a person typing learns why at once
                console.warn(error)
        else:
            error = None
        if json_output:
            out = {"query": query, "neighbors": [{"word": w, "cosine": round(s, 6)} for w, s in found]}
            if error is not None:
                out["error"] = error
            console.emit_json(out)
        else:
            console.emit((f"{query}\t" + " ".join(f"{w} {s:.4f}" for w, s in found)) if query else "")
    if failed:
        listed = "; ".join(failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        raise BadInput(listed if asked == 1 else f"{len(failed)} of {asked} queries not answered: {listed}")


def _answer(index: "SimilarityIndex", query: str, k: int, analogy: bool,
            restrict: Optional[int]) -> list[tuple[str, float]]:
    from rnntool.vectors.similarity import analogy as solve
    from rnntool.vectors.similarity import nearest

    words = query.split()
    if analogy:
        if len(words) != 3:
            raise BadInput(f"{query!r}: an analogy is three words, A B C (A is to B as C is to ?)")
        return solve(index, *words, k, restrict=restrict)
    if len(words) != 1:
        raise BadInput(f"{query!r}: one word per query (an analogy: --analogy A B C)")
    return nearest(index, words[0], k, restrict=restrict)


# -- evaluate word-pairs --------------------------------------------------------------------------------

@evaluate_app.command("word-pairs")
def evaluate_word_pairs(
    model: VectorsOpt,
    input: InputArg = None,
    restrict_vocab: EvalRestrictOpt = RESTRICT_VOCAB,
    case_sensitive: CaseSensitiveOpt = False,
    score_oov: ScoreOovOpt = False,
    delimiter: Annotated[str, typer.Option(
        "--delimiter", metavar="TEXT", show_default=False,
        help="What separates WORD1, WORD2 and SCORE on a line (default: a tab).")] = "\t",
    side: SideOpt = None,
    json_output: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Word similarity: Spearman's rho and Pearson's r between human scores of word pairs and the vectors'
    cosines (WordSim-353's layout: WORD1<TAB>WORD2<TAB>SCORE, '#' comments).

    Pairs with a word outside the vocabulary are left out, counted and named on stderr. The numbers
    equal gensim's KeyedVectors.evaluate_word_pairs with the same settings.
    """
    from rnntool.textio import display_name, is_stdin
    from rnntool.vectors import similarity

    console.quiet = quiet
    if not delimiter:
        raise UsageError("--delimiter must not be empty")
    index = _open(model, registry, side, reads_stdin=is_stdin(input))
    scores = similarity.evaluate_word_pairs(index, input, delimiter=delimiter, restrict_vocab=restrict_vocab,
                                            case_insensitive=not case_sensitive, dummy4unknown=score_oov,
                                            on_bad_utf8=on_bad_utf8)
    if scores.oov:
        named = ", ".join(scores.unknown_words[:LISTED]) + (", ..." if len(scores.unknown_words) > LISTED else "")
        console.log(f"{scores.oov} of {scores.total} pairs have a word not in the vocabulary "
                    f"({'scored 0' if score_oov else 'left out'}): {named}")
    if scores.invalid:
        console.warn(f"{display_name(input)}: {scores.invalid} line(s) skipped: not WORD1 WORD2 SCORE")
    _report(model, input, scores, restrict_vocab, case_sensitive, score_oov, json_output,
            f"spearman {scores.spearman:.4f}  pearson {scores.pearson:.4f}  pairs {scores.pairs}  "
            f"oov {scores.oov} ({scores.oov_ratio:.1f}%)")


# -- evaluate analogies ---------------------------------------------------------------------------------

@evaluate_app.command("analogies")
def evaluate_analogies(
    model: VectorsOpt,
    input: InputArg = None,
    restrict_vocab: EvalRestrictOpt = RESTRICT_VOCAB,
    case_sensitive: CaseSensitiveOpt = False,
    score_oov: ScoreOovOpt = False,
    side: SideOpt = None,
    json_output: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Word analogies: accuracy per section and in total on a file in the layout of Google's
    questions-words.txt (': SECTION' lines, then 'A B C D': A is to B as C is to D).

    Each question is answered by 3CosAdd among the first --restrict-vocab words; questions with a word
    outside them are left out and counted. The numbers equal gensim's
    KeyedVectors.evaluate_word_analogies with the same settings.
    """
    from rnntool.textio import display_name, is_stdin
    from rnntool.vectors import similarity

    console.quiet = quiet
    index = _open(model, registry, side, reads_stdin=is_stdin(input))
    scores = similarity.evaluate_word_analogies(index, input, restrict_vocab=restrict_vocab,
                                                case_insensitive=not case_sensitive, dummy4unknown=score_oov,
                                                on_bad_utf8=on_bad_utf8)
    if scores.invalid:
        console.warn(f"{display_name(input)}: {scores.invalid} line(s) skipped: not four words A B C D")
    _report(model, input, scores, restrict_vocab, case_sensitive, score_oov, json_output, _analogy_table(scores))


def _report(model: str, input, scores, restrict_vocab, case_sensitive: bool, score_oov: bool, json_output: bool,
            text: str) -> None:
    """An evaluation's result: ``text`` and the settings line, or everything as JSON."""
    from rnntool.textio import display_name

    signature = _settings(model, restrict_vocab, case_sensitive, score_oov)
    if json_output:
        console.emit_json({"vectors": model, "file": display_name(input), **scores.to_json(),
                           "restrict_vocab": restrict_vocab, "case_insensitive": not case_sensitive,
                           "signature": signature})
        return
    console.emit(text)
    console.emit(signature)


def _analogy_table(scores) -> str:
    rows = [(s.name, len(s.correct), s.questions, s.accuracy) for s in scores.sections]
    rows.append(("total", len(scores.total.correct), scores.total.questions, scores.accuracy))
    width = max(12, min(max(len(r[0]) for r in rows), 40))
    lines = [f"{'section':<{width}}  {'correct':>9}  {'questions':>9}  {'accuracy':>9}"]
    lines += [f"{name:<{width}}  {correct:>9d}  {asked:>9d}  {acc:>9.4f}" for name, correct, asked, acc in rows]
    what = "scored as wrong" if scores.dummy4unknown else "left out"
    lines.append(f"oov {scores.oov} of {scores.questions} questions ({scores.oov_ratio:.1f}%) {what}")
    return "\n".join(lines)
