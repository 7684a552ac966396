"""The training loop: exact resume, non-finite guard, stop reasons, schedules, metrics, CLI options."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnntool.training.checkpoint import load_checkpoint
from rnntool.errors import CheckpointError, ConfigError, TrainingError
from rnntool.training.optim import LRSchedule
from rnntool.training.config import TrainConfig, parse_duration
from rnntool.training.trainer import train

from support.toy_training import CrashAt, make_task, Sleepy, toy_config as cfg

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = Path(__file__).resolve().parents[1] / "support" / "toy_training.py"
BATCHES_PER_EPOCH = 12  # toy task: 48 rows / batch 4


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def comparable(history: list[dict]) -> list[dict]:
    drop = {"elapsed", "tokens_per_s"}
    return [{k: v for k, v in h.items() if k not in drop} for h in history]


class Recorder:
    def __init__(self) -> None:
        self.steps, self.evals, self.ends, self.starts = [], [], [], []
        self.snapshots: dict[int, dict] = {}

    def on_train_start(self, info):
        self.starts.append(info)

    def on_step(self, info):
        self.steps.append(info)

    def on_eval(self, info):
        self.evals.append(info)

    def on_end(self, result):
        self.ends.append(result)


# -- exact resume ------------------------------------------------------------------------------
RESUME_CASES = {
    # mid-epoch checkpoints (save_every), evals every 7 steps, Adam state, warm-up + cosine
    "adam-cosine-midepoch": (dict(optimizer="adam", schedule="cosine", warmup_steps=4, max_steps=30,
                                  eval_every=7, save_every=5), 13),
    # checkpoints only at epoch ends (the resumed run starts a new epoch), SGD momentum, plateau
    "sgd-plateau-epochend": (dict(optimizer="sgd", momentum=0.9, lr=0.1, schedule="plateau",
                                  plateau_patience=0, epochs=3), 17),
    # --accumulate 5 over 12 batches an epoch: steps of 5, 5 and 2 batches, checkpoints between them
    "accumulate-uneven": (dict(optimizer="adam", accumulate=5, max_steps=10, eval_every=4, save_every=3,
                               schedule="cosine"), 7),
    # --ema: the moving average is resumed with the run (the published weights are the average)
    "adam-ema": (dict(optimizer="adam", ema=0.9, max_steps=20, eval_every=5, save_every=3), 11),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_after_crash_is_bit_identical(tmp_path, case):
    settings, crash_step = RESUME_CASES[case]
    config = cfg(**settings)
    ref_task = make_task(0)
    ref = train(ref_task, config, run_dir=tmp_path / "ref", model_config={"toy": 1})

    crashed = make_task(0)
    with pytest.raises(KeyboardInterrupt):
        train(crashed, config, run_dir=tmp_path / "run", callbacks=[CrashAt(crash_step)], model_config={"toy": 1})
    assert load_checkpoint(tmp_path / "run").step < crash_step

    resumed_task = make_task(0)
    rec = Recorder()
    resumed = train(resumed_task, config, run_dir=tmp_path / "run", resume=True, callbacks=[rec],
                    model_config={"toy": 1})
    assert rec.starts[0].resumed and rec.starts[0].step > 0
    assert_same_weights(weights(ref_task.model), weights(resumed_task.model))  # best weights
    a, b = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "run")  # last weights
    assert a.step == b.step == ref.steps
    assert_same_weights(a.model_state, b.model_state)
    assert comparable(ref.history) == comparable(resumed.history)
    assert (ref.steps, ref.stop_reason, ref.best_step, ref.best_metrics) == (
        resumed.steps, resumed.stop_reason, resumed.best_step, resumed.best_metrics)
    # metrics.jsonl holds each eval exactly once, even though steps after the checkpoint ran twice
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert comparable(lines) == comparable(ref_lines)


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    config = cfg(max_steps=40, eval_every=8, save_every=1, schedule="cosine", warmup_steps=3, threads=1)
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(TOY), str(run_dir), json.dumps(config.to_dict()), "--sleep", "0.03"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        pointer = run_dir / "checkpoint"
        while time.monotonic() < deadline:
            if pointer.exists() and int(pointer.read_text().strip().split("-")[1]) >= 10:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        else:
            pytest.fail("no checkpoint at step 10 within 120 s")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    killed_at = load_checkpoint(run_dir).step
    assert 10 <= killed_at < 40

    resumed_task = make_task(0)
    resumed = train(resumed_task, config, run_dir=run_dir, resume=True, model_config={"toy": 1})
    ref_task = make_task(0)
    ref = train(ref_task, config, run_dir=tmp_path / "ref", model_config={"toy": 1})
    assert resumed.steps == ref.steps == 40
    assert_same_weights(weights(ref_task.model), weights(resumed_task.model))
    assert_same_weights(load_checkpoint(run_dir).model_state, load_checkpoint(tmp_path / "ref").model_state)
    assert comparable(ref.history) == comparable(resumed.history)


def test_ctrl_c_checkpoints_at_the_step_and_resume_finishes_identically(tmp_path):
    config = cfg(max_steps=120, eval_every=50, threads=1)
    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, str(TOY), str(run_dir), json.dumps(config.to_dict()), "--sleep", "0.02"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "run.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT) at step" in err and f"--resume {run_dir}" in err
    step = int(err.split("at step ")[1].split(";")[0])
    assert 0 < step < 120 and load_checkpoint(run_dir).step == step  # saved right where it stopped
    resumed_task, ref_task = make_task(0), make_task(0)
    resumed = train(resumed_task, config, run_dir=run_dir, resume=True, model_config={"toy": 1})
    ref = train(ref_task, config, run_dir=tmp_path / "ref", model_config={"toy": 1})
    assert resumed.steps == ref.steps == 120
    assert_same_weights(load_checkpoint(run_dir).model_state, load_checkpoint(tmp_path / "ref").model_state)
    assert comparable(ref.history) == comparable(resumed.history)


def test_same_seed_same_weights_and_loop_prints_nothing(capfd):
    a, b = make_task(0), make_task(0)
    train(a, cfg(max_steps=6), run_dir=None)
    train(b, cfg(max_steps=6), run_dir=None)
    assert_same_weights(weights(a.model), weights(b.model))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_raising_the_budget_on_resume_continues_training(tmp_path):
    first = train(make_task(0), cfg(max_steps=5), run_dir=tmp_path / "r")
    assert (first.steps, first.stop_reason) == (5, "max_steps")
    more = train(make_task(0), cfg(max_steps=9), run_dir=tmp_path / "r", resume=True)
    train(make_task(0), cfg(max_steps=9), run_dir=tmp_path / "ref")
    assert (more.steps, more.stop_reason) == (9, "max_steps")
    assert [h["step"] for h in more.history] == [5, 9]
    assert_same_weights(load_checkpoint(tmp_path / "r").model_state, load_checkpoint(tmp_path / "ref").model_state)


# -- non-finite guard --------------------------------------------------------------------------
def test_nonfinite_steps_are_skipped_and_counted():
    task = make_task(0, nan_at=[(0, 2), (0, 5)])
    rec = Recorder()
    result = train(task, cfg(max_steps=10), run_dir=None, callbacks=[rec])
    assert result.skipped_steps == 2
    assert [s.step for s in rec.steps if s.skipped] == [3, 6]
    assert all(math.isnan(s.loss) for s in rec.steps if s.skipped)
    assert all(bool(torch.isfinite(p).all()) for p in task.model.parameters())
    assert math.isfinite(result.best_metrics["loss"])


def test_repeated_nonfinite_loss_stops_naming_the_step_and_keeps_best_weights(tmp_path):
    task = make_task(0, nan_at=[(0, i) for i in range(4, 12)])
    rec = Recorder()

    class Snapshot:
        def on_eval(self, info):
            rec.snapshots[info.step] = weights(task.model)

    with pytest.raises(TrainingError) as exc:
        train(task, cfg(max_steps=20, eval_every=2, max_bad_steps=3), run_dir=tmp_path / "r",
              callbacks=[Snapshot()])
    msg = str(exc.value)
    assert "steps 5-7" in msg and "step 7" in msg and "--lr" in msg and "\n" not in msg
    result = exc.value.result
    assert result.skipped_steps == 3 and result.best_step in rec.snapshots
    assert_same_weights(weights(task.model), rec.snapshots[result.best_step])
    assert all(bool(torch.isfinite(p).all()) for p in task.model.parameters())


# -- stop reasons ------------------------------------------------------------------------------
def test_stop_on_max_steps():
    result = train(make_task(0), cfg(max_steps=7, epochs=5), run_dir=None)
    assert (result.stop_reason, result.steps) == ("max_steps", 7)


def test_stop_on_epochs_evaluates_each_epoch():
    rec = Recorder()
    result = train(make_task(0), cfg(epochs=2), run_dir=None, callbacks=[rec])
    assert (result.stop_reason, result.steps, result.epochs) == ("epochs", 2 * BATCHES_PER_EPOCH, 2)
    assert [e.step for e in rec.evals] == [BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]
    assert [e.epoch for e in rec.evals] == [1, 2]
    assert len(rec.ends) == 1 and rec.ends[0] is result


def test_stop_on_max_time_even_without_other_budget():
    t0 = time.monotonic()
    result = train(make_task(0), cfg(max_time=0.5), run_dir=None, callbacks=[Sleepy(0.05)])
    assert result.stop_reason == "max_time"
    assert 0.5 <= result.elapsed < 5 and time.monotonic() - t0 < 10
    assert 1 <= result.steps <= 11


def test_time_budget_counts_across_resumes(tmp_path):
    first = train(make_task(0), cfg(max_time=0.3), run_dir=tmp_path / "r", callbacks=[Sleepy(0.03)])
    assert first.stop_reason == "max_time" and first.elapsed >= 0.3
    assert load_checkpoint(tmp_path / "r").state["loop"]["time_used"] >= 0.3
    rec = Recorder()
    more = train(make_task(0), cfg(max_time=0.6), run_dir=tmp_path / "r", resume=True,
                 callbacks=[Sleepy(0.03), rec])
    assert more.stop_reason == "max_time" and 0.6 <= more.elapsed < 5
    assert more.steps == first.steps + len(rec.steps)
    assert 0 < len(rec.steps) * 0.03 < 0.45  # about 0.3 s more, not a fresh 0.6 s


def test_early_stopping_keeps_best_weights():
    # scripted validation losses: best at the 2nd eval, then 2 evals without improvement
    task = make_task(0, valid_losses=[3.0, 2.0, 2.5, 2.6, 1.0])
    snapshots = {}

    class Snapshot:
        def on_eval(self, info):
            snapshots[info.step] = weights(task.model)

    result = train(task, cfg(max_steps=50, eval_every=3, patience=2), run_dir=None, callbacks=[Snapshot()])
    assert (result.stop_reason, result.steps, result.best_step) == ("early_stopping", 12, 6)
    assert result.best_metrics["loss"] == 2.0
    assert [h["step"] for h in result.history] == [3, 6, 9, 12]
    assert_same_weights(weights(task.model), snapshots[6])


@pytest.mark.parametrize("measured", [True, False])
def test_ema_validates_and_publishes_the_moving_average_of_the_weights(tmp_path, measured):
    """--ema D: after update n the average moves to the new weights by 1 - min(D, (1 + n) / (10 + n));
    validation scores the average and the kept (published) weights are it, also when no validation could
    measure anything (no best weights to keep); training itself is unchanged."""
    task = make_task(0) if measured else make_task(0, valid_losses=[float("nan")])
    if not measured:
        task.has_validation = False  # nothing measured: no best weights
    seen = []  # the weights at each step's start: w_0 .. w_{N-1}
    plain_loss = task.loss

    def recording_loss(model, batch):
        seen.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return plain_loss(model, batch)

    task.loss = recording_loss
    steps = 15
    result = train(task, cfg(optimizer="adam", ema=0.95, max_steps=steps), run_dir=tmp_path / "run")
    last = load_checkpoint(tmp_path / "run").model_state  # w_N, the weights training ended with
    trajectory = seen[1:] + [{k: last[k] for k in seen[0]}]
    average = dict(seen[0])
    for n, w in enumerate(trajectory):
        decay = min(0.95, (1 + n) / (10 + n))
        average = {k: decay * average[k] + (1 - decay) * w[k] for k in average}
    kept = dict(task.model.named_parameters())
    for k in average:
        torch.testing.assert_close(kept[k].detach(), average[k], atol=1e-6, rtol=1e-5)
        assert not torch.equal(average[k], last[k])  # not the last weights
    if not measured:
        return
    rows = task.valid_rows  # the validation loss is the average's
    with torch.no_grad():
        task.model.eval()
        logits, _ = task.model(rows[:, :-1])
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
    assert result.best_metrics["loss"] == pytest.approx(float(expected), rel=1e-6)
    # the same run without --ema takes exactly the same steps
    plain = make_task(0)
    train(plain, cfg(optimizer="adam", max_steps=steps), run_dir=tmp_path / "plain")
    assert_same_weights(load_checkpoint(tmp_path / "plain").model_state, last)
    with pytest.raises(ConfigError, match="--ema"):
        cfg(ema=1.0, max_steps=1).validate()


def test_best_metric_can_be_maximised():
    task = make_task(0, valid_losses=[3.0, 1.0, 2.0])
    original = task.evaluate

    def evaluate(model):
        m = original(model)
        return {**m, "bleu": 10 * m["loss"]}

    task.evaluate = evaluate
    result = train(task, cfg(max_steps=9, eval_every=3, best_metric="bleu", best_mode="max"), run_dir=None)
    assert result.best_step == 3 and result.best_metrics["bleu"] == 30.0


# -- learning rates ----------------------------------------------------------------------------
def test_warmup_then_cosine_lr_per_step():
    rec = Recorder()
    train(make_task(0), cfg(lr=0.1, min_lr=0.01, warmup_steps=4, schedule="cosine", max_steps=24), run_dir=None,
          callbacks=[rec])
    lrs = [s.lr for s in rec.steps]
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert lrs[4] == pytest.approx(0.1)  # cosine starts at the peak after warm-up
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # then only decays
    assert lrs[14] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 10 / 20)))
    assert lrs[-1] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))


def test_cosine_follows_the_time_budget_when_only_time_is_given():
    s = LRSchedule(cfg(lr=1.0, schedule="cosine", max_time=100.0), total_steps=None, max_time=100.0)
    assert s.lr(1000, elapsed=0.0) == pytest.approx(1.0)
    assert s.lr(5, elapsed=50.0) == pytest.approx(0.5)
    assert s.lr(5, elapsed=100.0) == pytest.approx(0.0)
    # with both budgets, whichever is used up faster drives the decay
    s = LRSchedule(cfg(lr=1.0, schedule="cosine", max_steps=100), total_steps=100, max_time=100.0)
    assert s.lr(50, elapsed=10.0) == pytest.approx(0.5)
    assert s.lr(10, elapsed=50.0) == pytest.approx(0.5)


def test_cosine_without_a_known_budget_is_a_config_error():
    with pytest.raises(ConfigError, match="--max-steps or --max-time"):
        LRSchedule(cfg(schedule="cosine", epochs=3), total_steps=None, max_time=None)


def test_plateau_reduces_after_patience_and_respects_min_lr():
    s = LRSchedule(cfg(lr=1.0, schedule="plateau", plateau_factor=0.5, plateau_patience=1, min_lr=0.2),
                   total_steps=None, max_time=None)
    values = [3.0, 2.0, 2.5, 2.4, 2.3, 2.2, 2.6, 2.7, 2.8, 2.9]
    lrs = []
    for v in values:
        s.on_eval(v)
        lrs.append(s.lr(100))
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2])


def test_plateau_lr_reaches_the_optimizer():
    rec = Recorder()
    task = make_task(0, valid_losses=[2.0, 3.0, 3.0, 3.0])
    train(task, cfg(lr=0.1, schedule="plateau", plateau_patience=0, max_steps=8, eval_every=2), run_dir=None,
          callbacks=[rec])
    assert [e.lr for e in rec.evals] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert [s.lr for s in rec.steps] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


# -- metrics log, bf16, config ------------------------------------------------------------------
def test_metrics_jsonl_has_eval_and_train_lines(tmp_path):
    train(make_task(0), cfg(max_steps=12, eval_every=6, log_every=4), run_dir=tmp_path / "r")
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["type"], r["step"]) for r in records] == [
        ("train", 4), ("eval", 6), ("train", 8), ("train", 12), ("eval", 12)]
    ev = records[1]
    assert records[0]["loss"] > 0 and records[0]["ppl"] == pytest.approx(math.exp(records[0]["loss"]))
    for key in ("epoch", "elapsed", "lr", "train_loss", "val_loss", "val_ppl", "tokens_per_s"):
        assert key in ev and math.isfinite(ev[key]), key
    assert ev["val_ppl"] == pytest.approx(math.exp(ev["val_loss"]))


def test_bf16_autocast_trains_on_cpu():
    task = make_task(0)
    result = train(task, cfg(max_steps=4, precision="bf16"), run_dir=None)
    assert result.steps == 4 and math.isfinite(result.best_metrics["loss"])
    assert all(p.dtype == torch.float32 for p in task.model.parameters())


@pytest.mark.parametrize("text,seconds", [
    ("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400), ("2d", 172800),
    ("1h 30m 10s", 5410),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "10x", "m", "-5m", "0", "1h-", "h1"])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(ConfigError, match="--max-time"):
        parse_duration(text)


@pytest.mark.parametrize("settings,needle", [
    (dict(optimizer="rmsprop"), "--optimizer must be one of sgd, adam, adamw"),
    (dict(schedule="linear"), "--schedule must be one of constant, plateau, cosine"),
    (dict(lr=0), "--lr must be greater than 0"),
    (dict(clip=-1), "--clip"),
    (dict(epochs=None, max_steps=None, max_time=None), "--epochs, --max-steps or --max-time"),
    (dict(device="tpu"), "--device must be one of auto, cpu, cuda"),
    (dict(precision="int8"), "--precision must be one of fp32, bf16, fp16"),
    (dict(init_range=-0.1), "--init-range must be zero or more"),
    (dict(init_range=float("inf")), "--init-range must be a finite number"),
    (dict(momentum=0.9), "--momentum only applies to --optimizer sgd"),
])
def test_bad_config_names_the_option(settings, needle):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**{"epochs": 1, **settings}).validate()
    assert needle in str(exc.value)


def test_fresh_run_refuses_a_run_dir_with_checkpoints(tmp_path):
    train(make_task(0), cfg(max_steps=2), run_dir=tmp_path / "r")
    with pytest.raises(CheckpointError, match="--resume"):
        train(make_task(0), cfg(max_steps=2), run_dir=tmp_path / "r")


def test_nan_validation_stops_the_run_and_metrics_jsonl_stays_strict_json(tmp_path):
    task = make_task(0, valid_losses=[float("nan"), 2.0])
    with pytest.raises(TrainingError, match="diverged at step 2: validation loss is nan"):
        train(task, cfg(max_steps=4, eval_every=2), run_dir=tmp_path / "r")

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    records = [json.loads(line, parse_constant=no_constants)
               for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in records] == [None]  # logged, then training stopped


def test_exploding_validation_loss_stops_the_run(tmp_path):
    """Finite but absurd: over 10x a uniform guess's loss (ln V) means the run diverged."""
    task = make_task(0, valid_losses=[3.0, 500.0, 2.0])
    task.chance_loss = 4.0
    with pytest.raises(TrainingError, match="diverged at step 4: validation loss 500 .* over 10x"):
        train(task, cfg(max_steps=6, eval_every=2), run_dir=tmp_path / "r")


# -- gradient accumulation ------------------------------------------------------------------------
class LinearTask:
    """Least squares on fixed batches of unequal sizes: one step's update can be written down."""

    def __init__(self, sizes=(3, 1, 4, 2)):
        g = torch.Generator().manual_seed(0)
        self.model = torch.nn.Linear(2, 1, bias=False)
        self.data = [(torch.randn(n, 2, generator=g), torch.randn(n, 1, generator=g)) for n in sizes]

    def set_shard(self, rank, world_size):
        pass

    def num_batches(self, epoch):
        return len(self.data)

    def batches(self, epoch):
        for x, y in self.data:
            yield {"x": x, "y": y}

    def loss(self, model, batch):
        return ((model(batch["x"]) - batch["y"]) ** 2).sum(), batch["y"].numel()

    def evaluate(self, model):
        return {"loss": 0.0}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_accumulate_takes_one_step_per_n_batches_on_the_mean_of_all_their_tokens():
    task = LinearTask()
    w0 = task.model.weight.detach().clone()
    rec = Recorder()
    result = train(task, cfg(optimizer="sgd", lr=0.1, clip=0.0, accumulate=3, epochs=1), run_dir=None,
                   callbacks=[rec])
    assert result.steps == 2 and [s.batch for s in rec.steps] == [3, 4]  # 3 batches, then the epoch's last one
    # the first step: the gradient of the squared error summed over batches 1-3, divided by their 8 rows
    x = torch.cat([b[0] for b in task.data[:3]])
    y = torch.cat([b[1] for b in task.data[:3]])
    w = w0.clone().requires_grad_(True)
    (((x @ w.T) - y) ** 2).sum().div(8).backward()
    w1 = w0 - 0.1 * w.grad
    x4, y4 = task.data[3]
    w = w1.clone().requires_grad_(True)
    (((x4 @ w.T) - y4) ** 2).sum().div(2).backward()
    torch.testing.assert_close(task.model.weight.detach(), w1 - 0.1 * w.grad)
    plain = train(LinearTask(), cfg(optimizer="sgd", lr=0.1, clip=0.0, epochs=1), run_dir=None)
    assert plain.steps == 4
    assert "accumulate" not in cfg().to_dict() and cfg(accumulate=2).to_dict()["accumulate"] == 2
