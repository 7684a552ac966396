"""The inputs of a run that trains on one labelled file and an optional validation file (the
classifier's and the tagger's ``ModelKind.prepare_inputs``).

    spec = prepare_train_valid(spec, work_dir, log, what="examples")

The spec has ``train``, ``valid``, ``on_bad_utf8``, ``fingerprints`` and ``input_files``; stdin
('-') may carry the training data only, and is spooled into ``work_dir`` so the run can be
fingerprinted and resumed. Nothing is read but the fingerprints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from rnntool.errors import BadInput, UsageError


class TrainValidFiles:
    """What a run spec with ``train``, ``valid``, ``name`` and ``output`` fields derives from them (the
    classifier's and the tagger's specs inherit it)."""

    @property
    def label(self) -> str:
        return self.name or Path(self.output).name

    @property
    def input_files(self) -> list[str]:
        return [self.train, *([self.valid] if self.valid is not None else [])]


def prepare_train_valid(spec, work_dir: Path, log: Callable[[str], None], *, what: str):
    """The spec with stdin spooled, both paths absolute and checked, and the fingerprints taken."""
    from rnntool.textio import fingerprint_file, is_stdin, spool_stdin
    from rnntool.training.distributed import env_world_size

    train = spec.train
    if spec.valid is not None and is_stdin(spec.valid):
        raise UsageError("--valid must be a file (stdin can carry the training data only)")
    if is_stdin(train):
        if env_world_size() > 1:
            raise UsageError("a distributed run cannot read stdin; give the training data as a file")
        log(f"reading training {what} from stdin")
        train = str(spool_stdin(work_dir, on_bad_utf8=spec.on_bad_utf8))
    for path, role in ((train, "training data"), (spec.valid, "--valid")):
        if path is not None and not Path(path).is_file():
            raise BadInput(f"{path}: no such file ({role})")
    spec = dataclasses.replace(spec, train=str(Path(train).resolve()),
                               valid=str(Path(spec.valid).resolve()) if spec.valid is not None else None)
    return dataclasses.replace(spec, fingerprints=[{**fingerprint_file(p), "role": role}
                                                   for p, role in zip(spec.input_files, ("train", "valid"))])


INIT_EMBEDDINGS_ROLE = "init-embeddings"  # a fingerprint of --init-embeddings' file: in the key, not training data


def data_fingerprints(spec) -> list[dict]:
    """The fingerprints of the files a run learns from (the word vectors it starts from left out)."""
    return [fp for fp in spec.fingerprints if fp.get("role") != INIT_EMBEDDINGS_ROLE]


__all__ = ["INIT_EMBEDDINGS_ROLE", "data_fingerprints", "prepare_train_valid"]
