"""--precision of the decoding commands: fp32 untouched, bf16 and int8 close to it, GPU-only formats refused
on the CPU in one line, training offering only its part of the shared set of choices."""

from __future__ import annotations

import copy
import re

import pytest
import torch

from rnntool.errors import ConfigError
from rnntool.kinds.lm.model import LMConfig, RNNLM
from rnntool.kinds.translation.model import Seq2Seq, Seq2SeqConfig, source_batch
from rnntool.layers.precision import for_inference
from rnntool.tokenizers.sentencepiece import BOS_ID
from conftest import fails, invoke


def seq2seq() -> Seq2Seq:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=40, tgt_vocab_size=50, layers=2, embed_dim=16, hidden_dim=32, dropout=0.0)
    return Seq2Seq(cfg).eval()


def first_steps(model, steps: int = 4) -> torch.Tensor:
    """Log-probs (steps, B, V) of a few teacher-forced decoding steps through ``step``."""
    src, lengths = source_batch([[5, 6, 7, 8], [9, 10], [11, 12, 13]])
    out, tokens = [], torch.full((3,), BOS_ID)
    with torch.no_grad():
        state = model.encode(src, lengths)
        for t in range(steps):
            log_probs, state, _ = model.step(tokens, state)
            out.append(log_probs.float())
            tokens = torch.tensor([5 + t, 6 + t, 7 + t])
    return torch.stack(out)


def test_fp32_is_the_model_itself():
    model = seq2seq()
    assert for_inference(model, "fp32", "cpu") is model


@pytest.mark.parametrize("precision,atol", [("bf16", 0.05), ("int8", 0.05)])
def test_bf16_and_int8_stay_close_to_fp32(precision, atol):
    model = seq2seq()
    want = first_steps(model)
    converted = for_inference(seq2seq(), precision, "cpu")
    got = first_steps(converted)
    assert got.shape == want.shape and torch.isfinite(got).all()
    torch.testing.assert_close(got, want, atol=atol, rtol=0)
    assert not torch.equal(got, want)  # it did change the arithmetic


def test_int8_quantizes_the_linear_and_recurrent_layers():
    from torch.ao.nn.quantized import dynamic as qd

    model = for_inference(seq2seq(), "int8", "cpu")
    assert isinstance(model.decoder.output, qd.Linear)
    assert isinstance(model.decoder.rnn, qd.LSTM) and isinstance(model.encoder.rnn, qd.LSTM)
    assert isinstance(model.decoder.embedding, torch.nn.Embedding)  # embeddings stay fp32


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_language_model_steps_like_the_fp32_one(tied, precision):
    """`generate --precision`: the prompt's state and each step in the model's format, close to fp32."""
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=60, embed_dim=16, hidden_dim=16, layers=2, tie_embeddings=tied)
    fp32 = RNNLM(cfg).eval()
    other = for_inference(copy.deepcopy(fp32), precision, "cpu")
    prompt = torch.tensor([[1, 7, 8, 9], [1, 10, 11, 3]])
    with torch.no_grad():
        want_state, last = fp32.prompt_state(prompt)
        want, _, _ = fp32.step(last, want_state)
        got_state, last = other.prompt_state(prompt)
        got, _, _ = other.step(last, got_state)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=0.05, rtol=0)


def test_gpu_only_formats_are_refused_on_the_cpu():
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        for_inference(seq2seq(), "fp16", "cpu")
    with pytest.raises(ConfigError, match="int8 .* CPU only"):
        for_inference(seq2seq(), "int8", "cuda")  # refused before anything touches a GPU
    with pytest.raises(ConfigError, match="--precision must be one of"):
        for_inference(seq2seq(), "int4", "cpu")


def test_training_takes_its_part_of_the_shared_choices(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("a few words\n" * 20)
    r = invoke("train", "lm", corpus, "-o", tmp_path / "m", "--precision", "int8")
    fails(r, 2, "--precision int8", "training takes fp32, bf16, fp16")
    fails(invoke("train", "lm", corpus, "-o", tmp_path / "m", "--precision", "fp16", "--device", "cpu"), 2,
          "fp16 trains on a GPU only", "--precision bf16")
    if not torch.cuda.is_available():  # --device auto on a machine without one: refused before any data is read
        r = fails(invoke("train", "lm", corpus, "-o", tmp_path / "m", "--precision", "fp16"), 2, "fp16 trains on a GPU")
        assert "vocabulary" not in r.stderr and not (tmp_path / "m").exists()

    def help_text(*command):
        return re.sub(r"[│\s]+", " ", invoke(*command, "--help").stdout)

    for command in (["translate"], ["generate"]):
        assert "takes: fp32, bf16, fp16, int8" in help_text(*command)
    assert "takes: fp32, bf16, fp16." in help_text("train", "translate")
