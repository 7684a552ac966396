"""Tiny language-model bundles for the LM tests, built without the training CLI (fast, no loop)."""

from __future__ import annotations

from pathlib import Path

import torch

from rnntool.registry.store import write_bundle
from rnntool.kinds.lm.model import LMConfig, RNNLM, save_lm
from rnntool.kinds.lm.data import build_token_cache
from rnntool.kinds.lm.task import LMTask
from rnntool.textio import fingerprint_file
from rnntool.tokenizers.training import train_tokenizer


def make_lm_bundle(tmp_path: Path, corpus: Path, *, mode: str = "sentence", steps: int = 30,
                   cell: str = "lstm", name: str = "tiny") -> Path:
    """Train a tokenizer and a small LM for ``steps`` Adam steps; write an lm bundle; return its dir."""
    work = tmp_path / f"{name}-work"
    work.mkdir()
    tok = train_tokenizer([corpus], work / "tokenizer.model", vocab_size=300)
    data, _ = build_token_cache([corpus], [fingerprint_file(corpus)["sha256"]], tok, tmp_path / "cache")
    torch.manual_seed(0)
    config = LMConfig(vocab_size=tok.vocab_size, cell=cell, layers=1, embed_dim=32, hidden_dim=48,
                      embed_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0)
    model = RNNLM(config)
    task = LMTask(model, data, data, mode=mode, batch_size=16, bptt=24, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    done = 0
    while done < steps:
        for batch in task.batches(epoch=done):
            nll, n = task.loss(model, batch.to("cpu"))
            optimizer.zero_grad()
            (nll / n).backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    model.eval()
    save_lm(model, work / "model.safetensors")
    dest = tmp_path / name
    write_bundle(work, dest, name=name, kind="lm",
                 config={"model": config.to_dict(), "train": {}, "data": {"mode": mode}})
    return dest


def write_corpus(path: Path, n_lines: int = 300, seed: int = 0) -> Path:
    """A small, very regular English-like corpus (easy to learn, so generation ends with <eos>)."""
    import random

    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man"]
    verbs = ["sees", "likes", "finds", "follows"]
    objects = ["the ball", "a red house", "the river", "a small bird"]
    lines = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}." for _ in range(n_lines)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
