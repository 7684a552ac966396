"""`rnntool embed`: pooling definitions, batched == one-by-one for every kind, the output forms."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import invoke, run_cli
from rnntool.kinds.catalog import CATALOG
from rnntool.vectors.sentences import States, pool
from support.kind_recipe import recipe

ENCODING_KINDS = sorted(k for k, e in CATALOG.items() if e.sentence_encoder)
LINES = ["the cat sees a red house", "a dog", "", "small green bird likes the river tree", "dog",
         "the the the cat cat", "a river"]


def test_every_trained_kind_can_embed():
    assert ENCODING_KINDS == sorted(k for k, e in CATALOG.items() if e.implementation)


def test_pooling_definitions_on_hand_made_states():
    memory = torch.tensor([[[-1.0, 2.0], [-3.0, 4.0], [0.0, 0.0]],   # two real positions, then padding
                           [[-5.0, -6.0], [-7.0, -1.0], [-2.0, -9.0]],  # three real positions
                           [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])  # a blank line
    states = States(memory, torch.tensor([2, 3, 0]), last=torch.tensor([[9.0, 8.0], [7.0, 6.0], [5.0, 4.0]]))
    torch.testing.assert_close(pool(states, "mean"), torch.tensor([[-2.0, 3.0], [-14 / 3, -16 / 3], [0.0, 0.0]]))
    # max over real positions only: the padding's zeros would win in row 0's first column otherwise
    torch.testing.assert_close(pool(states, "max"), torch.tensor([[-1.0, 4.0], [-2.0, -1.0], [0.0, 0.0]]))
    torch.testing.assert_close(pool(states, "last"), torch.tensor([[9.0, 8.0], [7.0, 6.0], [0.0, 0.0]]))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny trained model of each kind with an encoder, as bundle directories."""
    root = tmp_path_factory.mktemp("embed")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNTOOL_HOME", str(root / "registry"))
        for kind in ENCODING_KINDS:
            if kind == "word2vec" and importlib.util.find_spec("gensim") is None:
                continue  # an optional extra
            r = recipe(kind)
            (root / kind).mkdir()
            result = invoke(*r.command, *r.data(root / kind), *r.tiny, *r.steps(3), "-o", root / kind / "m")
            assert result.exit_code == 0, result.output
            out[kind] = root / kind / "m"
    return out


def vectors(text: str) -> np.ndarray:
    return np.array([[float(x) for x in line.split()] for line in text.splitlines()])


@pytest.mark.parametrize("kind", ENCODING_KINDS)
@pytest.mark.parametrize("how", ["last", "mean", "max"])
def test_batched_equals_one_by_one(models, kind, how):
    if kind not in models:
        pytest.skip(f"{kind} needs an optional extra")
    text = "\n".join(LINES) + "\n"
    batched = invoke("embed", "-m", models[kind], "--pool", how, "--batch-size", "64", input=text)
    alone = invoke("embed", "-m", models[kind], "--pool", how, "--batch-size", "1", input=text)
    assert batched.exit_code == 0 and alone.exit_code == 0, batched.output + alone.output
    a, b = vectors(batched.stdout), vectors(alone.stdout)
    assert a.shape[0] == len(LINES) and a.shape[1] > 0
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not a[2].any()  # the blank line: zeros
    assert "1 blank line got the zero vector" in batched.stderr
    assert len({tuple(row) for row in a}) > 3  # different lines, different vectors


def test_lm_last_is_the_state_after_the_last_piece(models):
    from rnntool.kinds.lm.model import open_lm

    lm = open_lm(str(models["lm"]), device="cpu")
    ids = lm.tokenizer.encode("a dog")
    hidden, _ = lm.model.encode(torch.tensor([[lm.start_id, *ids]]))  # (1, T, H)
    out = invoke("embed", "-m", models["lm"], "--pool", "last", input="a dog\n")
    np.testing.assert_allclose(vectors(out.stdout)[0], hidden[0, -1].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_translation_last_is_the_encoders_final_state(models):
    from rnntool.kinds.translation.model import load_translation, source_batch
    from rnntool.registry.store import Registry

    model, src_tok, _ = load_translation(Registry.open().load(str(models["translation"])))
    src, lengths = source_batch([src_tok.encode("a dog")])
    _, (h, _) = model.encoder(src, lengths)  # (L, 1, H)
    out = invoke("embed", "-m", models["translation"], "--pool", "last", input="a dog\n")
    np.testing.assert_allclose(vectors(out.stdout)[0], h[-1, 0].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_json_npy_and_normalize(models, tmp_path):
    text = "\n".join(LINES) + "\n"
    plain = vectors(invoke("embed", "-m", models["classifier"], input=text).stdout)
    rows = invoke("embed", "-m", models["classifier"], "--json", "--normalize", input=text).stdout.splitlines()
    unit = np.array([json.loads(row)["vector"] for row in rows])
    norms = np.linalg.norm(unit, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3]], 1.0, rtol=1e-4)
    np.testing.assert_allclose(unit[0], plain[0] / np.linalg.norm(plain[0]), rtol=1e-4, atol=1e-5)
    r = invoke("embed", "-m", models["classifier"], "--npy", tmp_path / "v.npy", input=text)
    assert r.exit_code == 0 and r.stdout == ""
    matrix = np.load(tmp_path / "v.npy", allow_pickle=False)
    assert matrix.dtype == np.float32 and matrix.shape == plain.shape
    np.testing.assert_allclose(matrix, plain, rtol=1e-4, atol=1e-5)
    assert invoke("embed", "-m", models["classifier"], "--npy", tmp_path / "w.npy", "--json",
                  input=text).exit_code == 2


def test_a_model_without_an_encoder_is_a_usage_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"{line}\n" for line in LINES * 20), encoding="utf-8")
    assert invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "290", "-q").exit_code == 0
    r = invoke("embed", "-m", "spm", input="a dog\n")
    assert r.exit_code == 2 and "no encoder" in r.stderr and "lm" in r.stderr


def test_embed_streams_in_a_real_pipeline(models):
    r = run_cli("embed", "-m", models["tagger"], "--pool", "max", input="a dog\nthe cat\n")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2
