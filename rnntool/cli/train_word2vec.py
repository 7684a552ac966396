"""`rnntool train word2vec`: word vectors with gensim's skip-gram or CBOW (negative sampling).

    rnntool train word2vec corpus.txt --name w2v --embed-dim 100 --epochs 5
    rnntool models vectors w2v -o w2v.vec            # word2vec text, for any tool
    rnntool train tag train.conllu --init-embeddings w2v.vec --name ewt
"""


from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import train_app
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, RegistryOpt, stdin_is_tty
from rnntool.cli.train_command import train_command
from rnntool.cli.train_options import TrainOptions, train_options
from rnntool.errors import UsageError
from rnntool.kinds.word2vec import ALGORITHMS

# the shared training options that mean something to gensim
SHARED = ("epochs", "lr", "seed", "threads", "quiet", "if_changed", "wait", "log_file")


def _opt(help: str, *names: str, **kw):
    return typer.Option(*names, help=help, **kw)


@train_app.command("word2vec")
@train_options(only=SHARED)
def train_word2vec(
    corpus: Annotated[Optional[str], typer.Argument(
        metavar="CORPUS", help="Text, one sentence or paragraph per line, words separated by spaces ('-' or "
                               "nothing: stdin).", show_default=False)] = None,
    name: Annotated[Optional[str], _opt("Publish to the registry under this name.", "--name",
                                        show_default=False)] = None,
    output: Annotated[Optional[Path], _opt("Write the bundle to this directory instead of the registry.",
                                           "-o", "--output", show_default=False)] = None,
    algorithm: Annotated[Literal[ALGORITHMS], _opt("skipgram: predict the context from each word; cbow: each "
                                                   "word from its context (faster).", "--algorithm")] = "skipgram",
    embed_dim: Annotated[int, _opt("Vector size.", "--embed-dim")] = 100,
    window: Annotated[int, _opt("Context words on each side (at most).", "--window")] = 5,
    negative: Annotated[int, _opt("Negative samples per positive one.", "--negative")] = 5,
    min_count: Annotated[int, _opt("Words seen fewer times are left out.", "--min-count")] = 5,
    subsample: Annotated[float, _opt("Down-sample words more frequent than this (word2vec's -sample; 0: off).",
                                     "--subsample")] = 1e-3,
    lowercase: Annotated[bool, _opt("Lowercase the text first.", "--lowercase")] = False,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    *,
    train: TrainOptions,
) -> None:
    """Train word vectors (gensim's word2vec: skip-gram or CBOW with negative sampling); publish them
    (--name) or write them (-o DIR). The same --seed with --threads 1 gives the same vectors; more threads
    are faster but not repeatable. Needs gensim: pip install 'rnntool[word2vec]'."""
    from rnntool.kinds.word2vec.train import Word2VecRunSpec

    if "lr" not in train.explicit:
        train.lr = 0.025  # gensim's (and word2vec's) starting rate, not the RNNs' default
    if train.epochs is None:
        train.epochs = 5

    def new_spec() -> Word2VecRunSpec:
        if corpus is None and stdin_is_tty():
            raise UsageError("no training text: give a file, or pipe text into stdin")
        return Word2VecRunSpec(
            train=corpus or "-", name=name, output=str(output.resolve()) if output else None,
            model=dict(algorithm=algorithm, embed_dim=embed_dim, window=window, negative=negative,
                       min_count=min_count, subsample=subsample, lowercase=lowercase), on_bad_utf8=on_bad_utf8,
        ).check()

    train_command("word2vec", train, registry, json_out, new_spec=new_spec, given_on_resume=False,
                  what_to_drop="")
