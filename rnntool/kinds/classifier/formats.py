"""The data formats of text classification, as `--format` names them (no I/O here: the command line
imports this to offer them without loading the readers)."""

FORMATS = ("auto", "fasttext", "tsv", "csv", "tab")  # labelled examples (train, evaluate)
TEXT_FORMATS = ("lines", "fasttext", "tsv", "csv", "tab")  # what `classify` reads texts from
