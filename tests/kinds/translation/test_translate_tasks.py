"""Acceptance: copy and reverse reach >= 95% exact match, for every attention variant, on CPU.

Setup (chosen so each case takes a few seconds on one core): 10 symbols (ids 4..13) given as
pre-made ids through the Python API, 3000 random training sequences, 200 held-out ones, a 1-layer
bidirectional LSTM (hidden 64, embeddings 32), Adam at lr 0.01 with a cosine decay over 200-300
steps of 512 padded tokens (1024 for "none"), no dropout, the real training loop
(rnntool.training.trainer.train with TranslationTask), greedy decoding. Sequences have 1-6 symbols with
attention; with --attention none (the whole source squeezed into one summary vector) 1-4 symbols.
One more case goes through the real CLI: `train translate`, then `translate` in a shell pipeline.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from conftest import rnntool_cmd

SYMBOLS = range(4, 14)

CASES = [  # (task, attention, longest sequence, training steps)
    ("copy", "dot", 6, 200),
    ("copy", "general", 6, 200),
    ("copy", "mlp", 6, 300),
    ("copy", "none", 4, 250),
    ("reverse", "dot", 6, 200),
    ("reverse", "general", 6, 200),
    ("reverse", "mlp", 6, 300),
    ("reverse", "none", 4, 250),
]


def sequences(n: int, longest: int, rng: random.Random) -> list[list[int]]:
    return [[rng.choice(SYMBOLS) for _ in range(rng.randint(1, longest))] for _ in range(n)]


def target_of(task: str, seq: list[int]) -> list[int]:
    return seq[::-1] if task == "reverse" else list(seq)


@pytest.mark.parametrize("task,attention,longest,steps", CASES, ids=[f"{t}-{a}" for t, a, _, _ in CASES])
def test_copy_and_reverse_reach_95_percent(task, attention, longest, steps):
    import torch

    from rnntool.kinds.translation.data import ParallelData
    from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig
    from rnntool.kinds.translation.task import TranslationTask, greedy_translate
    from rnntool.training.config import TrainConfig
    from rnntool.training.trainer import seed_everything, train

    torch.set_num_threads(1)
    rng = random.Random(0)
    train_src, test_src = sequences(3000, longest, rng), sequences(200, longest, rng)
    data = ParallelData(train_src, [target_of(task, s) for s in train_src])
    seed_everything(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=14, tgt_vocab_size=14, layers=1, embed_dim=32, hidden_dim=64,
                                  attention=attention, dropout=0.0))
    task_ = TranslationTask(model, data, batch_tokens=512 if attention != "none" else 1024, seed=0)
    cfg = TrainConfig(lr=0.01, clip=1.0, schedule="cosine", epochs=None, max_steps=steps, eval_every=steps,
                      device="cpu", seed=0)
    result = train(task_, cfg, run_dir=None)
    assert result.steps == steps

    outputs = greedy_translate(model, test_src)
    exact = sum(out == target_of(task, s) for out, s in zip(outputs, test_src)) / len(test_src)
    assert exact >= 0.95, f"{task} with {attention} attention: {exact:.1%} exact after {steps} steps"


def test_reverse_through_the_cli(tmp_path):
    """`train translate` publishes a model that `translate` then uses in a pipeline."""
    rng = random.Random(1)
    letters = "abcdefgh"
    lines = [" ".join(rng.choice(letters) for _ in range(rng.randint(1, 5))) for _ in range(1500)]
    (tmp_path / "train.src").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (tmp_path / "train.tgt").write_text("".join(f"{' '.join(line.split()[::-1])}\n" for line in lines),
                                        encoding="utf-8")
    rnntool = rnntool_cmd()
    train_cmd = (f"{rnntool} train translate --src train.src --tgt train.tgt --name rev --vocab-size 270 "
                 "--layers 1 --hidden-dim 64 --embed-dim 32 --dropout 0 --label-smoothing 0 --lr 0.01 --clip 1 "
                 "--batch-tokens 512 --schedule cosine --max-steps 300 --eval-every 150 --seed 1 --json")
    r = subprocess.run(["bash", "-c", train_cmd], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["ref"] == "rev@1" and summary["metrics"]["val_bleu"] > 50

    tests = ["a b c", "h g f e", "d", "c c a b", "e f g h a"]
    pipeline = f"printf '%s\\n' {' '.join(repr(t) for t in tests)} | {rnntool} translate -m rev -q --greedy | cat"
    r = subprocess.run(["bash", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [" ".join(t.split()[::-1]) for t in tests]
