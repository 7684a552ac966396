"""`rnntool tokenize train|encode|decode` through main(): outputs, files, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke, run_cli

AWKWARD = "a b\n\n  two  spaces\ttab \nünïcödé 日本 🙂\n \n"


@pytest.fixture
def text(tmp_path) -> Path:
    lines = ["the cat sat on the mat", "a dog barked at the cat", "ünïcödé", ""] * 30
    p = tmp_path / "train.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def tok(text) -> str:
    """A published tokenizer's name."""
    r = invoke("tokenize", "train", text, "--name", "tok", "--vocab-size", "290", "-q")
    assert r.exit_code == 0, r.output
    return "tok"


def test_train_publishes_versions_and_prints_them(text, registry):
    r = invoke("tokenize", "train", text, "--name", "spm", "--vocab-size", "290")
    assert r.exit_code == 0, r.output
    assert "spm@1" in r.stdout and str(registry / "models" / "spm" / "1") in r.stdout
    assert "training a bpe tokenizer" in r.stderr  # logs on stderr
    r = invoke("tokenize", "train", text, "--name", "spm", "--vocab-size", "290", "--json", "-q")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    out = json.loads(r.stdout)
    assert out["ref"] == "spm@2" and out["version"] == 2 and out["kind"] == "tokenizer"
    assert out["vocab_size"] == 290
    manifest = json.loads((Path(out["path"]) / "manifest.json").read_text())
    assert manifest["kind"] == "tokenizer"
    assert manifest["files"]["tokenizer.model"]["sha256"] == out["sha256"]
    assert manifest["config"]["vocab_size"] == 290 and manifest["config"]["model_type"] == "bpe"
    assert manifest["config"]["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert manifest["data"][0]["lines"] == 120 and manifest["data"][0]["path"] == str(text.resolve())


def test_same_input_same_model(text):
    shas = []
    for _ in range(2):
        r = invoke("tokenize", "train", text, "--name", "same", "--vocab-size", "290", "--json", "-q")
        assert r.exit_code == 0, r.output
        shas.append(json.loads(r.stdout)["sha256"])
    assert shas[0] == shas[1]


def test_train_from_stdin_records_stdin(text, registry):
    r = invoke("tokenize", "train", "--name", "fromstdin", "--vocab-size", "290", "--json",
               input=text.read_bytes())
    assert r.exit_code == 0, r.output
    manifest = json.loads((Path(json.loads(r.stdout)["path"]) / "manifest.json").read_text())
    assert manifest["data"][0]["path"] == "<stdin>" and manifest["data"][0]["lines"] == 120
    assert "<stdin>" in r.stderr


def test_train_to_bundle_dir_and_model_file(text, tmp_path):
    out = tmp_path / "mytok"
    r = invoke("tokenize", "train", text, "-o", out, "--vocab-size", "290", "-q")
    assert r.exit_code == 0, r.output
    assert (out / "tokenizer.model").is_file() and (out / "manifest.json").is_file()
    assert json.loads((out / "manifest.json").read_text())["name"] == "mytok"
    r = invoke("tokenize", "train", text, "-o", tmp_path / "plain.model", "--vocab-size", "290", "--json", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["vocab_size"] == 290
    for model in (out, tmp_path / "plain.model"):
        enc = invoke("tokenize", "encode", "-m", model, input="the cat\n")
        assert enc.exit_code == 0, enc.output
        assert invoke("tokenize", "decode", "-m", model, input=enc.stdout).stdout == "the cat\n"


@pytest.mark.parametrize("fmt", ["piece", "id"])
def test_encode_decode_round_trip(tok, fmt):
    enc = invoke("tokenize", "encode", "-m", tok, "--output-format", fmt, input=AWKWARD.encode())
    assert enc.exit_code == 0, enc.output
    assert enc.stdout.count("\n") == AWKWARD.count("\n")  # one line out per line in, empty ones too
    if fmt == "id":
        assert all(t.isdigit() for t in enc.stdout.split())
    dec = invoke("tokenize", "decode", "-m", tok, "--input-format", fmt, input=enc.stdout.encode())
    assert dec.exit_code == 0, dec.output
    assert dec.stdout == AWKWARD


def test_encode_crlf_and_bom_input(tok):
    r = invoke("tokenize", "encode", "-m", tok, input=b"\xef\xbb\xbfthe cat\r\nsat\r\n")
    assert r.exit_code == 0, r.output
    back = invoke("tokenize", "decode", "-m", tok, input=r.stdout)
    assert back.stdout == "the cat\nsat\n"


def test_encode_file_argument_and_output_file(tok, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("the cat\nthe dog\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    r = invoke("tokenize", "encode", "-m", tok, src, "-o", out)
    assert r.exit_code == 0 and r.stdout == "", r.output
    assert len(out.read_text().splitlines()) == 2
    assert invoke("tokenize", "decode", "-m", f"{tok}@1", out).stdout == "the cat\nthe dog\n"


def test_invalid_utf8_is_one_line_error_with_file_and_line(tok, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok line\nbroken \xff\xfe\n")
    r = invoke("tokenize", "encode", "-m", tok, bad)
    assert r.exit_code == 1
    assert f"{bad}:2: invalid UTF-8" in r.stderr and "--on-bad-utf8 replace" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = invoke("tokenize", "encode", "-m", tok, bad, "--on-bad-utf8", "replace")
    assert r.exit_code == 0, r.output
    assert invoke("tokenize", "decode", "-m", tok, input=r.stdout).stdout == "ok line\nbroken \ufffd\ufffd\n"
    r = invoke("tokenize", "train", bad, "--name", "x", "--vocab-size", "290")
    assert r.exit_code == 1 and f"{bad}:2: invalid UTF-8" in r.stderr


def test_empty_input_is_a_clear_error(tok):
    for args in (("tokenize", "encode", "-m", tok), ("tokenize", "train", "--name", "e", "--vocab-size", "290")):
        r = invoke(*args, input=b"")
        assert r.exit_code == 1, r.output
        assert "input is empty" in r.stderr and "Traceback" not in r.output
    r = invoke("tokenize", "train", "--name", "e", "--vocab-size", "290", input=b"\n\n")
    assert r.exit_code == 1 and "no text to train on" in r.stderr


def test_unknown_model_suggests_a_name(tok):
    r = invoke("tokenize", "encode", "-m", "tokk", input="x\n")
    assert r.exit_code == 1
    assert "did you mean 'tok'" in r.stderr and "Traceback" not in r.output


def test_vocab_size_errors_name_a_size_that_works(text):
    r = invoke("tokenize", "train", text, "--name", "big", "--vocab-size", "9000")
    assert r.exit_code == 1 and "largest that works is" in r.stderr, r.output
    r = invoke("tokenize", "train", text, "--name", "small", "--vocab-size", "50")
    assert r.exit_code == 1 and "smallest that works is" in r.stderr, r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    "args,code,msg",
    [
        (("--vocab-size", "290"), 2, "--name NAME"),
        (("--name", "Bad Name", "--vocab-size", "290"), 2, "invalid model name"),
        (("--name", "x", "--model-type", "wordpiece"), 2, "wordpiece"),
        (("--name", "x", "--model-type", "word", "--byte-fallback"), 2, "byte fallback"),
        (("--name", "x", "--normalization", "nfd"), 2, "nfd"),
        (("--name", "x", "--on-bad-utf8", "ignore"), 2, "--on-bad-utf8"),
    ],
)
def test_train_usage_errors(text, args, code, msg):
    r = invoke("tokenize", "train", text, *args)
    assert r.exit_code == code, r.output
    assert msg in r.stderr and "Traceback" not in r.output


def test_missing_training_file(tmp_path):
    r = invoke("tokenize", "train", tmp_path / "nope.txt", "--name", "x")
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_decode_bad_ids_names_line(tok):
    r = invoke("tokenize", "decode", "-m", tok, "--input-format", "id", input="5 6\n7 x\n")
    assert r.exit_code == 1 and "<stdin>:2: 'x' is not a token id" in r.stderr
    r = invoke("tokenize", "decode", "-m", tok, "--input-format", "id", input="5 99999\n")
    assert r.exit_code == 1 and "<stdin>:1: token id 99999 is out of range" in r.stderr


def test_translation_bundle_needs_side(text, tmp_path):
    from rnntool.registry.store import Registry
    from rnntool.tokenizers.training import train_tokenizer

    reg = Registry.open()
    with reg.staging() as tmp:
        train_tokenizer([text], tmp / "tokenizer.src.model", vocab_size=290)
        train_tokenizer([text], tmp / "tokenizer.tgt.model", vocab_size=300)
        reg.publish(tmp, name="mt", kind="translation")
    r = invoke("tokenize", "encode", "-m", "mt", input="the cat\n")
    assert r.exit_code == 2 and "--side src or --side tgt" in r.stderr
    src = invoke("tokenize", "encode", "-m", "mt", "--side", "src", "--output-format", "id", input="the cat\n")
    tgt = invoke("tokenize", "encode", "-m", "mt", "--side", "tgt", "--output-format", "id", input="the cat\n")
    assert src.exit_code == 0 and tgt.exit_code == 0, src.output + tgt.output
    back = invoke("tokenize", "decode", "-m", "mt", "--side", "tgt", "--input-format", "id", input=tgt.stdout)
    assert back.stdout == "the cat\n"


def test_corrupt_tokenizer_file_is_reported(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    r = invoke("tokenize", "encode", "-m", bad, input="x\n")
    assert r.exit_code == 1 and "not a SentencePiece model" in r.stderr


def test_help_for_every_tokenize_command():
    for cmd in ("train", "encode", "decode"):
        r = invoke("tokenize", cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.stdout, r.output


def test_missing_model_file_is_reported(tmp_path):
    r = invoke("tokenize", "encode", "-m", tmp_path / "nope.model", input="x\n")
    assert r.exit_code == 1 and "nope.model: no such tokenizer file" in r.stderr


def test_train_on_several_files_records_each(text, tmp_path):
    second = tmp_path / "second.txt"
    second.write_text("more text here\n", encoding="utf-8")
    r = invoke("tokenize", "train", text, second, "--name", "two", "--vocab-size", "290", "--json", "-q")
    assert r.exit_code == 0, r.output
    manifest = json.loads((Path(json.loads(r.stdout)["path"]) / "manifest.json").read_text())
    assert [d["lines"] for d in manifest["data"]] == [120, 1]
    assert manifest["metrics"]["text_lines"] == 91


def test_nbest_sampling_and_vocabulary_as_sentencepiece_gives_them(text, tok, registry):
    """spm_encode's --nbest_size and sampling, spm_export_vocab's layout, checked against sentencepiece."""
    import sentencepiece as spm

    from rnntool.registry.store import Registry

    r = invoke("tokenize", "train", text, "--name", "uni", "--vocab-size", "25", "--model-type", "unigram",
               "--no-byte-fallback", "-q")
    assert r.exit_code == 0, r.stderr
    sp = spm.SentencePieceProcessor(model_file=str(Registry.open().load("uni").file("tokenizer.model")))
    lines = ["the cat sat on the mat", "a dog barked"]
    r = invoke("tokenize", "encode", "-m", "uni", "-n", "3", input="\n".join(lines) + "\n")
    assert r.exit_code == 0, r.stderr
    rows = [row.split(" ||| ") for row in r.stdout.splitlines()]
    for i, line in enumerate(lines):
        mine = [row for row in rows if row[0] == str(i)]
        assert [row[1].split() for row in mine] == sp.nbest_encode(line, nbest_size=3, out_type=str)
        scores = [float(row[2]) for row in mine]
        assert scores == sorted(scores, reverse=True) and mine[0][1].split() == sp.encode(line, out_type=str)
    ids = invoke("tokenize", "encode", "-m", "uni", "-n", "2", "--output-format", "id", input="a dog\n").stdout
    assert all(t.isdigit() for row in ids.splitlines() for t in row.split(" ||| ")[1].split())
    bpe = invoke("tokenize", "encode", "-m", tok, "-n", "2", input="a dog\n")
    assert bpe.exit_code == 2 and "unigram" in bpe.stderr
    # sampling: seeded, varied, and always the same text back
    many = "\n".join(["the cat sat on the mat"] * 20) + "\n"
    a = invoke("tokenize", "encode", "-m", "uni", "--sample", "--alpha", "0.1", "--seed", "5", input=many).stdout
    b = invoke("tokenize", "encode", "-m", "uni", "--sample", "--alpha", "0.1", "--seed", "5", input=many).stdout
    assert a == b and len(set(a.splitlines())) > 1
    other_process = run_cli("tokenize", "encode", "-m", "uni", "--sample", "--alpha", "0.1", "--seed", "5",
                            input=many)
    assert other_process.stdout == a  # sentencepiece's own seeded sampling differs from process to process
    assert {sp.decode_pieces(row.split()) for row in a.splitlines()} == {"the cat sat on the mat"}
    assert invoke("tokenize", "encode", "-m", "uni", "--seed", "5", input="x\n").exit_code == 2
    # the vocabulary, in id order, with sentencepiece's scores
    vocab = [row.split("\t") for row in invoke("tokenize", "vocab", "-m", "uni").stdout.splitlines()]
    assert [p for p, _ in vocab] == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert [float(s) for _, s in vocab] == pytest.approx([sp.get_score(i) for i in range(sp.get_piece_size())],
                                                         rel=1e-5)
