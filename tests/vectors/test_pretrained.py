"""`train ... --init-embeddings FILE [--freeze-embeddings]`: dimension from the file, coverage, every kind."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import invoke
from rnntool.errors import BadInput, ConfigError
from rnntool.kinds.catalog import CATALOG, WEIGHTS_FILE
from rnntool.vectors.pretrained import candidates, embedding_size, vectors_file_dim
from support.kind_recipe import WORDS, recipe

DIM = 6
# the table each kind's --init-embeddings fills (name in model.safetensors), and how rows are named
TABLES = {"lm": "embedding.weight", "translation": "encoder.embedding.weight",
          "classifier": "encoder.embedding.weight", "tagger": "word_embedding.weight"}


def word_vectors(words=WORDS, dim=DIM, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {w: rng.standard_normal(dim).astype(np.float32) for w in words}


def write_vec(path, vectors: dict, header=True, gz=False) -> None:
    lines = [f"{len(vectors)} {DIM}\n"] if header else []
    lines += [w + " " + " ".join(f"{x:.9g}" for x in v) + "\n" for w, v in vectors.items()]
    text = "".join(lines).encode("utf-8")
    path.write_bytes(gzip.compress(text) if gz else text)


def without_embed_dim(options) -> list[str]:
    """A recipe's options less --embed-dim (the vectors file sets it) and -q (the log is checked)."""
    out = [o for o in options if o != "-q"]
    if "--embed-dim" in out:
        i = out.index("--embed-dim")
        del out[i:i + 2]
    return out


def test_dimension_comes_from_word2vec_glove_and_gzip_files(tmp_path):
    vectors = word_vectors()
    for name, header, gz in (("a.vec", True, False), ("glove.txt", False, False), ("b.vec.gz", True, True)):
        write_vec(tmp_path / name, vectors, header, gz)
        assert vectors_file_dim(tmp_path / name) == DIM
    bom = tmp_path / "bom.vec"
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "a.vec").read_bytes())
    assert vectors_file_dim(bom) == DIM  # the header, not a one-number GloVe row
    assert embedding_size(None, str(tmp_path / "a.vec"), 256) == DIM
    assert embedding_size(None, None, 256) == 256 and embedding_size(64, None, 256) == 64
    with pytest.raises(ConfigError, match=f"--embed-dim 64 does not match the {DIM}-dimensional"):
        embedding_size(64, str(tmp_path / "a.vec"), 256)
    with pytest.raises(BadInput, match="no such file"):
        vectors_file_dim(tmp_path / "missing.vec")


def test_a_piece_is_looked_up_as_a_word_and_in_lower_case():
    assert candidates("\u2581The") == ["\u2581The", "The", "\u2581the", "the"]
    assert candidates("ing") == ["ing"]


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_every_kind_starts_from_the_vectors_and_records_coverage(kind, tmp_path, registry):
    assert CATALOG[kind].implementation
    vectors = word_vectors()
    write_vec(tmp_path / "words.vec", vectors)
    r = recipe(kind)
    out = tmp_path / "model"
    result = invoke(*r.command, *r.data(tmp_path), *without_embed_dim(r.tiny), "--max-steps", "2", "-o", out,
                    "--init-embeddings", tmp_path / "words.vec", "--freeze-embeddings")
    assert result.exit_code == 0, result.output
    assert "--init-embeddings" in result.stderr and "found" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["config"]["data"]["init_embeddings"]
    assert report["dim"] == DIM and report["freeze"] is True
    assert manifest["config"]["model"]["embed_dim"] == DIM
    assert any(d.get("role") == "init-embeddings" for d in manifest["data"])
    table = load_file(out / WEIGHTS_FILE)[TABLES[kind]]  # (V, DIM)
    found = sum(t["found"] for t in report["tables"].values())
    assert found >= 1  # tiny tokenizers have few whole-word pieces; the tagger's words are all whole
    if kind == "tagger":
        assert found == len(WORDS)
    # frozen: exactly ``found`` rows of the published table are the file's vectors
    held = sum(any(np.array_equal(vector, row) for vector in vectors.values()) for row in table)
    first = next(iter(report["tables"].values()))
    assert held == first["found"] and first["rows"] == table.shape[0]


def test_dimension_clash_and_misuse_are_usage_errors(tmp_path):
    write_vec(tmp_path / "words.vec", word_vectors())
    r = recipe("lm")
    args = [*r.command, *r.data(tmp_path), "-o", tmp_path / "m", "--max-steps", "1"]
    clash = invoke(*args, "--embed-dim", "16", "--init-embeddings", tmp_path / "words.vec")
    assert clash.exit_code == 2 and f"--embed-dim 16 does not match the {DIM}-dimensional" in clash.stderr
    assert invoke(*args, "--freeze-embeddings").exit_code == 2
    both = invoke(*args, "--init-embeddings", tmp_path / "words.vec", "--init-from", "x")
    assert both.exit_code == 2 and "give one" in both.stderr
    missing = invoke(*args, "--init-embeddings", tmp_path / "nope.vec")
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_new_vectors_are_new_data_for_if_changed(tmp_path, registry):
    write_vec(tmp_path / "words.vec", word_vectors())
    r = recipe("lm")
    args = [*r.command, *r.data(tmp_path), *without_embed_dim(r.tiny), "--name", "lm", "--max-steps", "1",
            "--if-changed", "--embed-dim", str(DIM), "--init-embeddings", tmp_path / "words.vec"]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0 and "skipped" in again.stdout
    write_vec(tmp_path / "words.vec", word_vectors(seed=1))
    changed = invoke(*args)
    assert changed.exit_code == 0 and "skipped" not in changed.stdout


def test_freezing_keeps_the_loaded_rows_and_trains_the_others(tmp_path):
    import torch

    from rnntool.vectors.pretrained import initialize_tables

    write_vec(tmp_path / "w.vec", {w: v for w, v in word_vectors().items() if w in ("cat", "dog")})
    table = torch.nn.Embedding(4, DIM, padding_idx=0)
    report = initialize_tables([("input", table, ["<pad>", "\u2581cat", "dog", "zebra"])], str(tmp_path / "w.vec"),
                               freeze=True)
    assert report["tables"]["input"] == {"rows": 4, "found": 2}
    before = table.weight.detach().clone()
    optimizer = torch.optim.SGD(table.parameters(), lr=1.0)
    table(torch.tensor([1, 2, 3])).sum().backward()
    optimizer.step()
    after = table.weight.detach()
    assert torch.equal(after[1:3], before[1:3])  # loaded: fixed
    assert not torch.equal(after[3], before[3])  # not in the file: learns
    assert torch.equal(after[1], torch.from_numpy(word_vectors()["cat"]))
