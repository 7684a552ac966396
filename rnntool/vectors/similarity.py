"""Looking at word vectors: nearest neighbours, analogies, and the two standard evaluations (numpy only).

    from rnntool.vectors.io import read_vectors
    from rnntool.vectors.similarity import analogy, evaluate_word_analogies, evaluate_word_pairs, nearest

    vectors = read_vectors("words.vec")
    nearest(vectors, "king", 5)                  # [("queen", 0.7118), ...]: cosine, best first, "king" left out
    analogy(vectors, "man", "king", "woman", 5)  # man : king :: woman : ?  ->  [("queen", 0.7299), ...]
    scores = evaluate_word_pairs(vectors, "wordsim353.tsv")
    scores.spearman, scores.pearson, scores.pairs, scores.oov, scores.oov_ratio
    result = evaluate_word_analogies(vectors, "questions-words.txt")
    result.accuracy, [(s.name, s.accuracy) for s in result.sections], result.total, result.oov

    index = SimilarityIndex(vectors)             # the row norms once, for many queries (the CLI's stream)
    nearest(index, "queen", 5)

Every number is gensim's (``KeyedVectors.most_similar``, ``evaluate_word_pairs``,
``evaluate_word_analogies``, gensim 4) on the same vectors and file, with its defaults and semantics
(tests/vectors/test_similarity.py checks them against gensim itself):

- cosine similarity; a query is the mean of its words' unit vectors (weights +1 for positive words,
  -1 for negative ones), itself scaled to unit length; the query's own words are never an answer;
- an analogy ``a : b :: c : ?`` is 3CosAdd: ``most_similar(positive=[b, c], negative=[a])``;
- both evaluations look words up among the first ``restrict_vocab`` (300000) words of the file only,
  upper-cased unless ``case_insensitive=False`` (several case variants: the first in the file wins);
  a pair or question with a word outside that vocabulary is left out and counted (``dummy4unknown``:
  scored instead, as similarity 0 or a wrong answer); ``oov_ratio`` is in percent, as gensim reports it;
- word pairs: Spearman's rho (Pearson's r of average ranks) and Pearson's r between the file's scores
  and the cosines; lines starting with ``#`` are comments, lines that are not ``WORD1 WORD2 SCORE``
  (split on ``delimiter``, a tab) are skipped and counted;
- analogies: a question is answered by the best of the top 5 neighbours of the 3CosAdd query among the
  first ``restrict_vocab`` words that is none of its three words (compared upper-cased); accuracy per
  ``: section`` and in total; a section without questions scores 0.

One deviation: gensim divides by a zero vector's norm (NaN); here a zero vector has cosine 0 with
everything (the padding row of a model's table, for one).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from rnntool.errors import BadInput, UnknownWord, UsageError

if TYPE_CHECKING:
    from rnntool.vectors.io import WordVectors

RESTRICT_VOCAB = 300000  # gensim's default for both evaluations
ANALOGY_TOPN = 5  # gensim's evaluate_word_analogies looks this far down for an answer
TOTAL_SECTION = "Total accuracy"  # gensim's name for the last, all-sections entry
SCORES_BUDGET = 1 << 24  # float32 scores held at once by a batch of analogy questions (64 MiB)


# -- the index: vectors with their norms ----------------------------------------------------------

class SimilarityIndex:
    """Word vectors ready for cosine queries: the row norms are computed once.

    ``index`` maps a word to its row (the vectors' own, exact case; the evaluations build their
    upper-cased, restricted one). Scores are float32, computed the way gensim computes them.
    """

    def __init__(self, vectors: "WordVectors", name: str | None = None) -> None:
        self.vectors = vectors
        self.name = name  # what error messages call the vectors ("words.vec", "news@3")
        self.words: list[str] = list(vectors.words)
        self.matrix = np.ascontiguousarray(vectors.matrix, dtype=np.float32)  # (V, D)
        norms = np.linalg.norm(self.matrix, axis=1)  # (V,) float32, as gensim's fill_norms
        self.norms = np.where(norms > 0, norms, np.float32(1.0)).astype(np.float32)  # a zero row: cosine 0
        self.index: dict[str, int] = vectors.index  # word -> row

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def row(self, word: str) -> int:
        """The row of ``word`` (in a SentencePiece model's table, else of its word-start piece ``▁word``);
        UnknownWord (naming it, and a case variant the vocabulary has) if none."""
        i = self.index.get(word)
        if i is None:
            i = self.index.get("\u2581" + word)
        if i is None:
            where = f" of {self.name}" if self.name else ""
            raise UnknownWord(f"{word!r} is not in the vocabulary{where}{self._case_hint(word)}", word=word)
        return i

    def _case_hint(self, word: str) -> str:
        folded = word.casefold()
        for w in self.words:
            if w.casefold() == folded:
                return f" (did you mean {w!r}?)"
        return ""

    def unit(self, rows) -> np.ndarray:
        """Unit vectors of ``rows`` (an int: (D,); a sequence or array of ints: (N, D)), float32."""
        rows = np.asarray(rows)
        if rows.ndim == 0:
            return self.matrix[rows] / self.norms[rows]
        return self.matrix[rows] / self.norms[rows][:, None]

    def query(self, positive: Sequence[int | np.ndarray], negative: Sequence[int | np.ndarray] = ()) -> np.ndarray:
        """gensim's ``get_mean_vector(pre_normalize=True, post_normalize=True)``: rows count as their unit
        vectors, given vectors as they are; weight +1 for ``positive``, -1 for ``negative``; the mean,
        scaled to unit length. (D,) float32."""
        terms = [(t, 1.0) for t in positive] + [(t, -1.0) for t in negative]
        if not terms:
            raise UsageError("a query needs at least one word or vector")
        mean = np.zeros(self.dim, dtype=np.float32)  # (D,)
        for term, weight in terms:
            vec = np.asarray(term, dtype=np.float32) if isinstance(term, np.ndarray) else self.unit(int(term))
            if vec.shape != (self.dim,):
                raise UsageError(f"a query vector has shape {vec.shape}; these vectors have {self.dim} dimensions")
            mean += np.float64(weight) * vec  # float64 product, accumulated in float32 (as gensim)
        return _unit64(mean.astype(np.float64) / len(terms))

    def rows_searched(self, restrict: int | None = None) -> int:
        """How many rows a search looks at: the first ``restrict`` (all: None)."""
        return len(self.words) if not restrict else min(restrict, len(self.words))

    def scores(self, query: np.ndarray, restrict: int | None = None) -> np.ndarray:
        """Cosine of each of the first ``restrict`` rows (all: None) with a unit ``query`` (D,) or with each
        of a batch of them (B, D): (R,) or (B, R) float32."""
        end = self.rows_searched(restrict)
        if query.ndim == 1:
            return self.matrix[:end] @ query / self.norms[:end]  # (R,): gensim's dot(vectors, mean) / norms
        return query @ self.matrix[:end].T / self.norms[:end]  # (B, R)

    def best(self, scores: np.ndarray, k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best rows of ``scores`` (R,), best first, rows in ``exclude`` left out."""
        exclude = set(exclude)
        top = _top_rows(scores, k + len(exclude))
        return [(int(i), float(scores[i])) for i in top if int(i) not in exclude][:k]

    def most_similar(self, positive: Sequence[str | np.ndarray], negative: Sequence[str | np.ndarray] = (),
                     k: int = 10, *, exclude: Iterable[str] = (), restrict: int | None = None) -> list[tuple[str, float]]:
        """gensim's ``most_similar(positive, negative, topn=k, restrict_vocab=restrict)``: the ``k`` words
        nearest the query, best first, with their cosines; the query's words and ``exclude`` left out."""
        if k < 1:
            return []
        pos = [t if isinstance(t, np.ndarray) else self.row(t) for t in positive]
        neg = [t if isinstance(t, np.ndarray) else self.row(t) for t in negative]
        skip = [t for t in pos + neg if not isinstance(t, np.ndarray)]
        skip += [self.index[w] for w in exclude if w in self.index]
        scores = self.scores(self.query(pos, neg), restrict)
        return [(self.words[i], s) for i, s in self.best(scores, k, skip)]


Vectors = Union["WordVectors", SimilarityIndex]


def as_index(vectors: Vectors) -> SimilarityIndex:
    """``vectors`` as a SimilarityIndex (itself when it is one)."""
    return vectors if isinstance(vectors, SimilarityIndex) else SimilarityIndex(vectors)


def _unit64(vec: np.ndarray) -> np.ndarray:
    """gensim's ``matutils.unitvec`` of a float64 vector (D,), as float32: scaled by 1/norm (a zero vector
    stays)."""
    return _units32(vec[None, :])[0]


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """gensim's ``matutils.argsort(scores, topn=n, reverse=True)``: the n highest rows, best first."""
    x = -scores
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if n >= x.size:
        return np.argsort(x)[:n]
    most = np.argpartition(x, n)[:n]
    return most.take(np.argsort(x.take(most)))


# -- neighbours and analogies ---------------------------------------------------------------------

def nearest(vectors: Vectors, query: str | np.ndarray, k: int = 10, exclude: Iterable[str] = (), *,
            restrict: int | None = None) -> list[tuple[str, float]]:
    """The ``k`` words nearest ``query`` (a word, or a vector (D,)) by cosine, best first: gensim's
    ``most_similar(query, topn=k)``. A query word is not its own neighbour; ``exclude`` leaves out more."""
    return as_index(vectors).most_similar([query], k=k, exclude=exclude, restrict=restrict)


def analogy(vectors: Vectors, a: str, b: str, c: str, k: int = 10, *,
            restrict: int | None = None) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` by 3CosAdd, the ``k`` best answers with their cosines: gensim's
    ``most_similar(positive=[b, c], negative=[a], topn=k)`` (a, b and c are never answers)."""
    return as_index(vectors).most_similar([b, c], [a], k=k, restrict=restrict)


# -- the evaluations' vocabulary --------------------------------------------------------------------

def _check_restrict(restrict_vocab: int | None) -> None:
    if restrict_vocab is not None and restrict_vocab < 1:
        raise UsageError(f"restrict_vocab must be at least 1 (got {restrict_vocab})")


def _evaluation_vocab(index: SimilarityIndex, restrict_vocab: int | None, case_insensitive: bool) -> dict[str, int]:
    """gensim's ``ok_vocab``: the first ``restrict_vocab`` words (upper-cased when ``case_insensitive``;
    of several that upper-case alike, the first in the file) -> their rows."""
    words = index.words[:restrict_vocab] if restrict_vocab else index.words
    vocab: dict[str, int] = {}
    for row, word in enumerate(words):
        vocab.setdefault(word.upper() if case_insensitive else word, row)
    return vocab


def _lines(path: str | os.PathLike | None, on_bad_utf8: str):
    from rnntool.textio import read_lines

    yield from enumerate(read_lines(path, on_bad_utf8=on_bad_utf8), start=1)


# -- word pairs (WordSim-353) ---------------------------------------------------------------------

@dataclass
class PairScores:
    """How a vectors' cosines agree with human similarity scores of word pairs."""

    spearman: float  # Spearman's rho (NaN below 2 pairs or with constant scores)
    pearson: float  # Pearson's r
    pairs: int  # pairs scored (with dummy4unknown, the out-of-vocabulary ones too)
    oov: int  # pairs with a word outside the vocabulary
    invalid: int = 0  # lines that are neither comments nor WORD1 WORD2 SCORE (skipped)
    dummy4unknown: bool = False
    unknown_words: list[str] = field(default_factory=list)  # the words outside the vocabulary, first seen first

    @property
    def total(self) -> int:
        """All pairs of the file (scored or left out)."""
        return self.pairs if self.dummy4unknown else self.pairs + self.oov

    @property
    def oov_ratio(self) -> float:
        """Pairs with a word outside the vocabulary, in percent of all pairs (gensim's ``oov_ratio``)."""
        return 100.0 * self.oov / self.total if self.total else 0.0

    def to_json(self) -> dict:
        return {"spearman": self.spearman, "pearson": self.pearson, "pairs": self.pairs, "oov": self.oov,
                "oov_ratio": self.oov_ratio, "total": self.total, "invalid_lines": self.invalid,
                "oov_scored": self.dummy4unknown, "unknown_words": list(self.unknown_words)}


def evaluate_word_pairs(vectors: Vectors, path: str | os.PathLike | None, *, delimiter: str = "\t",
                        restrict_vocab: int | None = RESTRICT_VOCAB, case_insensitive: bool = True,
                        dummy4unknown: bool = False, on_bad_utf8: str = "strict") -> PairScores:
    """Spearman's rho and Pearson's r between a word-pair file's scores and the vectors' cosines: gensim's
    ``evaluate_word_pairs`` (same arguments, same defaults). ``path``: ``WORD1<TAB>WORD2<TAB>SCORE``
    lines (WordSim-353's layout), ``#`` comments; ``-``/None reads stdin."""
    _check_restrict(restrict_vocab)
    index = as_index(vectors)
    vocab = _evaluation_vocab(index, restrict_vocab, case_insensitive)
    gold: list[float] = []
    pairs: list[tuple[int, int] | None] = []  # rows of scored pairs; None: out of vocabulary, scored 0
    oov = invalid = 0
    unknown: dict[str, None] = {}
    for _, line in _lines(path, on_bad_utf8):
        if not line or line.startswith("#"):
            continue
        fields = line.split(delimiter)
        try:
            a, b, sim = [f.upper() for f in fields] if case_insensitive else fields
            score = float(sim)
        except ValueError:
            invalid += 1
            continue
        if a not in vocab or b not in vocab:
            oov += 1
            unknown.update((w, None) for w, key in zip(fields[:2], (a, b)) if key not in vocab)
            if dummy4unknown:
                gold.append(score)
                pairs.append(None)
            continue
        gold.append(score)
        pairs.append((vocab[a], vocab[b]))
    if not gold:
        raise BadInput(f"{_name(path)}: no word pair to score: every line is a comment, not WORD1{_show(delimiter)}"
                       f"WORD2{_show(delimiter)}SCORE, or has a word outside the vocabulary")
    model = np.zeros(len(pairs), dtype=np.float64)  # (N,)
    known = [i for i, p in enumerate(pairs) if p is not None]
    if known:
        rows_a = np.array([pairs[i][0] for i in known])  # type: ignore[index]
        rows_b = np.array([pairs[i][1] for i in known])  # type: ignore[index]
        model[known] = _pair_cosines(index, rows_a, rows_b)
    gold_arr = np.asarray(gold, dtype=np.float64)  # (N,)
    return PairScores(spearman=spearman(gold_arr, model), pearson=pearson(gold_arr, model), pairs=len(gold),
                      oov=oov, invalid=invalid, dummy4unknown=dummy4unknown, unknown_words=list(unknown))


def _pair_cosines(index: SimilarityIndex, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """gensim's ``similarity``: each vector scaled (in float64) to unit length, as float32, then their dot
    product in float32, pair by pair. (N,) float64."""
    ua, ub = _units32(index.matrix[rows_a]), _units32(index.matrix[rows_b])  # (N, D) each
    return np.array([np.dot(x, y) for x, y in zip(ua, ub)], dtype=np.float64)


def _units32(vecs: np.ndarray) -> np.ndarray:
    """Rows (N, D) scaled in float64 to unit length (a zero row stays), as float32 (gensim's ``unitvec``)."""
    vecs = np.asarray(vecs, dtype=np.float64)
    norms = np.linalg.norm(vecs, axis=1)  # (N,)
    scale = 1.0 / np.where(norms > 0, norms, 1.0)  # (N,)
    return (vecs * scale[:, None]).astype(np.float32)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N of ``x`` (N,), ties sharing the mean of their ranks (scipy's ``rankdata``). (N,) float64."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts_run = np.r_[True, ordered[1:] != ordered[:-1]]  # (N,) where a run of equal values starts
    run = np.cumsum(starts_run) - 1  # (N,) run of each sorted position
    starts = np.flatnonzero(starts_run)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[run]  # mean of ranks start+1 .. end
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of two (N,) arrays; NaN below 2 values or when one is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    xm, ym = x - x.mean(), y - y.mean()
    nx, ny = float(np.linalg.norm(xm)), float(np.linalg.norm(ym))
    if nx == 0 or ny == 0:
        return math.nan
    return max(-1.0, min(1.0, float(np.dot(xm / nx, ym / ny))))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


# -- analogies (questions-words.txt) ----------------------------------------------------------------

Question = tuple[str, str, str, str]


@dataclass
class Section:
    """One ``: section`` of an analogy file: its questions answered right and wrong (words as compared:
    upper-cased when case-insensitive)."""

    name: str
    correct: list[Question] = field(default_factory=list)
    incorrect: list[Question] = field(default_factory=list)

    @property
    def questions(self) -> int:
        return len(self.correct) + len(self.incorrect)

    @property
    def accuracy(self) -> float:
        """Correct / answered; 0.0 when none was answered (as gensim)."""
        return len(self.correct) / self.questions if self.questions else 0.0

    def to_json(self) -> dict:
        return {"section": self.name, "correct": len(self.correct), "questions": self.questions,
                "accuracy": self.accuracy}


@dataclass
class AnalogyScores:
    """Accuracy on an analogy file, per section and in total (gensim's ``evaluate_word_analogies``)."""

    sections: list[Section]
    total: Section  # every section's questions together, named "Total accuracy"
    questions: int  # well-formed questions in the file, out-of-vocabulary ones included
    oov: int  # questions with a word outside the vocabulary
    invalid: int = 0  # lines in a section that are not four words (skipped)
    dummy4unknown: bool = False

    @property
    def accuracy(self) -> float:
        return self.total.accuracy

    @property
    def oov_ratio(self) -> float:
        """Questions with a word outside the vocabulary, in percent of all questions."""
        return 100.0 * self.oov / self.questions if self.questions else 0.0

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "correct": len(self.total.correct), "answered": self.total.questions,
                "questions": self.questions, "oov": self.oov, "oov_ratio": self.oov_ratio,
                "invalid_lines": self.invalid, "oov_scored": self.dummy4unknown,
                "sections": [s.to_json() for s in self.sections]}


def evaluate_word_analogies(vectors: Vectors, path: str | os.PathLike | None, *,
                            restrict_vocab: int | None = RESTRICT_VOCAB, case_insensitive: bool = True,
                            dummy4unknown: bool = False, batch_size: int = 256,
                            on_bad_utf8: str = "strict") -> AnalogyScores:
    """Accuracy on an analogy file (``: SECTION`` lines, then ``A B C D`` lines: ``A : B :: C : D``) by
    3CosAdd: gensim's ``evaluate_word_analogies`` (same arguments, same defaults). Questions are answered
    ``batch_size`` at a time (one matrix product each). ``-``/None reads stdin."""
    _check_restrict(restrict_vocab)
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1 (got {batch_size})")
    index = as_index(vectors)
    batch_size = max(1, min(batch_size, SCORES_BUDGET // max(index.rows_searched(restrict_vocab), 1)))
    vocab = _evaluation_vocab(index, restrict_vocab, case_insensitive)
    sections: list[Section] = []
    todo: list[tuple[Section, Question]] = []  # questions to answer (and OOV ones scored wrong), in file order
    answerable: list[Question] = []
    questions = oov = invalid = 0
    for lineno, line in _lines(path, on_bad_utf8):
        if line.startswith(": "):
            sections.append(Section(line.lstrip(": ").strip()))
            continue
        if not line.strip():
            continue
        if not sections:
            raise BadInput(f"{_name(path)}:{lineno}: a question before the first ': SECTION' line; an analogy file "
                           "starts with one (questions-words.txt's layout)")
        words = [w.upper() for w in line.split()] if case_insensitive else line.split()
        if len(words) != 4:
            invalid += 1
            continue
        questions += 1
        question: Question = (words[0], words[1], words[2], words[3])
        if any(w not in vocab for w in question):
            oov += 1
            if dummy4unknown:
                todo.append((sections[-1], question))
            continue
        todo.append((sections[-1], question))
        answerable.append(question)
    if not questions:
        raise BadInput(f"{_name(path)}: no analogy question (': SECTION' lines, then 'A B C D' lines)")
    right: list[bool] = []
    for start in range(0, len(answerable), batch_size):
        right += _answer(index, vocab, answerable[start:start + batch_size], restrict_vocab, case_insensitive)
    answers = iter(right)
    for section, question in todo:
        known = all(w in vocab for w in question)  # an OOV question here is one dummy4unknown scores wrong
        (section.correct if known and next(answers) else section.incorrect).append(question)
    total = Section(TOTAL_SECTION, [q for s in sections for q in s.correct],
                    [q for s in sections for q in s.incorrect])
    return AnalogyScores(sections, total, questions=questions, oov=oov, invalid=invalid, dummy4unknown=dummy4unknown)


def _answer(index: SimilarityIndex, vocab: dict[str, int], questions: list[Question], restrict_vocab: int | None,
            case_insensitive: bool) -> list[bool]:
    """Whether 3CosAdd answers each question right, as gensim's evaluate_word_analogies decides it."""
    rows = np.array([[vocab[w] for w in q[:3]] for q in questions])  # (B, 3): a, b, c
    ua, ub, uc = (index.unit(rows[:, j]) for j in range(3))  # (B, D) each
    mean = (ub + uc) - ua  # (B, D) float32: gensim's running sum b + c - a
    queries = _units32(mean.astype(np.float64) / 3.0)  # (B, D): the mean, at unit length
    scores = index.scores(queries, restrict_vocab)  # (B, R)
    out = []
    for j, (a, b, c, expected) in enumerate(questions):
        sims = index.best(scores[j], ANALOGY_TOPN, [int(r) for r in rows[j]])
        predicted = None
        for row, _ in sims:
            word = index.words[row]
            predicted = word.upper() if case_insensitive else word
            if predicted in vocab and predicted not in (a, b, c):
                break
        out.append(predicted == expected)
    return out


def _name(path) -> str:
    from rnntool.textio import display_name

    return display_name(path)


def _show(delimiter: str) -> str:
    return "<TAB>" if delimiter == "\t" else delimiter


__all__ = ["ANALOGY_TOPN", "AnalogyScores", "PairScores", "RESTRICT_VOCAB", "Section", "SimilarityIndex", "analogy",
           "as_index", "average_ranks", "evaluate_word_analogies", "evaluate_word_pairs", "nearest", "pearson",
           "spearman"]
