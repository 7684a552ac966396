"""DistributedDataParallel helpers: the same command scales out under ``torchrun``.

    torchrun --nproc-per-node 2 -m rnntool train lm ...     # gloo on CPU, nccl on GPU

``torchrun`` sets RANK / WORLD_SIZE / LOCAL_RANK (+ MASTER_ADDR/PORT); ``setup(device)`` joins the
process group when WORLD_SIZE > 1 and is a no-op otherwise. Everything that crosses ranks here goes
as tensors (no pickled objects): small JSON via ``broadcast_json``, per-rank checkpoint state via
``gather_bytes``. CLI code can call ``env_rank()`` before training (no torch import, no process
group) e.g. to quiet the console on ranks other than 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


def env_rank() -> int:
    """This process's global rank from the environment (0 when not launched by torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def env_world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """True on rank 0 and whenever training is not distributed (usable before ``setup``)."""
    return env_rank() == 0


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> DistContext:
    """Join the process group from torchrun's environment (no-op when WORLD_SIZE is 1)."""
    import torch.distributed as dist

    world = env_world_size()
    if world <= 1:
        return DistContext()
    from rnntool.errors import TrainingError

    if not dist.is_available():
        raise TrainingError("this torch build has no torch.distributed; run without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    owns = False
    if not dist.is_initialized():
        if device_type == "cuda":
            import torch

            check_gpu_per_process(local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", world)),
                                  torch.cuda.device_count())
            torch.cuda.set_device(local_rank)
        try:
            dist.init_process_group(backend=backend)
        except (ValueError, RuntimeError) as e:
            raise TrainingError(
                f"cannot join the process group ({e}); launch with torchrun --nproc-per-node N"
            ) from None
        owns = True
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend(), owns)


def check_gpu_per_process(local_rank: int, local_world: int, gpus: int) -> None:
    """Each torchrun process on a machine trains on its own GPU (``cuda:LOCAL_RANK``): refuse more processes
    than GPUs with what to do instead (rather than CUDA's "invalid device ordinal")."""
    from rnntool.errors import ConfigError

    if local_rank >= gpus:
        raise ConfigError(f"torchrun started {local_world} processes on this machine but it has {gpus} "
                          f"GPU{'s' if gpus != 1 else ''}: one process per GPU (--nproc-per-node {gpus}), "
                          "or --device cpu")


def teardown(ctx: DistContext) -> None:
    import torch.distributed as dist

    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def comm_device(ctx: DistContext):
    """The device collectives of this group use (the current GPU for nccl, else CPU)."""
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")


def all_reduce_sum(tensor, ctx: DistContext):
    """In-place sum across ranks (no-op without DDP); returns the tensor."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min_int(value: int, ctx: DistContext) -> int:
    if not ctx.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.int64, device=comm_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def broadcast_json(obj, ctx: DistContext, src: int = 0):
    """Rank ``src``'s JSON-able ``obj`` on every rank (others pass anything, e.g. None)."""
    if not ctx.enabled:
        return obj
    import torch
    import torch.distributed as dist

    dev = comm_device(ctx)
    data = json.dumps(obj, allow_nan=True).encode("utf-8") if ctx.rank == src else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=dev)
    dist.broadcast(size, src)
    n = int(size.item())
    buf = (torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev) if ctx.rank == src
           else torch.empty(n, dtype=torch.uint8, device=dev))
    if n:
        dist.broadcast(buf, src)
    return json.loads(buf.cpu().numpy().tobytes().decode("utf-8")) if n else None


def gather_bytes(data: bytes, ctx: DistContext) -> list[bytes] | None:
    """Every rank's ``data`` on rank 0 (a list indexed by rank); None on the other ranks."""
    if not ctx.enabled:
        return [data]
    import torch
    import torch.distributed as dist

    dev = comm_device(ctx)
    size = torch.tensor([len(data)], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(size) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    longest = max(lengths)
    buf = torch.zeros(longest, dtype=torch.uint8, device=dev)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev)
    bufs = [torch.empty_like(buf) for _ in range(ctx.world_size)]
    dist.all_gather(bufs, buf)  # all_gather, not gather: nccl has no gather on older torch
    if ctx.rank != 0:
        return None
    return [b[:n].cpu().numpy().tobytes() for b, n in zip(bufs, lengths)]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()
