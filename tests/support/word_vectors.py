"""Word vectors over the words of gensim's evaluation files (wordsim353.tsv, questions-words.txt), built so
that the evaluations have something to find: analogies partly hold, similar pairs are partly close.

    space = build_space(tmp_dir)        # needs gensim (its test data); call pytest.importorskip first
    space.vec, space.pairs, space.questions, space.oov_words

Some words are left out (out of vocabulary), some have case variants (some before the word, so that they
win a case-insensitive lookup), and the file order is shuffled, so that a smaller restrict_vocab cuts
through everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 24


@dataclass
class Space:
    vec: Path  # word2vec text, with a header
    pairs: Path  # gensim's wordsim353.tsv
    questions: Path  # gensim's questions-words.txt
    questions_sample: Path  # every 10th question of each section (with every section line)
    words: list[str]
    oov_words: set[str]


def _questions(path: Path) -> list[tuple[str, list[tuple[str, ...]]]]:
    sections: list[tuple[str, list[tuple[str, ...]]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(": "):
            sections.append((line[2:].strip(), []))
        elif line.strip():
            sections[-1][1].append(tuple(line.split()))
    return sections


def write_vec(path: Path, words: list[str], matrix: np.ndarray) -> Path:
    lines = [f"{len(words)} {matrix.shape[1]}"]
    lines += [word + " " + " ".join(f"{float(x):.9g}" for x in row) for word, row in zip(words, matrix)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_space(out: Path, seed: int = 13) -> Space:
    from gensim.test.utils import datapath

    pairs, questions = Path(datapath("wordsim353.tsv")), Path(datapath("questions-words.txt"))
    rng = np.random.default_rng(seed)
    vecs: dict[str, np.ndarray] = {}
    sections = _questions(questions)
    for _, qs in sections:  # y = x + the section's offset + noise: analogies partly hold
        offset = rng.normal(size=DIM)
        for a, b, c, d in qs:
            for x, y in ((a, b), (c, d)):
                if x not in vecs:
                    vecs[x] = rng.normal(size=DIM)
                if y not in vecs:
                    vecs[y] = vecs[x] + offset + 0.6 * rng.normal(size=DIM)
    for line in pairs.read_text(encoding="utf-8").splitlines():  # similar pairs closer
        if line.startswith("#") or not line.strip():
            continue
        a, b, score = line.split("\t")
        share = float(score) / 10
        vecs.setdefault(a, rng.normal(size=DIM))
        if b not in vecs:
            vecs[b] = share * vecs[a] + (1 - share) * rng.normal(size=DIM)
    names = sorted(vecs)
    oov = {w for i, w in enumerate(names) if i % 11 == 5}
    order = [names[i] for i in rng.permutation(len(names)) if names[i] not in oov]
    words: list[str] = []
    for i, w in enumerate(order):
        variant = w.lower() if w != w.lower() else w.capitalize()
        if i % 9 == 0 and variant != w and variant not in vecs:  # a case variant before the word: it wins
            words.append(variant)
            vecs[variant] = rng.normal(size=DIM)
        words.append(w)
        if i % 9 == 4 and w.upper() != w and w.upper() not in vecs:  # one after it: the word wins
            words.append(w.upper())
            vecs[w.upper()] = rng.normal(size=DIM)
    for i in range(50):  # words no file asks about
        words.insert(int(rng.integers(len(words) + 1)), f"zz{i}")
        vecs[f"zz{i}"] = rng.normal(size=DIM)
    matrix = np.stack([vecs[w] for w in words]).astype(np.float32)  # (V, D)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "questions-sample.txt"
    sample.write_text("".join(f": {name}\n" + "".join(" ".join(q) + "\n" for q in qs[::10]) for name, qs in sections),
                      encoding="utf-8")
    return Space(write_vec(out / "space.vec", words, matrix), pairs, questions, sample, words, oov)
