"""The fused, chunked output layer + cross-entropy equals the unfused one: loss and gradients."""

import pytest
import torch
import torch.nn.functional as F

from rnntool.kinds.lm.model import LMConfig, RNNLM
from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig
from rnntool.layers.cross_entropy import chunk_tokens, linear_cross_entropy


def reference_and_fused(bias: bool, smoothing: float, chunk: int):
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 50, bias=bias)
    hidden = torch.randn(300, 16, requires_grad=True)
    targets = torch.randint(0, 50, (300,))
    targets[::7] = 0  # ignored
    results = []
    for fused in (False, True):
        hidden.grad = None
        layer.zero_grad()
        if fused:
            loss = linear_cross_entropy(hidden * 2, layer.weight, layer.bias, targets, ignore_index=0,
                                        label_smoothing=smoothing, chunk=chunk)
        else:
            loss = F.cross_entropy(layer(hidden * 2), targets, ignore_index=0, reduction="sum",
                                   label_smoothing=smoothing)
        (3 * loss).backward()
        results.append((loss.detach(), hidden.grad.clone(), layer.weight.grad.clone(),
                        None if layer.bias is None else layer.bias.grad.clone()))
    return results


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk", [64, 1000])  # several chunks (the last one short), and one
def test_loss_and_gradients_equal_the_unfused_layer(bias, smoothing, chunk):
    reference, fused = reference_and_fused(bias, smoothing, chunk)
    for ours, theirs in zip(fused, reference):
        if theirs is None:
            assert ours is None
        else:
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)


def test_without_gradients_it_only_sums_the_loss():
    torch.manual_seed(1)
    layer = torch.nn.Linear(8, 30)
    hidden, targets = torch.randn(200, 8), torch.randint(0, 30, (200,))
    with torch.no_grad():
        ours = linear_cross_entropy(hidden, layer.weight, layer.bias, targets, chunk=64)
        theirs = F.cross_entropy(layer(hidden), targets, reduction="sum")
    torch.testing.assert_close(ours, theirs)
    assert not ours.requires_grad


def test_chunks_hold_a_bounded_number_of_logits():
    assert chunk_tokens(4000) * 4000 <= 2 ** 22
    assert chunk_tokens(10 ** 7) == 64


def test_the_models_training_losses_equal_the_cross_entropy_of_their_logits():
    torch.manual_seed(2)
    lm = RNNLM(LMConfig(vocab_size=40, embed_dim=8, hidden_dim=12, layers=1)).eval()
    tokens = torch.randint(1, 40, (3, 7))
    targets = torch.randint(0, 40, (3, 7))  # 0 = PAD, ignored
    logits, _ = lm(tokens)
    loss, _ = lm(tokens, targets=targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 40), targets.reshape(-1), ignore_index=0,
                                                     reduction="sum"))
    mt = Seq2Seq(Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=35, layers=1, embed_dim=8, hidden_dim=12)).eval()
    src, lengths = torch.randint(3, 30, (2, 5)), torch.tensor([5, 3])
    tgt_in, tgt_out = torch.randint(3, 35, (2, 6)), torch.randint(3, 35, (2, 6))
    tgt_out[1, 4:] = 0
    logits = mt(src, lengths, tgt_in)  # (B, T, V)
    torch.testing.assert_close(mt(src, lengths, tgt_in, tgt_out),
                               F.cross_entropy(logits.reshape(-1, 35), tgt_out.reshape(-1), ignore_index=0,
                                               reduction="sum"))
