"""Word-vectors files (rnntool/vectors/io.py): word2vec text out and in gives the same float32 table, GloVe
files are recognised by their missing header, gzip both ways, and every way a file can fail to add up is
one BadInput naming the file and the line."""

from __future__ import annotations

import gzip
import io
import sys

import numpy as np
import pytest

from conftest import fails, invoke, ok
from rnntool.errors import BadInput, UsageError
from rnntool.vectors.io import WordVectors, read_vectors, write_vectors

WORDS = ["the", "▁cat", "<s>", "é", "naïve", "日本", "a\u00a0b", "</s>"]


def table(rows: int = len(WORDS), dim: int = 5, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((rows, dim)).astype(np.float32) * 10.0 ** rng.integers(-8, 8, (rows, dim))
    return WordVectors([*WORDS, *(f"w{i}" for i in range(rows - len(WORDS)))][:rows], matrix.astype(np.float32))


def edge_table() -> WordVectors:
    """Values that print long or oddly: extremes, subnormals, negative zero, 1/3."""
    f32 = np.finfo(np.float32)
    values = [[f32.max, -f32.max, f32.tiny, f32.smallest_subnormal, -0.0],
              [1 / 3, -2 / 3, 0.1, 1e-40, 123456789.0],
              [0.0, 1.0, -1.0, 3.4e38, 7e-45]]
    return WordVectors(["max", "third", "zero"], np.array(values, dtype=np.float32))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a.view(np.uint32),
                                                                                    b.view(np.uint32))


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["words.vec", "words.vec.gz"])
@pytest.mark.parametrize("vectors", [table(), table(rows=20_000, dim=3, seed=1), edge_table()],
                         ids=["words", "many-rows", "edge-values"])
def test_write_then_read_gives_the_same_words_and_bits(tmp_path, name, vectors):
    path = tmp_path / name
    write_vectors(vectors, path)
    back = read_vectors(path)
    assert back.words == vectors.words
    assert same_bits(back.matrix, vectors.matrix)
    assert back.dim == vectors.dim and len(back) == len(vectors)
    assert path.read_bytes().startswith(b"\x1f\x8b") == name.endswith(".gz")


def test_the_file_is_word2vec_text_with_its_header(tmp_path):
    vectors = WordVectors(["a", "▁b"], np.array([[0.5, -1.0], [0.1, 2.0]], dtype=np.float32))
    write_vectors(vectors, tmp_path / "v.vec")
    assert (tmp_path / "v.vec").read_text(encoding="utf-8") == "2 2\na 0.5 -1\n▁b 0.100000001 2\n"
    write_vectors(vectors, tmp_path / "v.vec.gz")  # the same bytes each time: no time stamp inside
    first = (tmp_path / "v.vec.gz").read_bytes()
    write_vectors(vectors, tmp_path / "v.vec.gz")
    assert (tmp_path / "v.vec.gz").read_bytes() == first
    assert gzip.decompress(first).decode("utf-8") == "2 2\na 0.5 -1\n▁b 0.100000001 2\n"


def test_write_to_stdout(capsys):
    write_vectors(WordVectors(["x"], np.array([[1.5, 2]], dtype=np.float32)), "-")
    assert capsys.readouterr().out == "1 2\nx 1.5 2\n"
    write_vectors(WordVectors(["x"], np.array([[1.5, 2]], dtype=np.float32)), None)
    assert capsys.readouterr().out == "1 2\nx 1.5 2\n"


def test_glove_text_without_a_header_is_recognised(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 -0.3\n, 1 2 3\n2 4 5 6\n", encoding="utf-8")
    vectors = read_vectors(path)
    assert vectors.words == ["the", ",", "2"] and vectors.dim == 3
    assert same_bits(vectors.matrix, np.array([[0.1, 0.2, -0.3], [1, 2, 3], [4, 5, 6]], dtype=np.float32))


def test_gzip_is_recognised_by_its_bytes_whatever_the_name(tmp_path):
    path = tmp_path / "glove.txt"  # gzipped, but not named so
    path.write_bytes(gzip.compress("a 1 2\nb 3 4\n".encode()))
    assert read_vectors(path).words == ["a", "b"]


def test_stdin_plain_and_gzipped(monkeypatch):
    for data in (b"2 1\nx 1\ny 2\n", gzip.compress(b"2 1\nx 1\ny 2\n")):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        vectors = read_vectors("-")
        assert vectors.words == ["x", "y"] and vectors.matrix.tolist() == [[1.0], [2.0]]


def test_what_writers_of_this_format_leave_is_read(tmp_path):
    """fastText's trailing space, CRLF line ends, a BOM, blank lines at the end."""
    path = tmp_path / "v.vec"
    path.write_bytes("\ufeff2 3\r\nthe 1 2 3 \r\nof  4\t5 6\r\n\n\n".encode("utf-8"))
    vectors = read_vectors(path)
    assert vectors.words == ["the", "of"] and vectors.matrix.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_normalized_rows_and_index():
    vectors = WordVectors(["a", "b", "a"], np.array([[3, 4], [0, 0], [1, 0]], dtype=np.float32))
    unit = vectors.normalized()
    assert unit.matrix.dtype == np.float32 and unit.words == vectors.words
    assert np.allclose(unit.matrix, [[0.6, 0.8], [0, 0], [1, 0]])  # a zero row stays zero
    assert vectors.index == {"a": 0, "b": 1}  # the first occurrence wins
    assert vectors.matrix.tolist() == [[3, 4], [0, 0], [1, 0]]  # untouched


# -- files that do not add up ------------------------------------------------------------------------
BAD_FILES = {
    "header-says-more": ("3 2\na 1 2\nb 3 4\n", ":1:", "header says 3 vectors but the file holds 2"),
    "header-says-fewer": ("1 2\na 1 2\nb 3 4\n", ":3:", "more vectors than the header's count of 1"),
    "short-row": ("2 3\na 1 2 3\nb 4 5\n", ":3:", "'b' has 2 values but the header (line 1) says 3"),
    "long-row-glove": ("a 1 2\nb 3 4 5\n", ":2:", "'b' has 3 values but line 1 has 2"),
    "not-a-number": ("2 2\na 1 2\nb 3 x4\n", ":3:", "value 2 of 'b' is 'x4', not a finite number"),
    "number-then-text": ("a 1 2abc\n", ":1:", "value 2 of 'a' is '2abc'"),
    "nan": ("a 1 2\nb nan 3\n", ":2:", "value 1 of 'b' is 'nan', not a finite number"),
    "overflow": ("a 1 2\nb 1e39 3\n", ":2:", "value 1 of 'b' is '1e39'"),
    "duplicate": ("3 1\na 1\nb 2\na 3\n", ":4:", "'a' appears again (first on line 2)"),
    "empty": ("", "", "empty file"),
    "header-only": ("0 3\n", "", "no vectors in the file"),
    "blank-line-inside": ("a 1\n\nb 2\n", ":2:", "empty line among the vectors"),
    "no-values": ("a\nb 1\n", ":1:", "'a' has no values"),
    "leading-space": ("a 1\n 1\n", ":2:", "starts with a space"),
    "zero-dim-header": ("1 0\na\n", ":1:", "dimension 0"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_file_that_does_not_add_up_is_one_line_naming_file_and_line(tmp_path, case):
    content, where, what = BAD_FILES[case]
    path = tmp_path / "bad.vec"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput) as e:
        read_vectors(path)
    message = str(e.value)
    assert message.startswith(f"{path}{where}") and what in message and "\n" not in message, message


def test_a_header_that_promises_1000_rows_for_998(tmp_path):
    path = tmp_path / "cut.vec"
    path.write_text("1000 2\n" + "".join(f"w{i} {i} 1\n" for i in range(998)), encoding="utf-8")
    with pytest.raises(BadInput, match=r"cut\.vec:1: the header says 1000 vectors but the file holds 998"):
        read_vectors(path)


def test_the_first_wrong_line_is_the_one_named_however_far_into_the_file(tmp_path):
    rows = [f"w{i} {i} 1" for i in range(10_000)]
    rows[6_000] = "w6000 1 oops"
    rows[9_000] = "w1 2 3"  # a duplicate further on
    path = tmp_path / "v.vec"
    path.write_text("10000 2\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"v\.vec:6002: value 2 of 'w6000' is 'oops'"):
        read_vectors(path)
    rows[6_000] = "w6000 1"
    path.write_text("10000 2\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"v\.vec:6002: 'w6000' has 1 values but the header \(line 1\) says 2"):
        read_vectors(path)
    rows[6_000] = "w6000 1 2"
    path.write_text("10000 2\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"v\.vec:9002: 'w1' appears again \(first on line 3\)"):
        read_vectors(path)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.vec"
    path.write_bytes("a 1\ncaf\xe9 2\n".encode("latin-1"))
    with pytest.raises(BadInput, match=r"latin1\.vec:2: invalid UTF-8 \(byte 0xe9 at column 4\)"):
        read_vectors(path)


def test_word2vec_binary_gets_a_hint(tmp_path):
    path = tmp_path / "GoogleNews.bin"
    path.write_bytes(b"2 2\na " + np.array([1.5, -2], dtype=np.float32).tobytes() + b"\xff\xfe\n")
    with pytest.raises(BadInput, match=r"GoogleNews\.bin:2: .*word2vec's binary format"):
        read_vectors(path)


def test_cut_gzip_and_missing_files(tmp_path):
    path = tmp_path / "cut.vec.gz"
    path.write_bytes(gzip.compress(b"".join(b"w%d 1 2\n" % i for i in range(5000)))[:200])
    with pytest.raises(BadInput, match=r"cut\.vec\.gz: the gzip data is corrupt or cut short"):
        read_vectors(path)
    with pytest.raises(BadInput, match=r"nope\.vec: no such file"):
        read_vectors(tmp_path / "nope.vec")
    with pytest.raises(BadInput, match=r"is a directory"):
        read_vectors(tmp_path)


def test_the_cli_says_it_in_one_line_and_exits_1(tmp_path):
    path = tmp_path / "bad.vec"
    path.write_text("2 3\na 1 2 3\nb 4 5\n", encoding="utf-8")
    fails(invoke("models", "vectors", path), 1, f"{path}:3:", "'b' has 2 values")


def test_the_cli_rewrites_a_glove_file_as_word2vec_text(tmp_path):
    path = tmp_path / "glove.txt.gz"
    path.write_bytes(gzip.compress("the 0.5 1\nof 2 -3\n".encode()))
    r = ok(invoke("models", "vectors", path))
    assert r.stdout == "2 2\nthe 0.5 1\nof 2 -3\n"
    assert "wrote 2 vectors of dimension 2 to stdout" in r.stderr
    r = ok(invoke("models", "vectors", "-", "-o", tmp_path / "out.vec.gz", "-q", input=gzip.compress(b"x 1\n")))
    assert r.stderr == "" and gzip.decompress((tmp_path / "out.vec.gz").read_bytes()) == b"1 1\nx 1\n"
    fails(invoke("models", "vectors", path, "--side", "tgt"), 2, "is a vectors file")


# -- what cannot be written ----------------------------------------------------------------------
@pytest.mark.parametrize("word", ["a b", "a\tb", "a\nb", "", "a\u2028b"])
def test_words_that_would_break_the_format_are_refused_and_nothing_is_written(tmp_path, word):
    path = tmp_path / "v.vec"
    path.write_text("1 1\nold 1\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"word 1 \("):
        write_vectors(WordVectors(["ok", word], np.zeros((2, 2), dtype=np.float32)), path)
    assert path.read_text(encoding="utf-8") == "1 1\nold 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.vec"]  # no temp file left behind


def test_duplicates_and_non_finite_values_are_refused(tmp_path):
    with pytest.raises(BadInput, match=r"word 2 \('a'\) is also word 0"):
        write_vectors(WordVectors(["a", "b", "a"], np.zeros((3, 1), dtype=np.float32)), tmp_path / "v.vec")
    with pytest.raises(BadInput, match=r"'b' \(row 1\) holds a value that is not finite"):
        write_vectors(WordVectors(["a", "b"], np.array([[1.0], [np.inf]], dtype=np.float32)), tmp_path / "v.vec")
    with pytest.raises(UsageError, match="is a directory"):
        write_vectors(WordVectors(["a"], np.zeros((1, 1), dtype=np.float32)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rows_word2vec_text_cannot_hold_are_left_out_not_fatal():
    from rnntool.vectors.io import writable_rows

    vectors = WordVectors(["a", "\t", "b c", "d"], np.arange(8, dtype=np.float32).reshape(4, 2))
    kept, dropped = writable_rows(vectors)
    assert kept.words == ["a", "d"] and dropped == ["\t", "b c"]
    assert np.array_equal(kept.matrix, vectors.matrix[[0, 3]])
    assert writable_rows(kept)[0] is kept
