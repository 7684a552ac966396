"""The retrain key (--if-changed) across rnntool versions: a cron job must not retrain after an
upgrade that changed nothing the model depends on, nor skip after one that did."""

from __future__ import annotations

import dataclasses

import pytest

from rnntool.kinds.catalog import model_kind
from rnntool.kinds.lm.train import LMRunSpec
from rnntool.kinds.translation.train import TranslationRunSpec
from rnntool.training.config import TrainConfig
from rnntool.training.retrain import retrain_key

FINGERPRINTS = [{"path": "/x", "sha256": "a" * 64, "bytes": 3, "lines": 1}]
SPECS = {
    "lm": LMRunSpec(inputs=["/a.txt"], name="n", model={"cell": "lstm", "layers": 2}, valid="/v.txt",
                    cache_dir="/c", fingerprints=FINGERPRINTS, run_id="r", promote="prod"),
    "translation": TranslationRunSpec(src="/s", tgt="/t", valid_src="/vs", valid_tgt="/vt", name="n",
                                      model={"cell": "gru", "attention": "dot"}, fingerprints=FINGERPRINTS,
                                      run_id="r"),
}
# Recorded with the rnntool of issue 9 (before the package refactor): registries it wrote hold these.
# A change here makes every cron job retrain once: make it only with a reason that says so.
RECORDED = {
    "lm": "9bdf6bfcaca1e47947d688c303374735a67a57d297f83a1483ea67002c9179c1",
    "translation": "f2667a838d8fe63794a716790bc66565d6cbb003d6b9bfc88460a88deeaf0c37",
}


def key(kind: str, spec) -> str:
    return retrain_key(FINGERPRINTS, model_kind(kind).key_settings(spec, TrainConfig(), None, None))["settings"]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_the_key_is_the_one_earlier_versions_recorded(kind):
    assert key(kind, SPECS[kind]) == RECORDED[kind]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_paths_names_and_runtime_settings_are_not_in_the_key_but_the_model_is(kind):
    spec = SPECS[kind]
    moved = {f: "/elsewhere" for f in ("inputs", "valid", "cache_dir", "src", "tgt", "valid_src", "valid_tgt")
             if hasattr(spec, f)}
    if "inputs" in moved:
        moved["inputs"] = ["/elsewhere"]
    same = dataclasses.replace(spec, name="other", run_id="s", promote=None, **moved)
    assert key(kind, same) == RECORDED[kind]
    bigger = dataclasses.replace(spec, model={**spec.model, "hidden_dim": 512})
    assert key(kind, bigger) != RECORDED[kind]


def test_an_option_added_later_changes_the_key_only_when_used():
    spec = SPECS["translation"]
    assert key("translation", dataclasses.replace(spec, sample_alpha=0.0)) == RECORDED["translation"]
    assert key("translation", dataclasses.replace(spec, sample_alpha=0.1)) != RECORDED["translation"]
