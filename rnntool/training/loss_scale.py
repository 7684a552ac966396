"""fp16 training's dynamic loss scale (``train --precision fp16``), as torch.amp.GradScaler and apex do it.

float16 holds numbers down to about 6e-8: most gradients of a loss averaged over thousands of tokens are
smaller and would vanish. So the loss is multiplied by ``scale`` before backward, and the gradients divided
by it before clipping and the update. A step whose scaled gradients overflow (a non-finite norm while the
loss itself is finite) is skipped and the scale halved; after ``GROWTH_INTERVAL`` good steps in a row it
doubles again. Powers of two only, so scaling and unscaling are exact: in fp32 arithmetic a scaled run
with no overflow takes the same updates as an unscaled one (a test checks it, the CPU standing in for a
GPU without fp16 autocast). A step skipped for a non-finite loss leaves the scale and its count alone.

The training loop keeps the scale in its resumable state (``LoopState.loss_scale``), so ``--resume``
goes on with the scale it had. Plain Python: the loop does the tensor work.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SCALE = 2.0 ** 16  # torch.amp.GradScaler's default
GROWTH_INTERVAL = 2000  # good steps in a row before the scale doubles (GradScaler's default)
MIN_SCALE = 2.0 ** -24  # below this an overflow is not the scale's fault: the step counts as non-finite


@dataclass
class DynamicLossScale:
    """The scale and its counters; JSON as ``to_dict()`` (in the loop's resumable state)."""

    scale: float = INITIAL_SCALE
    good_steps: int = 0  # updates taken since the scale last changed
    overflows: int = 0  # steps skipped because the scaled gradients overflowed (this run, resumes included)

    def update(self, overflowed: bool) -> None:
        """After a step: halve on overflow, double after GROWTH_INTERVAL good steps in a row."""
        if overflowed:
            self.overflows += 1
            self.scale = max(self.scale / 2.0, MIN_SCALE)
            self.good_steps = 0
            return
        self.good_steps += 1
        if self.good_steps >= GROWTH_INTERVAL:
            self.scale *= 2.0
            self.good_steps = 0

    @property
    def exhausted(self) -> bool:
        """True at the floor: an overflow there means the gradients are not finite at any scale."""
        return self.scale <= MIN_SCALE

    def to_dict(self) -> dict:
        return {"scale": self.scale, "good_steps": self.good_steps, "overflows": self.overflows}

    @classmethod
    def from_dict(cls, d: dict | None) -> "DynamicLossScale":
        if not d:
            return cls(scale=INITIAL_SCALE)
        return cls(scale=float(d.get("scale", INITIAL_SCALE)), good_steps=int(d.get("good_steps", 0)),
                   overflows=int(d.get("overflows", 0)))


__all__ = ["GROWTH_INTERVAL", "INITIAL_SCALE", "MIN_SCALE", "DynamicLossScale"]
