"""The data formats of tagging, as `--format` names them (no I/O here: the command line imports this to
offer them without loading the readers)."""

FORMATS = ("auto", "conll", "conllu", "lines")  # `tag` reads them all; gold tags come in conll or conllu
