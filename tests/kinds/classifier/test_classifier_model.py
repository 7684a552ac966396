"""The classifier model and task without the CLI: padding never leaks, probabilities are
distributions, batches cover the data once, and the optimizer groups of gradual unfreezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnntool.errors import ConfigError
from rnntool.kinds.classifier.model import POOLINGS, ClassifierConfig, RNNClassifier, lm_transfer_weights, token_batch
from rnntool.kinds.classifier.task import decide, predict_probabilities
from rnntool.training.batching import length_batches
from rnntool.training.config import TrainConfig
from rnntool.training.optim import build_optimizer, set_lr

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kw) -> RNNClassifier:
    torch.manual_seed(0)
    cfg = dict(vocab_size=30, num_classes=3, embed_dim=8, hidden_dim=12, dropout=0.0) | kw
    return RNNClassifier(ClassifierConfig(**cfg)).eval()


def _sequences(n: int = 9, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [list(rng.integers(4, 30, size=int(rng.integers(1, 12)))) for _ in range(n)]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 2), ("gru", False, 1), ("rnn-tanh", True, 1)])
def test_batched_equals_one_by_one(pooling, cell, bidirectional, layers):
    model = _model(pooling=pooling, cell=cell, bidirectional=bidirectional, layers=layers)
    seqs = _sequences()
    with torch.no_grad():
        batched = model(*token_batch(seqs, "cpu"))  # (B, C), padded to the longest
        single = torch.cat([model(*token_batch([s], "cpu")) for s in seqs])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_probabilities_are_distributions_and_multi_label_sigmoids():
    seqs = _sequences()
    with torch.no_grad():
        probs = predict_probabilities(_model(), seqs, batch_size=4)
        multi = predict_probabilities(_model(multi_label=True), seqs, batch_size=4)
    assert probs.shape == (len(seqs), 3) and np.allclose(probs.sum(1), 1.0)
    assert ((multi > 0) & (multi < 1)).all() and not np.allclose(multi.sum(1), 1.0)
    # predict_probabilities sorts by length internally; the rows come back in input order
    with torch.no_grad():
        one = np.concatenate([predict_probabilities(_model(), [s]) for s in seqs])
    assert np.allclose(probs, one, atol=1e-6)


def test_decide_argmax_and_threshold():
    probs = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert decide(probs, ["a", "b", "c"], False, 0.5) == [("b",), ("a",)]
    multi = np.array([[0.9, 0.2, 0.55], [0.1, 0.2, 0.3]])
    assert decide(multi, ["a", "b", "c"], True, 0.5) == [("a", "c"), ()]


def test_config_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="pooling"):
        ClassifierConfig(vocab_size=10, num_classes=2, pooling="sum")
    with pytest.raises(ConfigError, match="even"):
        ClassifierConfig(vocab_size=10, num_classes=2, hidden_dim=7, bidirectional=True)


def test_length_batches_cover_every_example_once_and_repeat_with_the_seed():
    lengths = list(np.random.default_rng(0).integers(1, 50, size=1000))
    a = length_batches(lengths, 16, seed=3)
    assert sorted(i for b in a for i in b) == list(range(1000))
    assert a == length_batches(lengths, 16, seed=3) and a != length_batches(lengths, 16, seed=4)
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a])
    assert spread < 5  # sorted within pools: little padding


def test_gradual_unfreezing_groups_and_rates():
    model = _model(layers=2, bidirectional=False)
    groups = model.param_groups(lr_scale=0.5, unfreeze_every=10)
    names = {id(p): n for n, p in model.named_parameters()}
    seen = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(names.values())  # every parameter in exactly one group
    starts = {names[id(g["params"][0])]: g.get("start_step", 0) for g in groups}
    assert starts["output.weight"] == 0
    assert starts["encoder.rnn.weight_ih_l1"] == 10 and starts["encoder.rnn.weight_ih_l0"] == 20
    assert starts["encoder.embedding.weight"] == 30
    opt = build_optimizer(groups, TrainConfig(lr=1e-2, max_steps=5))
    set_lr(opt, 1e-2, step=15)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 5e-3, 0.0, 0.0]


def test_lm_weights_fit_a_unidirectional_classifier():
    from rnntool.kinds.lm.model import LMConfig, RNNLM

    lm = RNNLM(LMConfig(vocab_size=30, cell="gru", layers=2, embed_dim=8, hidden_dim=12))
    clf = _model(cell="gru", layers=2, bidirectional=False)
    weights = lm_transfer_weights(lm.state_dict())
    missing, unexpected = clf.load_state_dict(weights, strict=False)
    assert not unexpected and all(not k.startswith("encoder.") for k in missing)
    assert torch.equal(clf.encoder.rnn.weight_hh_l1, lm.rnn.weight_hh_l1)
