"""The number format a trained model runs in: `--precision` of the decoding commands (`translate`, `generate`).

    model = for_inference(model, "int8", device)      # a model in eval mode, after loading its weights

- ``fp32``: as trained (the weights are stored in fp32).
- ``bf16``: the weights cast to bfloat16; each step's log-probabilities are still computed in fp32.
  Faster on CPUs with bf16 instructions (AVX-512 BF16, AMX) and on GPUs.
- ``fp16``: the weights cast to float16; GPU only (CPUs lack fast fp16 kernels).
- ``int8``: dynamic quantization (``torch.ao.quantization.quantize_dynamic``): the weights of the
  linear and LSTM/GRU layers stored as int8, activations quantized on the fly per batch, the products
  summed in int32 (VNNI on x86). CPU only. Embeddings, attention scores and the softmax stay fp32.

None of them is bit-for-bit the fp32 model: bench/opennmt_side_by_side.py reports each one's speed and
BLEU against fp32 on the same model. Training has its own ``--precision`` (bf16 or fp16 autocast, the
weights kept in fp32; fp16 on a GPU with a loss scale), a part of the same set of choices (one set of
choices per option name).
"""

from __future__ import annotations

import warnings

from rnntool.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # every command's --precision draws from these
TRAIN_PRECISIONS = ("fp32", "bf16", "fp16")  # fp16: GPU only, with a dynamic loss scale
INFERENCE_PRECISIONS = PRECISIONS
FP16_TRAINING_DEVICES = ("cuda",)  # CPUs lack fp16 RNN kernels: bf16 is theirs


def check_training_device(precision: str, device_type: str) -> None:
    """ConfigError when ``train --precision`` cannot train on ``device_type`` (fp16 off a GPU)."""
    if precision == "fp16" and device_type not in FP16_TRAINING_DEVICES:
        raise ConfigError("--precision fp16 trains on a GPU only (--device cuda); on a CPU use --precision bf16")


def for_inference(model, precision: str, device):
    """``model`` (eval mode, on ``device``) in ``precision``: itself for fp32, else a converted model."""
    import torch
    from torch import nn

    if precision not in INFERENCE_PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(INFERENCE_PRECISIONS)} (got {precision!r})")
    device = torch.device(device)
    if precision == "fp32":
        return model
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("--precision fp16 needs a GPU (--device cuda); on a CPU use bf16 or int8")
        return model.to(torch.float16)
    if device.type != "cpu":
        raise ConfigError("--precision int8 (dynamic quantization) runs on the CPU only; use --device cpu, "
                          "or bf16 / fp16 on a GPU")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # pragma: no cover - a torch without the eager quantization API
        raise ConfigError("--precision int8 needs torch.ao.quantization, which this torch lacks; "
                          "use --precision bf16 or fp32") from None
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "qnnpack")):
        raise ConfigError("--precision int8: this torch has no quantized kernels for this CPU; use bf16 or fp32")
    with warnings.catch_warnings():  # the eager API's notice that it is moving to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8).eval()


__all__ = ["INFERENCE_PRECISIONS", "PRECISIONS", "TRAIN_PRECISIONS", "check_training_device", "for_inference"]
