"""Tagger data readers on awkward files: CoNLL, CoNLL-U, plain lines, detection, limits, streaming."""

from __future__ import annotations

import io
import os
import sys
import threading

import pytest

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.tagger.data import (
    Sentence,
    check_known_tags,
    detect_format,
    read_sentences,
    read_tagged,
)

UD = (
    "# newdoc id = weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713\n"
    "# sent_id = weblog-1\n"
    "# text = Don't stop.\n"
    "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tDo\tdo\tAUX\tVBP\tMood=Ind\t3\taux\t_\t_\n"
    "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
    "3\tstop\tstop\tVERB\tVB\tVerbForm=Inf\t0\troot\t_\tSpaceAfter=No\n"
    "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t0:root\t_\n"
    "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n"
    "\n"
    "# sent_id = weblog-2\n"
    "1\tOK\tok\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    "\n"
)

WNUT = (
    "@paulwalk\tO\n"
    "It\tO\n"
    "'s\tO\n"
    "the\tO\n"
    "view\tO\n"
    "from\tO\n"
    "where\tO\n"
    "I\tO\n"
    "'m\tO\n"
    "living\tO\n"
    "for\tO\n"
    "two\tO\n"
    "weeks\tO\n"
    ".\tO\n"
    "Empire\tB-location\n"
    "State\tI-location\n"
    "Building\tI-location\n"
    "=\tO\n"
    "ESB\tB-location\n"
    "\n"
    "From\tO\n"
    "Green\tB-location\n"
)


def write(tmp_path, name, text):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8", newline="")
    return p


def tokens(sentences):
    return [s.tokens for s in sentences]


# -- CoNLL-U -------------------------------------------------------------------------------------
def test_conllu_words_only_comments_kept_in_rows(tmp_path):
    p = write(tmp_path, "ud.txt", UD)
    a, b = read_tagged(p)
    assert a.format == "conllu"
    assert a.tokens == ("Do", "n't", "stop", ".")  # not "Don't" (1-2), not "go" (3.1)
    assert a.tags == ("AUX", "PART", "VERB", "PUNCT")
    assert a.line == 5  # the first word, after 3 comments and the multiword line
    assert a.rows == tuple(UD.split("\n")[:9])
    assert [a.rows[r].split("\t")[0] for r in a.word_rows] == ["1", "2", "3", "4"]
    assert [a.token_line(i) for i in range(4)] == [5, 6, 7, 9]
    assert b.tokens == ("OK",) and b.line == 12 and b.rows[0] == "# sent_id = weblog-2"


@pytest.mark.parametrize("column, tags", [
    ("xpos", ("VBP", "RB", "VB", ".")),
    ("deprel", ("aux", "advmod", "root", "punct")),
    ("feats", ("Mood=Ind", "_", "VerbForm=Inf", "_")),  # '_' is a value for feats
    ("5", ("VBP", "RB", "VB", ".")),  # column numbers count from 1: 5 is XPOS
    (8, ("aux", "advmod", "root", "punct")),
])
def test_conllu_tag_columns(tmp_path, column, tags):
    p = write(tmp_path, "x.conllu", UD)
    assert read_tagged(p, tag_column=column)[0].tags == tags


def test_conllu_underscore_upos_is_an_error_with_file_line(tmp_path):
    bad = UD.replace("2\tn't\tnot\tPART", "2\tn't\tnot\t_")
    p = write(tmp_path, "bad.conllu", bad)
    with pytest.raises(BadInput, match=r"bad\.conllu:6: UPOS is '_' \(no tag\) for 'n't'"):
        read_tagged(p)


def test_conllu_untagged_sentence_is_prediction_input_but_not_training_data(tmp_path):
    text = "1\tHello\t_\t_\t_\t_\t_\t_\t_\t_\n2\tthere\t_\t_\t_\t_\t_\t_\t_\t_\n"
    p = write(tmp_path, "pred.conllu", text)
    (s,) = read_sentences(p)
    assert s.tokens == ("Hello", "there") and s.tags is None
    with pytest.raises(BadInput, match=r"pred\.conllu:1: no UPOS tag"):
        read_tagged(p)


def test_conllu_short_row_and_bad_id(tmp_path):
    p = write(tmp_path, "a.conllu", "1\tHi\thi\tINTJ\n")
    with pytest.raises(BadInput, match=r"a\.conllu:1: 4 tab-separated columns; CoNLL-U lines have 10"):
        read_tagged(p)
    p = write(tmp_path, "b.conllu", "x\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n")
    with pytest.raises(BadInput, match=r"b\.conllu:1: ID 'x'"):
        read_tagged(p)


# -- CoNLL ---------------------------------------------------------------------------------------
CONLL = (
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP B-ORG\n"
    "rejects VBZ B-VP O\n"
    "German JJ B-NP B-MISC\n"
    "   \n"          # whitespace-only: a separator
    "\t\n"
    "\n"
    "Peter NNP B-NP B-PER\n"
    "Blackburn NNP I-NP I-PER\n"
    "\n\n\n"
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "BRUSSELS NNP B-NP B-LOC"   # last sentence, no final newline
)


def test_conll_docstart_blank_runs_and_no_final_blank(tmp_path):
    p = write(tmp_path, "eng.train", CONLL)
    ss = read_tagged(p)
    assert tokens(ss) == [("EU", "rejects", "German"), ("Peter", "Blackburn"), ("BRUSSELS",)]
    assert [s.tags for s in ss] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER"), ("B-LOC",)]
    assert [s.line for s in ss] == [3, 9, 16]
    assert all(s.format == "conll" for s in ss)


def test_conll_tag_column_counts_from_one(tmp_path):
    p = write(tmp_path, "eng.train", CONLL)
    assert read_tagged(p, tag_column=2)[0].tags == ("NNP", "VBZ", "JJ")
    assert read_tagged(p, tag_column="3")[0].tags == ("B-NP", "B-VP", "B-NP")
    with pytest.raises(UsageError):
        read_sentences(p, format="conll", tag_column=1)
    with pytest.raises(UsageError):
        read_sentences(p, format="conll", tag_column="upos")


def test_conll_tabs_vs_spaces(tmp_path):
    # a tab line splits on tabs only (a token may hold a space); a line without one on whitespace
    p = write(tmp_path, "mixed.conll", "New York\tB-LOC\nis  O\n\n")
    (s,) = read_tagged(p)
    assert s.tokens == ("New York", "is") and s.tags == ("B-LOC", "O")


def test_conll_short_row_error_names_file_line(tmp_path):
    p = write(tmp_path, "short.conll", "EU\tB-ORG\nrejects\tO\n\nGerman\n")
    with pytest.raises(BadInput, match=r"short\.conll:4: 1 column, the tag is column 2; "):
        read_tagged(p)
    p = write(tmp_path, "short2.conll", "EU\tB-ORG\tx\n")
    with pytest.raises(BadInput, match=r"short2\.conll:1: 3 columns, the tag is column 4"):
        read_tagged(p, tag_column=4)
    p = write(tmp_path, "wide.conll", "EU\tB-ORG\nrejects\tVBZ\tO\n")
    with pytest.raises(BadInput, match=r"wide\.conll:2: 3 columns, but line 1 has 2"):
        read_tagged(p)


def test_conll_single_column_is_untagged_prediction_input(tmp_path):
    p = write(tmp_path, "pred.conll", "EU\nrejects\n\nPeter\n")
    ss = list(read_sentences(p))
    assert tokens(ss) == [("EU", "rejects"), ("Peter",)] and all(s.tags is None for s in ss)
    with pytest.raises(BadInput, match=r"pred\.conll:1: one column \(no tag\)"):
        read_tagged(p)


def test_rows_kept_verbatim(tmp_path):
    text = "EU\tB-ORG  \nrejects   O\n\n"
    p = write(tmp_path, "v.conll", text)
    (s,) = read_sentences(p)
    assert s.rows == ("EU\tB-ORG  ", "rejects   O")
    assert s.word_rows == (0, 1)
    echoed = [row + "\t" + tag for row, tag in zip(s.rows, ["X", "Y"])]
    assert echoed == ["EU\tB-ORG  \tX", "rejects   O\tY"]


# -- lines ---------------------------------------------------------------------------------------
def test_lines_format_blank_line_is_an_empty_sentence(tmp_path):
    p = write(tmp_path, "in.txt", "Hello  world !\n\nEU rejects German call\n")
    ss = list(read_sentences(p))
    assert tokens(ss) == [("Hello", "world", "!"), (), ("EU", "rejects", "German", "call")]
    assert [s.line for s in ss] == [1, 2, 3] and all(s.tags is None and s.format == "lines" for s in ss)
    with pytest.raises(BadInput, match=r"in\.txt:1: no tags \(read as plain lines"):
        read_tagged(p)


def test_empty_input(tmp_path):
    p = write(tmp_path, "empty.txt", "")
    assert list(read_sentences(p)) == []
    with pytest.raises(BadInput, match=r"empty\.txt: no sentences"):
        read_tagged(p)
    p = write(tmp_path, "blank.conll", "\n  \n")
    with pytest.raises(BadInput, match=r"blank\.conll: no sentences"):
        read_tagged(p)


def test_invalid_utf8_message_comes_from_textio(tmp_path):
    p = write(tmp_path, "bad.conll", b"EU\tB-ORG\nre\xffjects\tO\n")
    with pytest.raises(BadInput, match=r"bad\.conll:2: invalid UTF-8"):
        read_tagged(p)
    assert read_tagged(p, on_bad_utf8="replace")[0].tokens == ("EU", "re\ufffdjects")


# -- detection -----------------------------------------------------------------------------------
def test_detection_of_each_format(tmp_path):
    assert detect_format(WNUT.split("\n")[:25], "wnut17train.conll") == "conll"
    assert detect_format(WNUT.split("\n")[:25], None) == "conll"  # by content: a tab
    assert detect_format(UD.split("\n"), None) == "conllu"  # '# newdoc id', '# sent_id' comments first
    assert detect_format(["hello world", "EU rejects German call"], "-") == "lines"
    assert detect_format(["hello world", "good bye"], None) == "lines"  # no blank line: not CoNLL
    assert detect_format(["EU NNP B-ORG", "rejects VBZ O", ""], None) == "conll"
    assert detect_format(["-DOCSTART- -X- O"], None) == "conll"
    assert detect_format(["# just a hash tag line", "plain text"], None) == "lines"
    assert detect_format([], None) == "lines"

    wnut = write(tmp_path, "wnut17train.txt", WNUT)
    ss = read_tagged(wnut)
    assert ss[0].tokens[0] == "@paulwalk" and ss[0].tags[-1] == "B-location" and len(ss[0].tokens) == 19
    assert ss[1].tokens == ("From", "Green")
    ud = write(tmp_path, "en_ewt-ud-train.txt", UD)
    assert read_tagged(ud)[0].format == "conllu"
    assert read_tagged(write(tmp_path, "eng.testa", CONLL))[0].format == "conll"
    assert next(iter(read_sentences(write(tmp_path, "p.txt", "a b\nc d e\n")))).format == "lines"


def test_bad_options():
    with pytest.raises(UsageError):
        read_sentences("x", format="tsv")
    with pytest.raises(UsageError):
        read_sentences("x", max_len=0)
    with pytest.raises(UsageError):
        read_sentences("x", on_long="truncate")
    with pytest.raises(UsageError):
        read_sentences("x", tag_column="lemma")
    with pytest.raises(UsageError):
        read_sentences("x", format="lines", tag_column=2)


# -- max_len -------------------------------------------------------------------------------------
def test_max_len_error(tmp_path):
    p = write(tmp_path, "long.conll", "a\tX\n\nb\tX\nc\tY\nd\tZ\n")
    with pytest.raises(BadInput, match=r"long\.conll:3: sentence of 3 tokens, over --max-len 2; "):
        read_tagged(p, max_len=2)


def test_max_len_split_conll_and_lines(tmp_path):
    p = write(tmp_path, "long.conll", "a\tX\n\nb\tX\nc\tY\nd\tZ\n")
    ss = read_tagged(p, max_len=2, on_long="split")
    assert tokens(ss) == [("a",), ("b", "c"), ("d",)]
    assert [s.tags for s in ss] == [("X",), ("X", "Y"), ("Z",)]
    assert [s.part for s in ss] == [0, 0, 1] and [s.line for s in ss] == [1, 3, 5]
    assert [s.rows for s in ss] == [("a\tX",), ("b\tX", "c\tY"), ("d\tZ",)]
    p = write(tmp_path, "long.txt", "1 2 3 4 5\n")
    assert tokens(read_sentences(p, format="lines", max_len=2, on_long="split")) == [("1", "2"), ("3", "4"), ("5",)]


def test_max_len_split_conllu_keeps_every_row_once(tmp_path):
    p = write(tmp_path, "x.conllu", UD)
    parts = [s for s in read_tagged(p, max_len=2, on_long="split") if s.line < 12]
    assert tokens(parts) == [("Do", "n't"), ("stop", ".")]
    assert sum((s.rows for s in parts), ()) == tuple(UD.split("\n")[:9])
    assert [s.token_line(i) for s in parts for i in range(2)] == [5, 6, 7, 9]
    assert parts[1].rows[parts[1].word_rows[0]].startswith("3\tstop")


# -- known tags ----------------------------------------------------------------------------------
def test_check_known_tags_names_the_token_line(tmp_path):
    p = write(tmp_path, "dev.conll", "EU\tB-ORG\n\nPeter\tB-PER\nBlackburn\tI-PER\n")
    ss = read_tagged(p)
    check_known_tags(ss, ["B-ORG", "B-PER", "I-PER", "O"], "dev.conll")
    with pytest.raises(BadInput, match=r"dev\.conll:4: tag 'I-PER' was not seen in training \(known: B-ORG, B-PER\)"):
        check_known_tags(ss, ["B-ORG", "B-PER"], "dev.conll")
    check_known_tags([Sentence(("a",), None, 1)], ["O"], "x")  # untagged: nothing to check


# -- streaming -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, first, second", [
    ("auto", b"EU\tB-ORG\nrejects\tO\n\n", b"Peter\tB-PER\n\n"),
    ("conllu", b"# sent_id = 1\n1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n\n",
     b"1\tOK\tok\tINTJ\t_\t_\t0\troot\t_\t_\n\n"),
    ("lines", b"EU rejects German call\n", b"Peter Blackburn\n"),
])
def test_stdin_pipe_streams_each_sentence(monkeypatch, fmt, first, second):
    r, w = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(r, "rb")))
    got_first = threading.Event()
    wrote_more = threading.Event()

    def writer():
        os.write(w, first)
        got_first.wait(timeout=5)  # a reader that waits for the end of input gets it after 5 s
        wrote_more.set()
        os.write(w, second)
        os.close(w)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        gen = read_sentences("-", format=fmt)
        s1 = next(gen)
        streamed = not wrote_more.is_set()
        got_first.set()
        rest = list(gen)
    finally:
        got_first.set()
        t.join(timeout=10)
    assert streamed, "the first sentence came only after later input was written"
    assert len(s1.tokens) >= 1 and len(rest) == 1
