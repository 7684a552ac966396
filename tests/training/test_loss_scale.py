"""fp16 training's dynamic loss scale: exact when nothing overflows, an overflow skips one update and
halves the scale, the scale grows back, a resume goes on with it, and fp16 is refused on a CPU.

CPUs have no fp16 LSTM kernels, so these tests let the loop treat the CPU as an fp16 device without
fp16 autocast: the scaling arithmetic is the same, in fp32 (the GPU check runs real fp16: bench/gpu.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from rnntool.errors import ConfigError
from rnntool.layers import precision
from rnntool.training import loop, loss_scale
from rnntool.training.checkpoint import load_checkpoint
from rnntool.training.trainer import train

from support.toy_training import CrashAt, make_task, toy_config as cfg

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    monkeypatch.setattr(precision, "FP16_TRAINING_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(loop, "AUTOCAST_DTYPES", {"bf16": torch.bfloat16})  # fp16: the scale alone


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fp16_is_refused_on_a_cpu():
    with pytest.raises(ConfigError, match="fp16 trains on a GPU only .*--precision bf16"):
        train(make_task(0), cfg(max_steps=2, precision="fp16"), run_dir=None)


@pytest.mark.parametrize("settings", [dict(), dict(optimizer="sgd", lr=0.1, clip=0.0)])
def test_a_scale_that_never_overflows_takes_exactly_the_unscaled_updates(fp16_on_cpu, settings):
    plain, scaled = make_task(0), make_task(0)
    a = train(plain, cfg(max_steps=12, **settings), run_dir=None)
    b = train(scaled, cfg(max_steps=12, precision="fp16", **settings), run_dir=None)
    assert same_weights(plain.model, scaled.model)  # powers of two: scaling and unscaling are exact
    assert a.best_metrics == b.best_metrics and a.loss_scale is None
    assert b.loss_scale == {"scale": 2.0 ** 16, "good_steps": 12, "overflows": 0}


def test_accumulated_batches_are_scaled_per_token_not_per_sum(fp16_on_cpu, monkeypatch):
    """With --accumulate the earlier batches' gradients wait for the step's token count; scaled, they must
    not be a summed loss times the scale (that overflows fp16 where the mean fits). At 2**61 the mean's
    gradient norm fits fp32's squares, a 28-token sum's does not."""
    monkeypatch.setattr(loss_scale, "INITIAL_SCALE", 2.0 ** 61)
    plain, scaled = make_task(0), make_task(0)
    train(plain, cfg(max_steps=8, accumulate=3, clip=0.5), run_dir=None)
    b = train(scaled, cfg(max_steps=8, accumulate=3, clip=0.5, precision="fp16"), run_dir=None)
    assert b.loss_scale["overflows"] == 0
    for (name, x), y in zip(plain.model.state_dict().items(), scaled.model.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6, msg=name)  # the same step, up to rounding


def test_an_overflow_skips_that_update_and_halves_the_scale(fp16_on_cpu, monkeypatch):
    # fp32's range ends near 2**128, and the gradient norm squares: above about 2**60 the norm overflows
    monkeypatch.setattr(loss_scale, "INITIAL_SCALE", 2.0 ** 70)
    task = make_task(0)
    snapshots = [{k: v.clone() for k, v in task.model.state_dict().items()}]

    class Snapshot:
        def on_step(self, info):
            snapshots.append({k: v.clone() for k, v in task.model.state_dict().items()})

    result = train(task, cfg(max_steps=30, precision="fp16"), run_dir=None, callbacks=[Snapshot()])
    s = result.loss_scale
    assert 5 <= s["overflows"] < 30 and s["scale"] == 2.0 ** (70 - s["overflows"])
    assert s["good_steps"] == 30 - s["overflows"]
    assert result.skipped_steps == 0 and result.stop_reason == "max_steps"  # not counted as non-finite
    unchanged = [all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(snapshots, snapshots[1:])]
    assert unchanged == [True] * s["overflows"] + [False] * (30 - s["overflows"])  # the overflows came first
    assert all(bool(torch.isfinite(p).all()) for p in task.model.parameters())
    assert math.isfinite(result.best_metrics["loss"])


def test_a_nan_loss_is_still_a_non_finite_step_not_an_overflow(fp16_on_cpu):
    result = train(make_task(0, nan_at=[(0, 2)]), cfg(max_steps=6, precision="fp16"), run_dir=None)
    assert result.skipped_steps == 1 and result.loss_scale["overflows"] == 0
    assert result.loss_scale == {"scale": 2.0 ** 16, "good_steps": 5, "overflows": 0}  # the skip: not a good step


def test_the_scale_doubles_after_a_run_of_good_steps(fp16_on_cpu, monkeypatch):
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 4)
    result = train(make_task(0), cfg(max_steps=10, precision="fp16"), run_dir=None)
    assert result.loss_scale == {"scale": 2.0 ** 18, "good_steps": 2, "overflows": 0}


def test_resume_goes_on_with_the_scale_bit_for_bit(fp16_on_cpu, monkeypatch, tmp_path):
    monkeypatch.setattr(loss_scale, "INITIAL_SCALE", 2.0 ** 66)  # a few overflows first
    monkeypatch.setattr(loss_scale, "GROWTH_INTERVAL", 5)  # and growth: overflows again later
    config = cfg(max_steps=30, eval_every=6, save_every=4, precision="fp16")
    ref_task = make_task(0)
    ref = train(ref_task, config, run_dir=tmp_path / "ref", model_config={"toy": 1})
    with pytest.raises(KeyboardInterrupt):
        train(make_task(0), config, run_dir=tmp_path / "run", callbacks=[CrashAt(15)], model_config={"toy": 1})
    resumed_task = make_task(0)
    resumed = train(resumed_task, config, run_dir=tmp_path / "run", resume=True, model_config={"toy": 1})
    assert ref.loss_scale == resumed.loss_scale and ref.loss_scale["overflows"] > 0
    assert same_weights(ref_task.model, resumed_task.model)
    a, b = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "run")
    assert all(torch.equal(a.model_state[k], b.model_state[k]) for k in a.model_state)
    assert ref.history and all("loss_scale" in h and "overflow_steps" in h for h in ref.history)
    # resumed in fp32: no scale left over to report
    more = train(make_task(0), cfg(max_steps=32, eval_every=6, save_every=4), run_dir=tmp_path / "run", resume=True,
                 model_config={"toy": 1})
    assert more.loss_scale is None


def test_the_published_metrics_say_where_the_scale_ended(fp16_on_cpu):
    from rnntool.training.publishing import result_metrics

    scaled = result_metrics(train(make_task(0), cfg(max_steps=3, precision="fp16"), run_dir=None))
    assert (scaled["loss_scale"], scaled["overflow_steps"]) == (2.0 ** 16, 0)
    plain = result_metrics(train(make_task(0), cfg(max_steps=3), run_dir=None))
    assert "loss_scale" not in plain and "overflow_steps" not in plain
