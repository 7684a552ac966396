"""The training options shared by `train lm` and `train translate`, and the console progress."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from rnntool.cli.console import console
from rnntool.cli.train_options import TrainOptions, train_options
from rnntool.cli.train_report import ConsoleProgress, format_lr
from rnntool.errors import ConfigError
from rnntool.training.trainer import train

from support.toy_training import make_task, toy_config as cfg

pytestmark = pytest.mark.usefixtures("one_thread")


def _options_app():
    app = typer.Typer()
    seen: dict = {}

    @app.command()
    @train_options
    def fit(name: Annotated[str, typer.Option(help="A command option of its own.")] = "x", *,
            train: TrainOptions) -> None:
        """Train something."""
        seen["name"], seen["opts"] = name, train

    @app.command()
    def other() -> None:
        """Keeps typer in multi-command mode."""

    return app, seen


def test_train_options_build_a_config(monkeypatch):
    monkeypatch.setattr(console, "quiet", False)
    app, seen = _options_app()
    r = CliRunner().invoke(app, ["fit", "--name", "y", "--max-time", "1h30m", "--lr", "0.01", "--clip", "0",
                                 "--schedule", "cosine", "--warmup", "10", "-q"])
    assert r.exit_code == 0, r.output
    opts = seen["opts"]
    config = opts.config()
    assert seen["name"] == "y" and console.quiet
    assert (config.max_time, config.lr, config.clip, config.schedule, config.warmup_steps) == (
        5400.0, 0.01, 0.0, "cosine", 10)
    assert config.epochs is None  # --max-time alone: train for that long
    assert opts.explicit == {"max_time", "lr", "clip", "schedule", "warmup", "quiet"}
    r = CliRunner().invoke(app, ["fit"])
    assert seen["opts"].config().epochs == 10  # no budget given: the default number of epochs
    assert "ema" not in seen["opts"].config().to_dict()  # off: train configs read as before --ema existed
    r = CliRunner().invoke(app, ["fit", "--ema", "0.999"])
    assert seen["opts"].config().ema == 0.999 and seen["opts"].config().to_dict()["ema"] == 0.999
    assert CliRunner().invoke(app, ["fit", "--ema", "1"]).exit_code == 2  # a decay below 1
    help_text = CliRunner().invoke(app, ["fit", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--optimizer", "--lr", "--clip", "--weight-decay", "--warmup", "--schedule", "--epochs",
                 "--max-steps", "--max-time", "--eval-every", "--patience", "--seed", "--device", "--threads",
                 "--precision", "--run-dir", "--resume", "--save-every", "--quiet", "--name", "--ema"):
        assert flag in help_text, flag


def test_train_options_on_resume_keep_saved_settings_unless_given():
    saved = cfg(lr=0.05, max_steps=10, schedule="plateau").to_dict()
    opts = TrainOptions(max_steps=50, resume=Path("runs/a"), explicit=frozenset({"max_steps", "resume"}))
    config = opts.config(base=saved)
    assert (config.lr, config.max_steps, config.schedule, config.seed) == (0.05, 50, "plateau", 0)
    assert opts.run_dir_for(default=Path("elsewhere")) == Path("runs/a")
    assert opts.config(base=saved, best_metric="bleu", best_mode="max").best_metric == "bleu"
    with pytest.raises(ConfigError, match="--run-dir"):
        TrainOptions(resume=Path("a"), run_dir=Path("b")).run_dir_for()


def test_train_options_bad_values_name_the_option():
    app, seen = _options_app()
    for args in (["--schedule", "linear"], ["--optimizer", "lion"], ["--precision", "fp8"]):
        r = CliRunner().invoke(app, ["fit", *args])  # a closed set of choices: refused while parsing
        assert r.exit_code == 2 and args[0] in r.output, r.output
    assert CliRunner().invoke(app, ["fit", "--max-time", "soon"]).exit_code == 0
    with pytest.raises(ConfigError, match="--max-time: cannot read 'soon'"):
        seen["opts"].config()
    with pytest.raises(ConfigError, match="--schedule must be one of constant, plateau, cosine"):
        cfg(schedule="linear").validate()  # TrainConfig checks its own values too (library callers)


def test_train_options_unknown_device_is_a_usage_error():
    app, _ = _options_app()
    result = CliRunner().invoke(app, ["fit", "--device", "gpu"])
    assert result.exit_code == 2
    assert "'gpu'" in result.output


def test_console_progress_logs_one_plain_line_per_eval(capfd, monkeypatch):
    monkeypatch.setattr(console, "quiet", False)
    with ConsoleProgress("toy") as progress:
        train(make_task(0, nan_at=[(0, 1)]), cfg(max_steps=8, eval_every=4), run_dir=None, callbacks=[progress])
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    pattern = (r"^\S+ rnntool: step {} epoch 1 loss \d+\.\d\d ppl [\d.]+ val_loss \d+\.\d\d val_ppl [\d.]+ "
               r"tok/s \d+ lr 1e-2( \(best\))?$")
    evals = [line for line in lines if " tok/s " in line]
    assert len(evals) == 2, err
    assert re.match(pattern.format(4), evals[0]) and re.match(pattern.format(8), evals[1]), evals
    assert any("step 2: loss or gradient not finite, update skipped" in line for line in lines)
    assert "stopped (max_steps) after 8 steps" in lines[-1] and "1 step skipped" in lines[-1]
    assert [format_lr(x) for x in (1e-3, 0.000316, 0.1, 2.5e-5)] == ["1e-3", "3.16e-4", "1e-1", "2.5e-5"]


def test_cli_option_module_does_not_import_torch():
    code = "import sys, rnntool.cli.train_options, rnntool.training.trainer; assert 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
