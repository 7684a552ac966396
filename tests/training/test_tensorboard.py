"""`train ... --tensorboard DIR`: TensorBoard event files beside metrics.jsonl, and a clear error without the
package."""

from __future__ import annotations

import sys

import pytest
from conftest import invoke

from rnntool.errors import ConfigError
from support.toy_training import make_task, toy_config as cfg


def test_event_files_hold_the_training_curves(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rnntool.training.tensorboard import TensorBoardLog
    from rnntool.training.trainer import train

    log = TensorBoardLog(tmp_path / "tb")
    result = train(make_task(0), cfg(max_steps=6, eval_every=3), run_dir=None, callbacks=[log])
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "valid/loss"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 7))
    valid = events.Scalars("valid/loss")
    assert [e.step for e in valid] == [3, 6]
    assert valid[-1].value == pytest.approx(result.history[-1]["val_loss"], rel=1e-6)


def test_the_cli_writes_them_and_names_the_extra_when_it_is_missing(tmp_path, corpus, monkeypatch):
    args = ("train", "lm", corpus, "-o", tmp_path / "m", "--vocab-size", "300", "--embed-dim", "16",
            "--hidden-dim", "16", "--layers", "1", "--max-steps", "4", "--batch-size", "4", "--bptt", "8", "-q",
            "--tensorboard", tmp_path / "tb")
    if "tensorboard" in sys.modules or _installed("tensorboard"):
        r = invoke(*args)
        assert r.exit_code == 0, r.stderr
        assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were missing
    r = invoke(*args[:-1], tmp_path / "tb2")
    assert r.exit_code == 2 and "pip install 'rnntool[tensorboard]'" in r.stderr, r.stderr
    with pytest.raises(ConfigError, match="tensorboard"):
        from rnntool.training.tensorboard import TensorBoardLog

        TensorBoardLog(tmp_path / "tb3")


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
