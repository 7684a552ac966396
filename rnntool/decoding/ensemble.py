"""Ensembles: several models with the same vocabulary decoding as one (fairseq's and OpenNMT-py's
``--path a.pt:b.pt`` / ``-model a.pt b.pt``), for `translate -m A -m B` and `generate -m A -m B`.

Each step's next-token distribution is the mean of the members' distributions (the log of the mean
probability, as fairseq), and attention the mean of theirs. An Ensemble has the step-model interface of
rnntool/decoding/search.py (``step``, ``reorder_state``, ``repeat_state``) and each member's way of starting: ``encode``
(translation models) or ``prompt_state`` (language models); its state is the list of the members' states.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        if len(models) < 2:
            raise ValueError("an ensemble needs at least two models")
        # modules (their parameters, device and eval mode follow the ensemble's); any step model works
        self.members = nn.ModuleList(models) if all(isinstance(m, nn.Module) for m in models) else list(models)

    def encode(self, *args, **kwargs) -> list:
        """Translation models: each member's decoder state for the source batch."""
        return [m.encode(*args, **kwargs) for m in self.members]

    def shortlist_state(self, states: list, vocab: torch.Tensor) -> list:
        """Translation models: each member's state decoding over the same shortlist (positions mean the same ids)."""
        return [m.shortlist_state(s, vocab) for m, s in zip(self.members, states)]

    def prompt_state(self, prompt: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Language models: each member's state after the prompt, and the prompt's last tokens (N,)."""
        states, last = [], None
        for m in self.members:
            state, last = m.prompt_state(prompt)
            states.append(state)
        return states, last

    def step(self, tokens: torch.Tensor, states: list) -> tuple[torch.Tensor, list, torch.Tensor | None]:
        """tokens (N,) -> the mean distribution's log-probs (N, V), the members' new states, mean attention (N, S)."""
        outs = [m.step(tokens, s) for m, s in zip(self.members, states)]
        log_probs = torch.stack([o[0].float() for o in outs])  # (M, N, V)
        mean = torch.logsumexp(log_probs, dim=0) - math.log(len(outs))  # (N, V)
        attention = [o[2] for o in outs if o[2] is not None]
        return mean, [o[1] for o in outs], (torch.stack(attention).mean(0) if attention else None)

    def reorder_state(self, states: list, index: torch.Tensor) -> list:
        return [m.reorder_state(s, index) for m, s in zip(self.members, states)]

    def repeat_state(self, states: list, times: int) -> list:
        return [m.repeat_state(s, times) for m, s in zip(self.members, states)]


__all__ = ["Ensemble"]
