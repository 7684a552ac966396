"""Classifier data: fastText / tsv / csv / tab reading, detection, errors, streaming, class weights."""

from __future__ import annotations

import os
import queue
import sys
import threading
from types import SimpleNamespace

import pytest

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.classifier.data import (
    FORMATS,
    Example,
    LabelledData,
    balanced_class_weights,
    check_known_labels,
    detect_format,
    read_labelled,
    read_texts,
)


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def bad_input(fn, *args, **kw) -> str:
    with pytest.raises(BadInput) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- each format -----------------------------------------------------------------------------------
def test_fasttext_single_and_multi_label(tmp_path):
    f = write(tmp_path / "train.txt", [
        "__label__pos great movie , loved it",
        "",
        "__label__neg   __label__funny  bad  but funny\r",
        "  __label__neg __label__neg dull __label__x stays in the text  ",
    ])
    data = read_labelled(f)
    assert data.format == "fasttext" and data.source == str(f)
    assert data.examples == [
        Example("great movie , loved it", ("pos",), 1),
        Example("bad  but funny", ("neg", "funny"), 3),
        Example("dull __label__x stays in the text", ("neg",), 4),
    ]
    assert data.multi_label
    assert data.labels == ["funny", "neg", "pos"]
    assert data.label_counts() == {"funny": 1, "neg": 2, "pos": 1}
    assert list(data.label_counts()) == ["funny", "neg", "pos"]
    assert data.texts[0] == "great movie , loved it" and data.gold[1] == ("neg", "funny")
    assert len(data) == 3


def test_custom_label_prefix(tmp_path):
    f = write(tmp_path / "t.txt", ["#pos yes", "#neg no"])
    data = read_labelled(f, label_prefix="#")
    assert data.format == "fasttext" and data.gold == [("pos",), ("neg",)]


def test_fasttext_round_trip(tmp_path):
    examples = [Example("a b  c", ("pos",), 1), Example("tab\tinside", ("neg", "funny"), 2),
                Example("ünïcode ✓", ("pos",), 3)]
    f = write(tmp_path / "rt.txt", [" ".join(f"__label__{x}" for x in ex.labels) + " " + ex.text
                                    for ex in examples])
    data = read_labelled(f)
    assert data.examples == examples and not LabelledData(examples[:1], "x", "fasttext").multi_label


def test_tsv_with_header_columns_by_name(tmp_path):
    f = write(tmp_path / "sst2.tsv", ["sentence\tlabel", "it 's a charming journey \t1", "", "dull , \"flat\"\t0"])
    data = read_labelled(f)
    assert data.format == "tsv"
    assert data.examples == [Example("it 's a charming journey", ("1",), 2), Example('dull , "flat"', ("0",), 4)]
    assert not data.multi_label


def test_tsv_named_columns_case_insensitive_and_multi_label(tmp_path):
    f = write(tmp_path / "d.tsv", ["id\tBody\tTags", "1\tfirst\tfunny, pos", "2\tsecond\tneg"])
    data = read_labelled(f, text_column="body", label_column="Tags")
    assert data.format == "tsv"
    assert data.gold == [("funny", "pos"), ("neg",)] and data.texts == ["first", "second"] and data.multi_label


def test_csv_quoted_comma_newline_and_row_start_line(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text('text,label\n"good, really good",pos\n"two\nlines",neg\n\nplain,"funny,pos"\n', encoding="utf-8")
    data = read_labelled(f)
    assert data.format == "csv"
    assert data.examples == [Example("good, really good", ("pos",), 2), Example("two\nlines", ("neg",), 3),
                             Example("plain", ("funny", "pos"), 6)]


def test_csv_detected_without_suffix_and_crlf_bom(tmp_path):
    f = tmp_path / "data.txt"
    f.write_bytes(b'\xef\xbb\xbfReview,Sentiment\r\n"nice, nice",pos\r\nbad,neg\r\n')
    data = read_labelled(f)
    assert data.format == "csv" and data.gold == [("pos",), ("neg",)] and data.texts[0] == "nice, nice"


def test_tab_headerless_split_on_first_tab(tmp_path):
    f = write(tmp_path / "trec.txt", ["DESC\tHow did serfdom develop in and then leave Russia ?",
                                      "ENTY,LOC\tWhat\tfollows a tab ?"])
    data = read_labelled(f)
    assert data.format == "tab"
    assert data.examples == [Example("How did serfdom develop in and then leave Russia ?", ("DESC",), 1),
                             Example("What\tfollows a tab ?", ("ENTY", "LOC"), 2)]


# -- detection -------------------------------------------------------------------------------------
@pytest.mark.parametrize("line,path,fmt", [
    ("__label__pos hi", "x.csv", "fasttext"),
    ("  __label__a __label__b hi", None, "fasttext"),
    ("label\tsentence", "train.tsv", "tsv"),
    ("sentence\tlabel", None, "tsv"),
    ("DESC\tHow did serfdom develop in and then leave Russia ?", "train.txt", "tab"),
    ("pos\tgreat", "-", "tab"),
    ("a,b", "x.CSV", "csv"),
    ("text,label", None, "csv"),
    ('"Text", Label ', "x.txt", "csv"),
    ("hello, world,pos", None, None),
    ("just some text", "x.txt", None),
])
def test_detect_format(line, path, fmt):
    if fmt is None:
        msg = bad_input(detect_format, line, path)
        assert msg.startswith(f"{path or '<stdin>'}:1: cannot tell the format (no '__label__' prefix, "
                              "no tab-separated label); give --format fasttext|tsv|csv|tab")
    else:
        assert detect_format(line, path) == fmt


def test_undetectable_file_names_first_nonblank_line(tmp_path):
    f = write(tmp_path / "plain.txt", ["", "no labels here"])
    assert bad_input(read_labelled, f).startswith(f"{f}:2: cannot tell the format")


def test_explicit_format_overrides_detection(tmp_path):
    f = write(tmp_path / "x.csv", ["label\ttext", "pos\tgood", "neg\tbad"])
    assert detect_format("label\ttext", f) == "csv"  # the .csv suffix alone says csv ...
    data = read_labelled(f, format="tsv")  # ... but --format wins
    assert data.format == "tsv" and data.gold == [("pos",), ("neg",)]
    data = read_labelled(f, format="tab")  # a header is just another example to --format tab
    assert data.format == "tab" and data.examples[0] == Example("text", ("label",), 1)
    g = write(tmp_path / "ft.tsv", ["__label__a x\ty", "__label__b z\tw"])
    assert read_labelled(g).format == "fasttext"
    data = read_labelled(g, format="tab")
    assert data.gold == [("__label__a x",), ("__label__b z",)] and data.texts == ["y", "w"]


def test_columns_with_auto_mean_tsv_or_csv(tmp_path):
    t = write(tmp_path / "a.txt", ["x\tbody\tcat", "1\thello\tp", "2\tbye\tq"])
    data = read_labelled(t, text_column="body", label_column="cat")
    assert data.format == "tsv" and data.texts == ["hello", "bye"]
    c = write(tmp_path / "b.txt", ["x,body,cat", "1,hello,p", "2,bye,q"])
    data = read_labelled(c, label_column="cat", text_column="body")
    assert data.format == "csv" and data.gold == [("p",), ("q",)]


@pytest.mark.parametrize("fmt", ["fasttext", "tab"])
def test_columns_with_fasttext_or_tab_is_usage_error(tmp_path, fmt):
    f = write(tmp_path / "a.txt", ["__label__a x"])
    with pytest.raises(UsageError):
        read_labelled(f, format=fmt, text_column="text")
    with pytest.raises(UsageError):
        read_labelled(f, format=fmt, label_column="label")


def test_unknown_format_is_usage_error(tmp_path):
    f = write(tmp_path / "a.txt", ["__label__a x"])
    with pytest.raises(UsageError):
        read_labelled(f, format="json")
    with pytest.raises(UsageError):
        read_texts(f, format="auto")
    assert "auto" in FORMATS


# -- errors ----------------------------------------------------------------------------------------
def test_missing_named_column_names_file_and_header(tmp_path):
    f = write(tmp_path / "d.tsv", ["sentence\tlabel", "x\t1"])
    msg = bad_input(read_labelled, f, text_column="review")
    assert msg.startswith(f"{f}:1: no column 'review' in the header (it has: sentence, label)")
    g = write(tmp_path / "e.tsv", ["id\ttext", "1\tx"])
    msg = bad_input(read_labelled, g, format="tsv")
    assert msg.startswith(f"{g}:1: no label column in the header (it has: id, text)") and "--label-column" in msg


@pytest.mark.parametrize("lines,fmt,where,what", [
    (["__label__a ok", "no prefix here"], "fasttext", 2, "fastText lines start with __label__NAME"),
    (["a\tok", "", "no tab at all"], "tab", 3, "LABEL<TAB>TEXT"),
    (["a\tok", "\tempty label"], "tab", 2, "LABEL<TAB>TEXT"),
    (["a\tok", " , \ttext"], "tab", 2, "LABEL<TAB>TEXT"),
    (["text\tlabel", "ok\ta", "some text\t  "], "tsv", 3, "'label' column is empty"),
    (["text,label", '"multi\nline",a', "x,"], "csv", 4, "'label' column is empty"),
])
def test_no_label(tmp_path, lines, fmt, where, what):
    f = write(tmp_path / "d.txt", lines)
    msg = bad_input(read_labelled, f, format=fmt)
    assert msg.startswith(f"{f}:{where}: no label; ") and what in msg


@pytest.mark.parametrize("lines,fmt,where", [
    (["__label__a ok", "__label__b   "], "fasttext", 2),
    (["__label__a ok", "__label__a __label__b"], "fasttext", 2),
    (["a\tok", "b\t  "], "tab", 2),
    (["text\tlabel", "ok\ta", "  \tb"], "tsv", 3),
    (["text,label", '" ",a'], "csv", 2),
])
def test_empty_text(tmp_path, lines, fmt, where):
    f = write(tmp_path / "d.txt", lines)
    assert bad_input(read_labelled, f, format=fmt).startswith(f"{f}:{where}: empty text after the label(s); ")


def test_field_count_mismatch(tmp_path):
    f = write(tmp_path / "d.tsv", ["id\ttext\tlabel", "1\tok\ta", "", "2\tshort"])
    assert bad_input(read_labelled, f).startswith(f"{f}:4: 2 fields, the header has 3; ")
    g = tmp_path / "d.csv"
    g.write_text('text,label,id\n"a\nb",x,1\n"c, d",y\n', encoding="utf-8")
    assert bad_input(read_labelled, g).startswith(f"{g}:4: 2 fields, the header has 3; ")
    h = write(tmp_path / "e.tsv", ["text\tlabel", "a\tb\tc"])  # a stray tab: more fields than the header
    assert bad_input(read_labelled, h).startswith(f"{h}:2: 3 fields, the header has 2; ")
    ok = write(tmp_path / "f.tsv", ["text\tlabel", "a\tb\t", "c\td"])  # trailing empty fields are fine
    assert read_labelled(ok).gold == [("b",), ("d",)]


def test_unterminated_csv_quote_names_row_start(tmp_path):
    g = tmp_path / "d.csv"
    g.write_text('text,label\nok,a\n"never closed,b\nmore\n', encoding="utf-8")
    assert bad_input(read_labelled, g).startswith(f"{g}:3: cannot read this csv row")


def test_single_class(tmp_path):
    f = write(tmp_path / "d.txt", ["__label__x a", "__label__x b"])
    assert bad_input(read_labelled, f) == (f"{f}: every example has label 'x'; a classifier needs at least "
                                           "two classes")
    assert read_labelled(f, min_classes=1).labels == ["x"]  # evaluation data may hold one class


@pytest.mark.parametrize("content", ["", "\n  \n\n", "text\tlabel\n\n"])
def test_no_examples(tmp_path, content):
    f = tmp_path / "d.tsv"
    f.write_text(content, encoding="utf-8")
    assert bad_input(read_labelled, f, min_classes=1).startswith(f"{f}: no labelled examples; ")


def test_bad_utf8_from_textio(tmp_path):
    f = tmp_path / "d.txt"
    f.write_bytes(b"__label__a ok\n__label__b caf\xe9\n")
    assert bad_input(read_labelled, f).startswith(f"{f}:2: invalid UTF-8 (byte 0xe9 at column 15)")
    data = read_labelled(f, on_bad_utf8="replace")
    assert data.texts[1] == "caf\ufffd"


def test_stdin_display_name(monkeypatch):
    r, w = os.pipe()
    os.write(w, b"__label__a x\nno label\n")
    os.close(w)
    with os.fdopen(r, "rb") as stream:
        monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=stream))
        assert bad_input(read_labelled, "-").startswith("<stdin>:2: no label; ")


def test_check_known_labels(tmp_path):
    f = write(tmp_path / "eval.txt", ["__label__a x", "__label__b __label__zz y", "__label__q z"])
    data = read_labelled(f)
    check_known_labels(data, ["a", "b", "q", "zz"])
    msg = bad_input(check_known_labels, data, ["q", "b", "a"])
    assert msg.startswith(f"{f}:2: label 'zz' is not one the model was trained on (it knows: a, b, q); ")


def test_balanced_weights_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight
    import numpy as np

    y = ["a"] * 7 + ["b"] * 2 + ["c"] * 11
    counts = {"a": 7, "b": 2, "c": 11}
    labels = ["c", "a", "b"]
    expected = compute_class_weight("balanced", classes=np.array(labels), y=np.array(y))
    assert balanced_class_weights(counts, labels) == pytest.approx(expected.tolist())
    assert balanced_class_weights({"a": 5, "b": 5}, ["a", "b"]) == [1.0, 1.0]


# -- read_texts ------------------------------------------------------------------------------------
def test_read_texts_formats(tmp_path):
    f = write(tmp_path / "t.txt", ["__label__a __label__b  hello there ", "", "plain line", "__label__c"])
    assert list(read_texts(f)) == ["hello there", "", "plain line", ""]
    assert list(read_texts(f, format="fasttext")) == ["hello there", "", "plain line", ""]
    t = write(tmp_path / "t.tsv", ["id\tsentence\tlabel", "1\tone\tp", "", "2\ttwo\t"])
    assert list(read_texts(t, format="tsv")) == ["one", "", "two"]
    c = tmp_path / "t.csv"
    c.write_text('content,x\n"a, b\nc",1\nd,2\n', encoding="utf-8")
    assert list(read_texts(c, format="csv")) == ["a, b\nc", "d"]
    assert list(read_texts(c, format="csv", text_column="x")) == ["1", "2"]
    b = write(tmp_path / "t.tab", ["DESC\tHow ?", "", "LOC\tWhere\tis it ?"])
    assert list(read_texts(b, format="tab")) == ["How ?", "", "Where\tis it ?"]
    bad = write(tmp_path / "u.tab", ["DESC\tHow ?", "no tab"])
    assert bad_input(list, read_texts(bad, format="tab")).startswith(f"{bad}:2: no tab; ")
    with pytest.raises(UsageError):
        read_texts(f, text_column="text")


@pytest.mark.parametrize("fmt,lines,expected", [
    ("lines", [b"__label__x first text\n", b"second\n"], ["first text", "second"]),
    ("tab", [b"x\tfirst text\n", b"y\tsecond\n"], ["first text", "second"]),
    ("tsv", [b"text\tlabel\nfirst text\tx\n", b"second\ty\n"], ["first text", "second"]),
    ("csv", [b'text,label\n"first, text",x\n', b"second,y\n"], ["first, text", "second"]),
])
def test_read_texts_streams_from_a_pipe(monkeypatch, fmt, lines, expected):
    """The first text comes out while the writer still holds the second line back."""
    r, w = os.pipe()
    stream = os.fdopen(r, "rb")
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=stream))
    out: queue.Queue = queue.Queue()

    def consume():
        try:
            for text in read_texts("-", format=fmt):
                out.put(text)
        except BaseException as e:  # pragma: no cover - surfaced by the asserts below
            out.put(e)
        out.put(None)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        os.write(w, lines[0])
        try:
            first = out.get(timeout=10)
        except queue.Empty:
            first = "<nothing yet: not streaming>"
        os.write(w, lines[1])
    finally:
        os.close(w)
    reader.join(timeout=10)
    stream.close()
    rest = []
    while (item := out.get(timeout=1)) is not None:
        rest.append(item)
    assert [first, *rest] == expected
