"""Pretrained word vectors as a model's starting point (`train ... --init-embeddings FILE`).

    dim = embedding_size(given=None, path="words.vec", default=256)   # the file's dimension (or a clash error)
    report = initialize_tables([("input", model.embedding, pieces)], "words.vec", freeze=False)

The dimension comes from the file (word2vec text with its ``count dim`` header, or GloVe text without
one: rnntool/vectors/io.py); an ``--embed-dim`` that says otherwise is an error naming both numbers.
Each row of a model's table takes the vector of the first of these the file has: the word itself;
for a SentencePiece piece that starts a word (``▁the``), the word without its marker (``the``); the
lowercased forms of both. Rows the file lacks keep their random initialisation; the padding row stays
zero. The coverage (rows found / rows) is logged and recorded in the bundle's data config.
``freeze`` keeps the loaded rows as they are (their gradient is zeroed, also the part an output layer
tied to the table sends); rows the file lacks learn as usual. (With --weight-decay and adamw, decay
still shrinks them.)
"""

from __future__ import annotations

import os
from pathlib import Path

from rnntool.errors import ConfigError

WORD_START = "\u2581"  # SentencePiece's word-start marker


def vectors_file_dim(path: str | os.PathLike) -> int:
    """The dimension of a word-vectors text file, from its first line (rnntool/vectors/io.py)."""
    from rnntool.vectors.io import vectors_dim

    return vectors_dim(path)


def embedding_size(given: int | None, path: str | None, default: int, option: str = "--embed-dim") -> int:
    """``--embed-dim`` as the run uses it: the file's dimension with --init-embeddings (a different
    ``given`` is an error naming both), else ``given`` or the kind's default."""
    if path is None:
        return default if given is None else given
    dim = vectors_file_dim(path)
    if given is not None and given != dim:
        raise ConfigError(f"{option} {given} does not match the {dim}-dimensional vectors in {path}; drop "
                          f"{option} (the file sets it) or give vectors of dimension {given}")
    return dim


def with_pretrained_embeddings(spec, path: str, freeze: bool, given_dim: int | None):
    """A new run's spec with ``--init-embeddings``: the file (absolute), ``--freeze-embeddings``, and the
    model's ``embed_dim`` from the file (``given_dim``: an explicit --embed-dim, checked against it)."""
    import dataclasses

    if not hasattr(spec, "init_embeddings"):
        raise ConfigError("--init-embeddings: this model kind has no input embedding table")
    dim = embedding_size(given_dim, path, default=0)
    return dataclasses.replace(spec, model={**spec.model, "embed_dim": dim}, init_embeddings=str(Path(path).resolve()),
                               freeze_embeddings=freeze)


def candidates(word: str) -> list[str]:
    """What a table row may be called in a vectors file, best first."""
    names = [word]
    if word.startswith(WORD_START) and len(word) > 1:
        names.append(word[1:])
    names += [n.lower() for n in names]
    return list(dict.fromkeys(names))


def initialize_tables(tables, path: str, freeze: bool = False) -> dict:
    """Copy vectors from ``path`` into each ``(label, nn.Embedding, words)`` table (words in row order);
    the report: ``{"file", "dim", "tables": {label: {"rows", "found"}}}``."""
    import torch

    from rnntool.vectors.io import read_vectors

    vectors = read_vectors(path)
    report = {"file": str(path), "dim": vectors.dim, "vectors": len(vectors), "freeze": freeze, "tables": {}}
    for label, embedding, words in tables:
        weight = embedding.weight  # (V, E)
        if weight.shape[1] != vectors.dim:
            raise ConfigError(f"the {label} embeddings have {weight.shape[1]} dimensions but {path} has "
                              f"{vectors.dim}; drop --embed-dim (the file sets it)")
        if len(words) != weight.shape[0]:
            raise ConfigError(f"the {label} embeddings have {weight.shape[0]} rows for {len(words)} words")
        rows, sources = [], []
        for row, word in enumerate(words):
            if row == embedding.padding_idx:
                continue
            hit = next((vectors.index[n] for n in candidates(word) if n in vectors.index), None)
            if hit is not None:
                rows.append(row)
                sources.append(hit)
        with torch.no_grad():
            if rows:
                weight[torch.tensor(rows)] = torch.from_numpy(vectors.matrix[sources]).to(weight.dtype)
        if freeze and rows:  # the loaded rows only: the rest (BOS, EOS, pieces the file lacks) still learn
            found = torch.zeros(weight.shape[0], 1, dtype=torch.bool, device=weight.device)  # (V, 1)
            found[torch.tensor(rows)] = True
            weight.register_hook(lambda grad, found=found: grad.masked_fill(found.to(grad.device), 0.0))
        report["tables"][label] = {"rows": len(words), "found": len(rows)}
    return report


def coverage_line(report: dict) -> str:
    """One log line: what each table found in the file."""
    parts = [f"{label} {t['found']:,} of {t['rows']:,} ({100 * t['found'] / max(t['rows'], 1):.1f}%)"
             for label, t in report["tables"].items()]
    frozen = ", frozen" if report["freeze"] else ""
    return f"--init-embeddings {report['file']} ({report['dim']} dimensions{frozen}): found {'; '.join(parts)}"


__all__ = ["candidates", "coverage_line", "embedding_size", "initialize_tables", "vectors_file_dim",
           "with_pretrained_embeddings"]
