"""Messages say what is true (issue: "At home for its users"): each case once printed something else."""

from __future__ import annotations

import json

import pytest
from conftest import invoke


def test_a_file_of_blank_lines_has_no_text_rather_than_a_vocabulary_problem(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n  \n\t\n")
    for args in (("tokenize", "train", blank, "--name", "t"), ("train", "lm", blank, "--name", "m")):
        r = invoke(*args)
        assert r.exit_code == 1 and "no text to train on (4 blank lines)" in r.stderr, r.stderr
        assert "vocabulary" not in r.stderr


def test_a_binary_file_is_called_one(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe\x00\n\x00\x01")
    r = invoke("tokenize", "train", binary, "--name", "t")
    assert r.exit_code == 1 and "model.bin:1: this looks like a binary file" in r.stderr, r.stderr
    # text with one bad byte is still the invalid-UTF-8 message, with its way out
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9\n")
    r = invoke("tokenize", "train", latin1, "--name", "t")
    assert "invalid UTF-8 (byte 0xe9 at column 4)" in r.stderr and "--on-bad-utf8 replace" in r.stderr


def test_bleu_references_can_come_from_stdin(tmp_path):
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("the cat sat on the mat\n")
    r = invoke("evaluate", "bleu", hyp, "--ref", "-", "--json", input="the cat sat on the mat\n")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["bleu"]["score"] == pytest.approx(100.0)
    r = invoke("evaluate", "bleu", "--ref", "-", input="x\n")  # both would be stdin
    assert r.exit_code == 2 and "only one input can be stdin" in r.stderr


def test_counts_below_one_are_refused_alike(tmp_path):
    for args in (("translate", "-m", "m", "--nbest", "0"), ("translate", "-m", "m", "--beam", "0"),
                 ("generate", "-m", "m", "--beam", "0"), ("translate", "-m", "m", "--batch-size", "0"),
                 ("classify", "-m", "m", "-k", "0")):
        r = invoke(*args, input="x\n")
        assert r.exit_code == 2 and "rnntool: error:" in r.stderr, (args, r.stderr)
    r = invoke("translate", "-m", "m", "--greedy", "--beam", "5", input="x\n")
    assert r.exit_code == 2 and "--greedy and --beam exclude each other" in r.stderr
