"""`train --init-range R`: every parameter uniform in [-R, R], tied weights drawn once, padding rows zero,
normalisation layers untouched; and the option's refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import fails, invoke
from rnntool.layers.initialization import init_uniform
from support.lm_fixtures import write_corpus


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16, padding_idx=0)
        self.rnn = nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(64)
        self.out = nn.Linear(64, 50)
        self.tied = nn.Linear(16, 50, bias=False)
        self.tied.weight = self.embed.weight


def test_every_parameter_uniform_padding_zero_norms_untouched():
    torch.manual_seed(0)
    m = Tiny()
    init_uniform(m, 0.1)
    for name, p in m.named_parameters():
        if name.startswith("norm."):
            continue
        assert p.abs().max() <= 0.1 and p.abs().max() > 0.09, name
        assert abs(p.mean().item()) < 0.02, name
    assert torch.equal(m.embed.weight[0], torch.zeros(16))
    assert torch.equal(m.norm.weight, torch.ones(64)) and torch.equal(m.norm.bias, torch.zeros(64))
    assert m.tied.weight is m.embed.weight
    # drawn from torch's RNG: the same seed, the same weights
    torch.manual_seed(0)
    again = Tiny()
    init_uniform(again, 0.1)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError):
        init_uniform(m, 0.0)


def test_init_range_refuses_a_negative_range_a_warm_start_and_a_resume(tmp_path, registry):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n" * 50, encoding="utf-8")
    r = invoke("train", "lm", corpus, "--init-range", "-0.1", "--max-steps", "1")
    assert r.exit_code == 2 and "--init-range" in r.stderr
    fails(invoke("train", "lm", corpus, "--init-range", "0.1", "--init-from", "x", "--max-steps", "1", "--name", "n"), 2,
          "--init-from", "--init-range")
    text = write_corpus(tmp_path / "text.txt")
    tiny = ["--vocab-size", "290", "--embed-dim", "8", "--hidden-dim", "8", "--layers", "1", "--max-steps", "1", "-q"]
    assert invoke("train", "lm", text, *tiny, "-o", tmp_path / "m", "--run-dir", tmp_path / "run").exit_code == 0
    fails(invoke("train", "lm", "--init-range", "0.1", "--resume", tmp_path / "run"), 2,
          "--resume continues a run as it was", "--init-range")
