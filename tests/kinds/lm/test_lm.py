"""The RNN language model: config checks, shapes, step == forward, save/load round trip."""

from __future__ import annotations

import pytest
import torch

from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.lm.model import CELLS, LMConfig, RNNLM, detach_state, load_lm, save_lm, state_from_tensors, state_tensors


def tiny(cell="lstm", **kw) -> LMConfig:
    base = dict(vocab_size=17, cell=cell, layers=2, embed_dim=8, hidden_dim=8,
                embed_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0)
    return LMConfig(**{**base, **kw})


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_and_step_matches_forward(cell):
    torch.manual_seed(0)
    model = RNNLM(tiny(cell)).eval()
    tokens = torch.randint(0, 17, (3, 5))
    logits, state = model(tokens)
    assert logits.shape == (3, 5, 17)
    # stepping token by token gives the same distributions as one forward pass
    step_state, last = model.prompt_state(tokens[:, :2])
    assert torch.equal(last, tokens[:, 1])
    for t in range(1, 5):
        logprobs, step_state, attn = model.step(tokens[:, t], step_state)
        assert attn is None
        assert torch.allclose(logprobs, torch.log_softmax(logits[:, t], -1), atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_reorder_state_selects_rows(cell):
    model = RNNLM(tiny(cell)).eval()
    state, _ = model.prompt_state(torch.tensor([[2, 5, 1], [2, 6, 1], [2, 7, 1]]))
    picked = model.reorder_state(state, torch.tensor([2, 2, 0]))
    first = picked[0] if isinstance(picked, tuple) else picked
    full = state[0] if isinstance(state, tuple) else state
    assert first.shape == (2, 3, 8)
    assert torch.equal(first[:, 0], full[:, 2]) and torch.equal(first[:, 2], full[:, 0])


def test_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match="lstm"):
        tiny("lsmt")
    with pytest.raises(ConfigError, match="layers"):
        tiny(layers=0)
    with pytest.raises(ConfigError, match="dropout"):
        tiny(output_dropout=1.0)
    with pytest.raises(ConfigError, match="weight-drop"):
        tiny(weight_drop=-0.1)


def test_weight_drop_off_leaves_the_config_as_it_was_before_the_setting():
    # bundles and retrain keys of models without weight drop read exactly as before it existed
    assert "weight_drop" not in tiny().to_dict()
    assert LMConfig.from_dict(tiny().to_dict()) == tiny()
    assert LMConfig.from_dict(tiny(weight_drop=0.2).to_dict()).weight_drop == 0.2


@pytest.mark.parametrize("cell", ["rnn-tanh", "gru", "lstm"])
def test_weight_drop_masks_recurrent_weights_in_training_only(cell):
    torch.manual_seed(0)
    dropped = RNNLM(tiny(cell, weight_drop=0.5))
    plain = RNNLM(tiny(cell))
    plain.load_state_dict(dropped.state_dict())
    tokens = torch.randint(0, 17, (3, 6))
    before = {k: v.clone() for k, v in dropped.state_dict().items()}
    # evaluation: no mask, the same function as the model without weight drop
    assert torch.equal(dropped.eval()(tokens)[0], plain.eval()(tokens)[0])
    # training: the recurrent weights are masked (the first step has no state yet, so it is equal)
    out = dropped.train()(tokens)[0]
    ref = plain.train()(tokens)[0]
    assert torch.equal(out[:, 0], ref[:, 0]) and not torch.allclose(out[:, 1:], ref[:, 1:])
    # the gradient reaches the real parameters, and only through the kept entries
    out.sum().backward()
    grad = dropped.rnn.weight_hh_l0.grad
    assert grad is not None and 0 < torch.count_nonzero(grad) < grad.numel()
    assert all(torch.equal(v, before[k]) for k, v in dropped.state_dict().items())  # nothing changed in place


def test_locked_dropout_off_leaves_the_config_as_it_was_before_the_setting():
    assert "locked_dropout" not in tiny().to_dict()
    assert LMConfig.from_dict(tiny(locked_dropout=True).to_dict()).locked_dropout is True


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("weight_drop", [0.0, 0.5])
def test_locked_dropout_runs_the_fused_rnn_layer_by_layer_with_the_same_weights(cell, weight_drop, monkeypatch):
    """Run apart (to lock the dropout between layers), the layers compute what the fused stack computes:
    outputs, the state of every layer and the gradients, --weight-drop's masks included."""
    torch.manual_seed(0)
    config = tiny(cell, layers=3, embed_dim=6, locked_dropout=True, hidden_dropout=0.5, weight_drop=weight_drop)
    model = RNNLM(config).train()
    embedded = torch.randn(3, 5, 6)
    state = model.initial_state(3)
    state = tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)
    monkeypatch.setattr(model, "_dropout", lambda x, dropout: x)  # every mask all ones
    torch.manual_seed(1)
    out, last = model._layer_by_layer(embedded, state)
    out.sum().backward()
    apart = {name: p.grad.clone() for name, p in model.rnn.named_parameters()}
    model.zero_grad()
    model.rnn.dropout = 0.0  # the fused stack with nothing dropped between layers
    torch.manual_seed(1)  # the same --weight-drop masks
    ref, ref_last = model._weight_dropped_rnn(embedded, state) if weight_drop else model.rnn(embedded, state)
    ref.sum().backward()
    assert torch.allclose(out, ref, atol=1e-6)
    pairs = zip(last, ref_last) if isinstance(last, tuple) else [(last, ref_last)]
    assert all(a.shape == (3, 3, 8) and torch.allclose(a, b, atol=1e-6) for a, b in pairs)
    assert all(torch.allclose(p.grad, apart[name], atol=1e-5) for name, p in model.rnn.named_parameters())


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_locked_dropout_keeps_one_mask_per_row_for_every_step_in_training_only(cell):
    torch.manual_seed(0)
    locked = RNNLM(tiny(cell, locked_dropout=True, embed_dropout=0.3, hidden_dropout=0.3, output_dropout=0.5))
    plain = RNNLM(tiny(cell, embed_dropout=0.3, hidden_dropout=0.3, output_dropout=0.5))
    plain.load_state_dict(locked.state_dict())
    tokens = torch.randint(0, 17, (4, 6))
    assert torch.equal(locked.eval()(tokens)[0], plain.eval()(tokens)[0])  # evaluation: nothing dropped
    x = torch.ones(4, 6, 8)
    kept = locked.train()._dropout(x, locked.output_dropout)  # (B, T, D)
    assert torch.equal(kept, kept[:, :1].expand_as(kept))  # one mask per row, the same at every step
    assert set(kept.unique().tolist()) == {0.0, 2.0}  # scaled by 1 / (1 - p)
    assert not torch.equal(kept[0], kept[1])  # rows draw their own masks
    unlocked = plain.train()._dropout(x, plain.output_dropout)
    assert not torch.equal(unlocked, unlocked[:, :1].expand_as(unlocked))
    assert locked.state_dict().keys() == plain.state_dict().keys()  # the same weights, the same bundle files


@pytest.mark.parametrize("tie,hidden_dim", [(False, 8), (True, 8), (True, 12)])  # 12: tied through a projection
def test_save_load_round_trip(tmp_path, tie, hidden_dim):
    torch.manual_seed(1)
    config = tiny("lstm", tie_embeddings=tie, hidden_dim=hidden_dim)
    model = RNNLM(config).eval()
    save_lm(model, tmp_path / "model.safetensors")
    loaded = load_lm(config.to_dict(), tmp_path / "model.safetensors")
    tokens = torch.randint(0, 17, (2, 4))
    assert torch.equal(model(tokens)[0], loaded(tokens)[0])
    if tie:
        assert "output.weight" not in loaded.state_dict()
        assert ("pre_output.weight" in loaded.state_dict()) == (hidden_dim != 8)
        loaded.embedding.weight.data.zero_()
        assert torch.count_nonzero(loaded(tokens)[0] - loaded.output_bias) == 0  # tied: uses the embedding


def test_load_rejects_mismatched_weights_and_unknown_config(tmp_path):
    save_lm(RNNLM(tiny("gru")), tmp_path / "m.safetensors")
    with pytest.raises(CorruptBundle, match="do not match"):
        load_lm(tiny("lstm").to_dict(), tmp_path / "m.safetensors")
    with pytest.raises(CorruptBundle, match="newer rnntool"):
        load_lm({**tiny().to_dict(), "attention": "dot"}, tmp_path / "m.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(CorruptBundle, match="cannot read"):
        load_lm(tiny("gru").to_dict(), tmp_path / "bad.safetensors")


@pytest.mark.parametrize("cell", ["rnn-relu", "lstm"])
def test_state_tensors_round_trip_and_detach(cell):
    model = RNNLM(tiny(cell))
    _, state = model(torch.randint(0, 17, (2, 3)))
    back = state_from_tensors(state_tensors(state))
    flat = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(flat(state), flat(back)))
    assert all(not s.requires_grad for s in flat(detach_state(state)))
    assert state_from_tensors(state_tensors(None)) is None
