"""The translation model: shapes, masks, packing, teacher forcing vs stepping, bundles."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig, load_translation, source_batch
from rnntool.layers.weights import load_weights, save_weights
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID

SOURCES = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 4, 5, 6]]  # ragged: rows 1 and 2 are padded
TGT_IN = torch.tensor([[BOS_ID, 5, 6, 7, 8], [BOS_ID, 9, 10, PAD_ID, PAD_ID], [BOS_ID, 4, 4, 4, PAD_ID]])


def small_model(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=16, tgt_vocab_size=15, layers=2, embed_dim=8, hidden_dim=12, dropout=0.0)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, **kw})).eval()


VARIANTS = list(itertools.product(["none", "dot", "general", "mlp"], [True, False], ["lstm", "gru", "rnn-tanh"]))
VARIANTS += [("general", True, "rnn-relu"), ("dot", False, "rnn-relu")]  # every cell the other kinds offer


@pytest.mark.parametrize("attention,input_feeding,cell", VARIANTS)
def test_teacher_forcing_equals_stepping(attention, input_feeding, cell):
    model = small_model(attention=attention, input_feeding=input_feeding, cell=cell,
                        bidirectional=cell != "gru", bridge="zeros" if cell == "rnn-tanh" else "linear")
    src, lengths = source_batch(SOURCES)
    with torch.no_grad():
        logits = model(src, lengths, TGT_IN)  # (B, T, V)
        assert logits.shape == (3, 5, 15)
        state = model.encode(src, lengths)
        stepped = []
        for t in range(TGT_IN.shape[1]):
            logprobs, state, weights = model.step(TGT_IN[:, t], state)
            stepped.append(logprobs)
            assert (weights is None) == (attention == "none")
    torch.testing.assert_close(torch.stack(stepped, 1), torch.log_softmax(logits, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["dot", "general", "mlp"])
def test_padded_source_positions_get_zero_attention(attention):
    model = small_model(attention=attention)
    src, lengths = source_batch(SOURCES)
    assert lengths.tolist() == [7, 3, 5]  # pieces + EOS
    with torch.no_grad():
        state = model.encode(src, lengths)
        for token in (BOS_ID, 7, 9):
            _, state, weights = model.step(torch.full((3,), token), state)  # (3, S)
            for row, n in enumerate(lengths.tolist()):
                assert torch.all(weights[row, n:] == 0)
                assert torch.all(weights[row, :n] > 0)
            torch.testing.assert_close(weights.sum(-1), torch.ones(3))


def test_packed_encoder_matches_unpadded_rows():
    model = small_model(cell="lstm", bidirectional=True)
    src, lengths = source_batch(SOURCES)
    with torch.no_grad():
        memory, (h, c) = model.encoder(src, lengths)  # (B, S, H), (L, B, H)
        for row, ids in enumerate(SOURCES):
            alone, (h1, c1) = model.encoder(*source_batch([ids]))
            n = len(ids) + 1
            torch.testing.assert_close(memory[row, :n], alone[0], atol=1e-6, rtol=1e-6)
            assert torch.all(memory[row, n:] == 0)  # padding costs nothing and leaks nothing
            torch.testing.assert_close(h[:, row], h1[:, 0], atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(c[:, row], c1[:, 0], atol=1e-6, rtol=1e-6)


def test_batched_translation_equals_one_at_a_time():
    """Padding a sentence into a batch changes nothing downstream: same log-probs step by step."""
    model = small_model(attention="mlp")
    src, lengths = source_batch(SOURCES)
    with torch.no_grad():
        batched = torch.log_softmax(model(src, lengths, TGT_IN), -1)
        for row, ids in enumerate(SOURCES):
            n = int((TGT_IN[row] != PAD_ID).sum())
            alone = torch.log_softmax(model(*source_batch([ids]), TGT_IN[row:row + 1, :n]), -1)
            torch.testing.assert_close(batched[row, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_loss_counts_real_tokens_only():
    model = small_model()
    src, lengths = source_batch(SOURCES)
    tgt_out = torch.tensor([[5, 6, 7, 8, EOS_ID], [9, 10, EOS_ID, PAD_ID, PAD_ID], [4, 4, 4, EOS_ID, PAD_ID]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(src, lengths, TGT_IN), -1)
        real = [(b, t) for b in range(3) for t in range(5) if tgt_out[b, t] != PAD_ID]
        nll = -sum(logprobs[b, t, tgt_out[b, t]] for b, t in real)
        torch.testing.assert_close(model(src, lengths, TGT_IN, tgt_out), nll)
        uniform = -sum(logprobs[b, t].mean() for b, t in real)  # cross-entropy against uniform
        torch.testing.assert_close(model(src, lengths, TGT_IN, tgt_out, label_smoothing=0.1), 0.9 * nll + 0.1 * uniform)


def test_reorder_state_selects_and_repeats_rows():
    model = small_model(attention="general")
    src, lengths = source_batch(SOURCES)
    index = torch.tensor([2, 2, 0])
    with torch.no_grad():
        state = model.encode(src, lengths)
        full, _, full_w = model.step(torch.tensor([BOS_ID] * 3), state)
        picked, _, picked_w = model.step(torch.tensor([BOS_ID] * 3), model.reorder_state(state, index))
    torch.testing.assert_close(picked, full[index])
    torch.testing.assert_close(picked_w, full_w[index])


def test_tied_and_shared_embeddings():
    model = small_model(src_vocab_size=15, share_embeddings=True, tie_embeddings=True)
    assert model.decoder.embedding is model.encoder.embedding
    assert model.decoder.output.weight is model.encoder.embedding.weight
    # embed_dim != hidden_dim: tying still works through a projection
    src, lengths = source_batch(SOURCES)
    assert model(src, lengths, TGT_IN).shape == (3, 5, 15)
    untied = small_model(tie_embeddings=False)
    assert untied.decoder.output.weight is not untied.decoder.embedding.weight


def test_weights_round_trip(tmp_path):
    model = small_model(src_vocab_size=15, share_embeddings=True)
    save_weights(model, tmp_path / "model.safetensors")
    other = small_model(src_vocab_size=15, share_embeddings=True, )
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_weights(other, tmp_path / "model.safetensors")
    src, lengths = source_batch(SOURCES)
    with torch.no_grad():
        torch.testing.assert_close(other(src, lengths, TGT_IN), model(src, lengths, TGT_IN))
    assert other.decoder.output.weight is other.encoder.embedding.weight  # still tied after loading

    with pytest.raises(CorruptBundle, match="do not match the model config"):
        load_weights(small_model(hidden_dim=16), tmp_path / "model.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptBundle, match="cannot read"):
        load_weights(small_model(), tmp_path / "bad.safetensors")


def test_load_translation_from_bundle(tmp_path):
    from rnntool.registry.store import Registry, write_bundle
    from rnntool.tokenizers.training import train_tokenizer

    text = tmp_path / "text.txt"
    text.write_text("".join(f"the cat sees {i} birds\n" for i in range(50)), encoding="utf-8")
    stage = tmp_path / "stage"
    tok = train_tokenizer([text], stage / "tokenizer.src.model", vocab_size=290)
    (stage / "tokenizer.tgt.model").write_bytes((stage / "tokenizer.src.model").read_bytes())
    model = small_model(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size)
    save_weights(model, stage / "model.safetensors")
    write_bundle(stage, tmp_path / "bundle", name="tiny", kind="translation",
                 config={"model": model.cfg.to_dict(), "train": {}})
    bundle = Registry.open(tmp_path / "reg").load(str(tmp_path / "bundle"), kind="translation")
    loaded, src_tok, tgt_tok = load_translation(bundle)
    assert not loaded.training and loaded.cfg == model.cfg
    assert src_tok.encode("the cat") == tok.encode("the cat") and tgt_tok.vocab_size == tok.vocab_size
    src, lengths = source_batch([tok.encode("the cat sees 3 birds")])
    tgt_in = torch.tensor([[BOS_ID, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(src, lengths, tgt_in), model(src, lengths, tgt_in))


@pytest.mark.parametrize("setting,message", [
    ({"attention": "luong"}, "--attention must be one of none, dot, general, mlp"),
    ({"cell": "relu"}, "--cell must be one of rnn-tanh, rnn-relu, gru, lstm"),
    ({"bridge": "mean"}, "--bridge must be one of linear, zeros"),
    ({"hidden_dim": 7, "bidirectional": True}, "--hidden-dim must be even"),
    ({"share_embeddings": True}, "--joint-vocab"),
    ({"dropout": 1.0}, "--dropout"),
    ({"layers": 0}, "layers must be at least 1"),
])
def test_bad_settings_name_the_option(setting, message):
    with pytest.raises(ConfigError, match=message):
        Seq2SeqConfig(src_vocab_size=16, tgt_vocab_size=15, **setting)


def test_config_from_dict_rejects_unknown_keys():
    d = Seq2SeqConfig(src_vocab_size=8, tgt_vocab_size=8).to_dict()
    assert Seq2SeqConfig.from_dict(d).to_dict() == d
    with pytest.raises(CorruptBundle, match="unknown keys"):
        Seq2SeqConfig.from_dict({**d, "transformer": True})


class _RowsPerHypothesis:
    """The model with beam search's K beams as plain repeated rows (each beam its own copy of the memory),
    as before the decoder grouped them: the reference for the grouped state."""

    def __init__(self, model):
        self.model = model

    def step(self, tokens, state):
        return self.model.step(tokens, state)

    def reorder_state(self, state, index):
        return self.model.reorder_state(state, index)

    def repeat_state(self, state, times):
        return state.select(torch.arange(state.memory.size(0)).repeat_interleave(times))


@pytest.mark.parametrize("attention,input_feeding,cell", [("general", True, "lstm"), ("mlp", False, "gru"),
                                                          ("dot", True, "lstm"), ("none", True, "lstm")])
def test_beam_search_over_grouped_beams_equals_one_memory_row_per_beam(attention, input_feeding, cell):
    """Beams share their source's memory (one attention call over each source's beams, no copies when beams
    are reordered): the same hypotheses and scores as with a copy of the memory per beam, also as sentences
    finish and leave the batch."""
    from rnntool.decoding.beam_search import beam_search

    model = small_model(attention=attention, input_feeding=input_feeding, cell=cell, bidirectional=cell != "gru")
    src, lengths = source_batch(SOURCES)
    max_len = torch.tensor([3, 9, 6])  # sentences stop at different steps
    with torch.no_grad():
        for kw in ({}, {"length_penalty": 0.6, "nbest": 3}, {"coverage_penalty": 0.2, "keep_attention": True}):
            if attention == "none" and "coverage_penalty" in kw:
                continue
            grouped = beam_search(model, model.encode(src, lengths), 3, BOS_ID, EOS_ID, max_len, beam=4, **kw)
            per_row = beam_search(_RowsPerHypothesis(model), model.encode(src, lengths), 3, BOS_ID, EOS_ID, max_len,
                                  beam=4, **kw)
            for g, p in zip(grouped, per_row):
                assert [h.tokens for h in g] == [h.tokens for h in p]
                assert [h.score for h in g] == pytest.approx([h.score for h in p], abs=1e-5)
                for a, b in zip(g, p):
                    if a.attention is not None:
                        torch.testing.assert_close(a.attention, b.attention)


def test_a_grouped_state_keeps_the_memory_once_per_source():
    model = small_model(attention="general")
    src, lengths = source_batch(SOURCES)
    state = model.repeat_state(model.encode(src, lengths), 4)
    assert state.beams == 4 and state.memory.size(0) == 3 and state.rnn[0].size(1) == 12
    same_sources = state.select(torch.tensor([3, 1, 1, 0, 4, 4, 5, 7, 11, 8, 8, 8]))  # beams reordered within each
    assert same_sources.memory is state.memory  # nothing copied
    dropped = state.select(torch.tensor([9, 9, 8, 10]))  # only source 2's beams are left
    torch.testing.assert_close(dropped.memory, state.memory[2:3])
    torch.testing.assert_close(dropped.mask, state.mask[2:3])
