"""The output layer and its cross-entropy fused, in chunks of tokens: no (N, V) tensor is ever whole.

    loss_sum = linear_cross_entropy(hidden, weight, bias, targets)   # hidden (N, E), weight (V, E) -> ()

A (N, V) logits tensor, its log-softmax and their two gradients are the largest tensors of a training
step for any vocabulary of a few thousand (4 x 69 MB for 4,500 target tokens and V = 4,000). Here the
forward pass walks the tokens in chunks of ``chunk_tokens(V)`` rows; for each chunk it computes the
logits, the loss and, since the gradient of softmax cross-entropy with respect to the logits is known
in closed form (softmax - target distribution), the gradients of the hidden states, the weight and the
bias at once, then drops the chunk. The backward pass only scales those gradients. The peak holds one
chunk's logits; the arithmetic is the same as the unfused layer's (nothing is recomputed).

The sum equals ``F.cross_entropy(F.linear(hidden, weight, bias).float(), targets, reduction="sum",
ignore_index=..., label_smoothing=...)`` and so do its gradients, to float rounding
(tests/layers/test_cross_entropy.py).
"""

from __future__ import annotations

import torch

# Elements of one chunk's (n, V) logits: 2**22 floats = 16 MB (and as much again for the log-softmax).
CHUNK_ELEMENTS = 2 ** 22


def chunk_tokens(vocab_size: int, elements: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk for a vocabulary of ``vocab_size`` (at least 64)."""
    return max(64, elements // max(vocab_size, 1))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, ignore_index: int, label_smoothing: float, rows: int,
                grads_wanted: bool):
        wanted = [grads_wanted and bool(n) for n in ctx.needs_input_grad[:3]]
        grad_hidden = torch.empty_like(hidden) if wanted[0] else None  # (N, E)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if wanted[1] else None  # (V, E)
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and wanted[2] else None  # (V,)
        vocab = weight.shape[0]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], rows):
            h, t = hidden[start:start + rows], targets[start:start + rows]  # (n, E), (n,)
            logits = h @ weight.t()  # (n, V)
            if bias is not None:
                logits = logits + bias
            logp = torch.log_softmax(logits.float(), dim=-1)  # (n, V)
            del logits
            real = t != ignore_index  # (n,)
            safe = torch.where(real, t, torch.zeros_like(t))  # (n,)
            nll = -logp.gather(1, safe[:, None])[:, 0]  # (n,)
            if label_smoothing:
                nll = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(dim=-1)
            total += torch.where(real, nll, torch.zeros_like(nll)).sum()
            if not grads_wanted:
                continue
            grad = logp.exp_()  # (n, V): softmax, in place of the log-softmax
            if label_smoothing:
                grad -= label_smoothing / vocab
            grad.scatter_add_(1, safe[:, None], torch.full_like(grad[:, :1], label_smoothing - 1.0))
            grad *= real[:, None]  # (n, V) float32: d loss / d logits
            if grad_hidden is not None:
                grad_hidden[start:start + rows] = grad.to(weight.dtype) @ weight  # (n, E)
            if grad_weight is not None:
                grad_weight.addmm_(grad.t(), h.float())  # (V, E)
            if grad_bias is not None:
                grad_bias += grad.sum(dim=0)
        ctx.grads = (grad_hidden, None if grad_weight is None else grad_weight.to(weight.dtype),
                     None if grad_bias is None else grad_bias.to(bias.dtype))
        return total

    @staticmethod
    def backward(ctx, grad_output):
        grads = tuple(None if g is None else g * grad_output.to(g.dtype) for g in ctx.grads)
        ctx.grads = None
        return (*grads, None, None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, *, ignore_index: int = -100, label_smoothing: float = 0.0,
                         chunk: int | None = None) -> torch.Tensor:
    """hidden (N, E), weight (V, E), bias (V,) | None, targets (N,) -> the cross-entropy of
    ``hidden @ weight.T + bias`` against ``targets``, summed over the targets that are not ``ignore_index``."""
    rows = chunk or chunk_tokens(weight.shape[0])
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, ignore_index, float(label_smoothing), rows,
                                     torch.is_grad_enabled())
