"""`rnntool models vectors REF`: a tiny trained model of every kind with an input embedding table gives
word2vec text whose table is, bit for bit, the embedding its model holds, one row per piece or word in
id order; --side chooses a translation model's table; other kinds are refused, naming those that have one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import fails, invoke, ok
from rnntool.kinds.catalog import CATALOG, VOCAB_FILE, WEIGHTS_FILE
from rnntool.vectors.io import WordVectors, read_vectors
from support.kind_recipe import recipe

VECTOR_KINDS = sorted(k for k, e in CATALOG.items() if e.input_embeddings)


def test_every_trained_kind_has_word_vectors_and_a_tokenizer_has_none():
    assert VECTOR_KINDS == sorted(k for k, e in CATALOG.items() if e.implementation)
    assert CATALOG["tokenizer"].input_embeddings is None


def _train(root, kind: str, *extra: str):
    r = recipe(kind)
    data = root / f"{kind}{'-'.join(extra)}-data"
    data.mkdir()
    result = invoke(*r.command, *r.data(data), *r.tiny, *r.steps(3), *extra, "-o", data / "m")
    assert result.exit_code == 0, result.output
    return data / "m"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny trained model of each kind with vectors (and a translation model with --joint-vocab), as
    bundle directories."""
    root = tmp_path_factory.mktemp("vectors")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNTOOL_HOME", str(root / "registry"))
        out = {kind: _train(root, kind) for kind in VECTOR_KINDS}
        out["joint"] = _train(root, "translation", "--joint-vocab", "--vocab-size", "320")
    return out


def stored_tensors(path) -> list[np.ndarray]:
    from safetensors.numpy import load_file

    return list(load_file(path / WEIGHTS_FILE).values())


def model_tables(kind: str, path) -> dict[str, np.ndarray]:
    """The input embedding tables of the model itself, loaded as its inference commands load it: (V, E)
    each (an empty dict for a kind this test knows no loader of)."""
    if kind == "lm":
        from rnntool.kinds.lm.model import open_lm

        return {"src": open_lm(str(path), device="cpu").model.embedding.weight.detach().numpy()}
    if kind == "translation":
        from rnntool.kinds.translation.model import load_translation
        from rnntool.registry.store import Registry

        model, _, _ = load_translation(Registry.open().load(str(path)))
        return {"src": model.encoder.embedding.weight.detach().numpy(),
                "tgt": model.decoder.embedding.weight.detach().numpy()}
    if kind == "classifier":
        from rnntool.kinds.classifier.predict import open_classifier

        return {"src": open_classifier(str(path), device="cpu").model.encoder.embedding.weight.detach().numpy()}
    if kind == "tagger":
        from rnntool.kinds.tagger.predict import open_tagger

        return {"src": open_tagger(str(path), device="cpu").model.word_embedding.weight.detach().numpy()}
    return {}


def model_words(kind: str, path, side: str = "src") -> list[str] | None:
    if kind not in ("lm", "translation", "classifier", "tagger"):
        return None
    if kind == "tagger":
        return ["<pad>", "<unk>", *json.loads((path / VOCAB_FILE).read_text(encoding="utf-8"))["words"]]
    from rnntool.tokenizers.sentencepiece import Tokenizer

    tokenizer = Tokenizer.from_bundle(path, side=side if kind == "translation" else None)
    return [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]


def vectors_of(text: str, tmp_path) -> WordVectors:
    (tmp_path / "out.vec").write_text(text, encoding="utf-8")
    return read_vectors(tmp_path / "out.vec")


@pytest.mark.parametrize("kind", VECTOR_KINDS)
def test_the_table_is_the_models_embedding_bit_for_bit(models, kind, tmp_path):
    r = ok(invoke("models", "vectors", models[kind]))  # stdout by default
    vectors = vectors_of(r.stdout, tmp_path)
    assert r.stdout.splitlines()[0] == f"{len(vectors)} {vectors.dim}"
    assert vectors.matrix.dtype == np.float32
    assert any(np.array_equal(vectors.matrix, t) for t in stored_tensors(models[kind]))  # as model.safetensors holds it
    expected = model_tables(kind, models[kind]).get("src")
    if expected is not None:  # and as the model holds it once loaded
        assert np.array_equal(vectors.matrix, expected)
    words = model_words(kind, models[kind])
    if words is not None:
        assert vectors.words == words  # every piece or word, specials too, in id order
    assert f"wrote {len(vectors)} vectors of dimension {vectors.dim} to stdout" in r.stderr


def test_it_reads_the_one_tensor_without_torch(models, tmp_path):
    code = ("import sys; from rnntool.cli import main\n"
            "try: main(['models', 'vectors', sys.argv[1], '-o', sys.argv[2], '-q'])\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code, str(models["lm"]), str(tmp_path / "lm.vec")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert read_vectors(tmp_path / "lm.vec").dim == 16


def test_translation_sides(models, tmp_path):
    tables = model_tables("translation", models["translation"])
    src = ok(invoke("models", "vectors", models["translation"], "--side", "src", "-q")).stdout
    assert src == ok(invoke("models", "vectors", models["translation"], "-q")).stdout  # src is the default
    tgt = ok(invoke("models", "vectors", models["translation"], "--side", "tgt", "-q")).stdout
    assert np.array_equal(vectors_of(tgt, tmp_path).matrix, tables["tgt"])
    assert vectors_of(tgt, tmp_path).words == model_words("translation", models["translation"], "tgt")
    assert not np.array_equal(vectors_of(src, tmp_path).matrix[4:], vectors_of(tgt, tmp_path).matrix[4:])


def test_a_shared_table_is_read_under_either_name(models, tmp_path):
    """--joint-vocab: one table, stored once (under the decoder's name), read for both sides."""
    tables = model_tables("translation", models["joint"])
    assert np.array_equal(tables["src"], tables["tgt"])
    for side in ("src", "tgt"):
        out = ok(invoke("models", "vectors", models["joint"], "--side", side, "-q")).stdout
        assert np.array_equal(vectors_of(out, tmp_path).matrix, tables[side])


def test_a_registry_reference_and_a_gzipped_file(models, tmp_path):
    ok(invoke("models", "import", models["classifier"], "--name", "news", "-q"))
    out = tmp_path / "news.vec.gz"
    r = ok(invoke("models", "vectors", "news@1", "-o", out))
    assert r.stdout == ""
    assert out.read_bytes().startswith(b"\x1f\x8b")
    expected = model_tables("classifier", models["classifier"])["src"]
    assert np.array_equal(read_vectors(out).matrix, expected)
    assert f"wrote {expected.shape[0]} vectors of dimension {expected.shape[1]} to {out}" in r.stderr
    r = ok(invoke("models", "vectors", "news", "-o", "-", "-q"))  # `-o -` is stdout
    assert r.stderr == "" and np.array_equal(vectors_of(r.stdout, tmp_path).matrix, expected)


def test_side_on_a_kind_with_one_table_is_a_usage_error(models):
    fails(invoke("models", "vectors", models["lm"], "--side", "tgt"), 2, "--side tgt", "one input embedding table")
    fails(invoke("models", "vectors", models["translation"], "--side", "both"), 2)


def test_a_tokenizer_has_no_vectors_and_the_error_names_the_kinds_that_do(corpus):
    ok(invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "290", "-q"))
    named = ", ".join(k for k, e in CATALOG.items() if e.input_embeddings)  # in the catalog's order
    fails(invoke("models", "vectors", "spm"), 1, "spm@1 is a tokenizer", named)


def test_a_missing_file_or_model(tmp_path):
    fails(invoke("models", "vectors", tmp_path / "nope.vec"), 1, "nope.vec: no such vectors file")
    fails(invoke("models", "vectors", "nope"), 1, "nope")


def test_tagger_rows_without_a_word_get_names_no_word_has():
    from rnntool.kinds.tagger.vectors import _special_names

    assert _special_names(["a", "b"]) == ["<pad>", "<unk>"]
    assert _special_names(["<unk>", "<<pad>>", "<pad>"]) == ["<<<pad>>>", "<<unk>>"]
