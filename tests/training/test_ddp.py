"""DistributedDataParallel: 2 CPU processes under torchrun (gloo) on the toy task.

One torchrun launch (start-up dominates) runs this file as a worker that trains several times:
an uninterrupted run (train() creates and destroys the process group, as under the CLI), then in a
group the worker owns: a run that crashes on every rank at step 8 and is resumed, and a run whose
shards have unequal, unknown batch counts. On rank 1 every writer is patched to fail, which proves
only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()


def _cfg(**kw):
    from rnntool.training.config import TrainConfig

    return TrainConfig(**{"device": "cpu", "seed": 0, "lr": 0.01, "epochs": None, "threads": 1, **kw})


def _worker(out: Path) -> None:
    import torch
    import torch.distributed as dist

    import rnntool.training.checkpoint as checkpoint
    import rnntool.training.loop as loop
    from rnntool.training.checkpoint import load_checkpoint
    from rnntool.training.trainer import train
    from support.toy_training import make_task

    rank = int(os.environ["RANK"])
    if rank != 0:
        def forbidden(*a, **k):
            raise AssertionError(f"rank {rank} tried to write")

        def forbidden_log(self, *a, **k):
            if self.path is not None:
                forbidden()

        checkpoint.CheckpointWriter.save = forbidden
        loop.MetricsLog.append = forbidden_log
        loop.MetricsLog.truncate_after = forbidden_log
        loop.write_run_info = forbidden

    report: dict = {"rank": rank}
    settings = dict(max_steps=10, eval_every=4, save_every=3, warmup_steps=3, schedule="cosine")
    full_task = make_task(0)
    full = train(full_task, _cfg(**settings), run_dir=out / "full", model_config={"toy": 1})
    report["full"] = {"steps": full.steps, "stop": full.stop_reason, "is_main": full.is_main,
                      "world": full.world_size, "history": [h["step"] for h in full.history]}
    report["full_weights_sum"] = float(sum(p.double().sum() for p in full_task.model.state_dict().values()))
    report["group_destroyed"] = not dist.is_initialized()  # train() made the group, so it removed it

    # The rest runs in a process group the caller owns (train() uses it and leaves it alone); a
    # file store, because re-joining torchrun's own store in the same process is not supported.
    dist.init_process_group("gloo", init_method=f"file://{out / 'pg-store'}", rank=rank, world_size=2)

    class CrashingTask(type(full_task)):
        def loss(self, model, batch):
            if self.loss_calls == 7:  # the 8th step, on every rank: last checkpoint is at step 6
                raise KeyboardInterrupt("simulated crash")
            return super().loss(model, batch)

    crashing = make_task(0)
    crashing.__class__ = CrashingTask
    try:
        train(crashing, _cfg(**settings), run_dir=out / "crash", model_config={"toy": 1})
    except KeyboardInterrupt:
        report["crashed"] = True
    resumed_task = make_task(0)
    resumed = train(resumed_task, _cfg(**settings), run_dir=out / "crash", resume=True, model_config={"toy": 1})
    report["resumed"] = {"steps": resumed.steps, "history": [h["step"] for h in resumed.history]}
    if rank == 0:
        a, b = load_checkpoint(out / "full"), load_checkpoint(out / "crash")
        report["same_last_weights"] = all(torch.equal(a.model_state[k], b.model_state[k]) for k in a.model_state)
        report["same_best_weights"] = all(torch.equal(v, resumed_task.model.state_dict()[k])
                                          for k, v in full_task.model.state_dict().items())
        report["rank_files"] = sorted(p.name for p in b.path.iterdir())

    class UnevenTask(type(full_task)):  # rank 1 has one batch fewer and nobody knows the counts
        def num_batches(self, epoch):
            return None

        def batches(self, epoch):
            items = list(super().batches(epoch))
            return iter(items[:-1] if self.rank == 1 else items)

    uneven = make_task(0)
    uneven.__class__ = UnevenTask
    result = train(uneven, _cfg(epochs=2), run_dir=None)
    report["uneven"] = {"steps": result.steps, "stop": result.stop_reason, "epochs": result.epochs}

    class UnequalTokens(type(full_task)):  # rank 1's batches hold fewer tokens than rank 0's
        def loss(self, model, batch):
            if self.rank == 1:
                batch = {**batch, "rows": batch["rows"][:, :-3]}
            return super().loss(model, batch)

    accumulating = make_task(0)
    accumulating.__class__ = UnequalTokens
    train(accumulating, _cfg(max_steps=4, accumulate=3), run_dir=None)
    report["accumulate_weights_sum"] = float(sum(p.double().sum()
                                                 for p in accumulating.model.state_dict().values()))
    report["group_kept"] = dist.is_initialized()
    dist.destroy_process_group()
    (out / f"report-{rank}.json").write_text(json.dumps(report))


def test_ddp_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE.parents[2]), str(HERE.parents[1])])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(HERE), str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers (their own session)
        out, err = proc.communicate()
        pytest.fail("torchrun did not finish within 240 s (a rank deadlocked?):\n" + err[-3000:])
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    reports = [json.loads((tmp_path / f"report-{rank}.json").read_text()) for rank in (0, 1)]
    for rep in reports:
        assert rep["full"]["steps"] == 10 and rep["full"]["stop"] == "max_steps" and rep["full"]["world"] == 2
        assert rep["full"]["history"] == [4, 8, 10]  # eval results reached every rank
        assert rep["crashed"] and rep["resumed"] == {"steps": 10, "history": [4, 8, 10]}
        assert rep["uneven"] == {"steps": 10, "stop": "epochs", "epochs": 2}  # 2 epochs x min(6, 5) batches
    assert all(rep["group_destroyed"] and rep["group_kept"] for rep in reports)
    assert [rep["full"]["is_main"] for rep in reports] == [True, False]
    assert reports[0]["full_weights_sum"] == reports[1]["full_weights_sum"]  # ranks stayed in sync
    # --accumulate with unequal token counts per rank: still one model (gradients normalised before the sync)
    assert reports[0]["accumulate_weights_sum"] == reports[1]["accumulate_weights_sum"]
    main = reports[0]
    assert main["same_last_weights"] and main["same_best_weights"]  # resume restored every rank's state
    assert "rank1.safetensors" in main["rank_files"] and "rank1.json" in main["rank_files"]
    run = tmp_path / "full"
    evals = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert evals == [4, 8, 10]  # written once (rank 0), not once per rank


if __name__ == "__main__":  # the torchrun worker
    sys.path.insert(0, str(HERE.parent))
    _worker(Path(sys.argv[1]))


def test_more_processes_than_gpus_is_a_clear_error():
    """On a GPU each torchrun process takes cuda:LOCAL_RANK; a second process on a one-GPU machine once died
    of CUDA's "invalid device ordinal" (seen on a lent H200)."""
    from rnntool.errors import ConfigError
    from rnntool.training.distributed import check_gpu_per_process

    check_gpu_per_process(0, 2, 1)
    check_gpu_per_process(1, 2, 2)
    with pytest.raises(ConfigError, match=r"2 processes on this machine but it has 1 GPU: .*--nproc-per-node 1"):
        check_gpu_per_process(1, 2, 1)
