"""The model-kind contract: what a kind gives the one training driver, and what the driver does.

A kind is a folder under rnntool/kinds/ whose ``train`` module defines a ``ModelKind`` subclass and
an instance of it named in the catalog (rnntool/kinds/catalog.py)::

    class LanguageModelKind(ModelKind):
        name, command, spec_type = "lm", "train lm", LMRunSpec
        def build(self, spec, train_cfg, ctx, work_dir, parent): ...   # -> Trainee
        ...
    KIND = LanguageModelKind()

``rnntool.training.driver.train_model(kind, spec, train_cfg, ctx)`` then runs it, the same for every
kind: the run directory and its lock; the inputs (``prepare_inputs``, fingerprints checked on
``--resume``); the per-name training lock; the warm start (``warm_start``) and the retrain key
(``key_settings``; ``--if-changed``); ``build``; the one training loop; ``publish_parents`` (e.g.
tokenizers trained on the fly); the promotion check (``promotion``); publishing the bundle
(``write_files`` + ``bundle_config``) with the run's id; the record of it in the run directory; the
alias. The CLI module of a kind declares its options, makes the spec, and hands it to
``rnntool.cli.train_command.train_command``, which prints ``summary``.

Specs are JSON-able dataclasses (saved in the run directory's run.json, read back on ``--resume``)
with at least ``name``, ``output``, ``model``, ``fingerprints``, ``init_from``, ``run_id``,
``promote`` and ``min_delta`` fields, a ``check()`` that returns the spec, ``from_dict`` and
``label``. Methods that resolve something return a new spec (``dataclasses.replace``) rather than
change the one they were given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Log = Callable[[str], None]


@dataclass
class Trainee:
    """What ``ModelKind.build`` made: the model and the task to train, and what publishing needs."""

    spec: Any  # the run spec with everything resolved (tokenizer references...): what run.json records
    model: Any  # the torch module (holding the best weights once trained)
    task: Any  # the TrainTask (rnntool/training/trainer.py)
    model_config: dict  # stored with every checkpoint; a resume must build the same
    data_config: dict = field(default_factory=dict)  # the bundle config's "data" section
    details: dict = field(default_factory=dict)  # for the command's summary (tokenizers, data counts)
    state: Any = None  # anything else the kind keeps for publishing (tokenizers, validation text)


class ModelKind:
    """Base class of every kind's training implementation (see the module docstring)."""

    name: str = ""  # the catalog's name, the manifest's "kind"
    command: str = ""  # the command that trains it: "train lm"
    spec_type: type = object  # its run spec dataclass
    temp_prefix: str = "rnntool-"  # a work directory made when there is no run directory

    def check_model(self, spec) -> None:
        """Check the model settings before any data is read (a typo or an absurd size fails fast)."""

    def prepare_inputs(self, spec, work_dir: Path, log: Log):
        """The spec with its inputs resolved: stdin spooled into ``work_dir``, paths absolute, data
        fingerprints taken (``spec.fingerprints``: what ``--if-changed`` and ``--resume`` compare)."""
        raise NotImplementedError

    def warm_start(self, spec, registry, ref: str, log: Log) -> tuple[Any, Any]:
        """``(parent bundle, spec adopting its architecture and tokenizers)`` for ``--init-from REF``."""
        raise NotImplementedError

    def key_settings(self, spec, train_cfg, registry, parent) -> dict:
        """What shapes the model, for the retrain key: usually ``training.retrain.model_settings`` with
        the kind's tokenizer fields and its ``runtime_fields`` (input paths: not what is learned)."""
        raise NotImplementedError

    def build(self, spec, train_cfg, ctx, work_dir: Path, parent) -> Trainee:
        """Resolve tokenizers, read the data, build the model (seeded with ``train_cfg.seed``; from
        ``parent`` on a warm start) and the task. ``ctx.resume``: the run directory holds what the run
        started with."""
        raise NotImplementedError

    def publish_parents(self, trainee: Trainee, registry, work_dir: Path) -> dict:
        """Publish what the model depends on that is not in the registry yet (tokenizers trained on
        the fly); the manifest's ``parents`` (``{"tokenizer": "news-tokenizer@2"}``)."""
        return {}

    def fit(self, trainee: Trainee, train_cfg, ctx):
        """A kind that trains itself (word2vec: gensim) returns its TrainResult here; None (the default):
        the one training loop trains ``trainee.task``."""
        return None

    def input_tables(self, trainee: Trainee) -> list[tuple[str, Any, list[str]]]:
        """The model's input embedding tables for ``--init-embeddings`` (rnntool/vectors/pretrained.py):
        ``(label, nn.Embedding, the word or piece of each row)``; none by default."""
        return []

    def write_files(self, trainee: Trainee, stage: Path, work_dir: Path) -> None:
        """Write the bundle's files (the catalog's ``files`` but the training log) into ``stage``."""
        raise NotImplementedError

    def promotion(self, trainee: Trainee, registry, retrain, log: Log):
        """The ``--promote`` decision (rnntool.training.retrain.PromotionDecision): the new model and
        the aliased one, evaluated fresh on the same validation data."""
        raise NotImplementedError

    def summary(self, outcome) -> tuple[dict, str]:
        """``(fields for --json, the one summary line)`` of a published ``outcome`` (TrainOutcome)."""
        raise NotImplementedError

    # -- shared by every kind ------------------------------------------------------------------------
    def spec_from_run(self, saved: dict):
        """The spec a run directory's run.json recorded (fields this version does not know are dropped)."""
        names = {f.name for f in dataclasses.fields(self.spec_type)}
        return self.spec_type(**{k: v for k, v in (saved.get("meta") or {}).items() if k in names})


__all__ = ["ModelKind", "Trainee"]
