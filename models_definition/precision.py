"""Mixed precision for forward passes, one rule for training and inference.

CUDA: float16 autocast (training adds a GradScaler). CPU: bfloat16 autocast where the CPU has bf16 matrix
instructions (AVX512-BF16 or AMX, as oneDNN reports them); elsewhere, and when turned off, float32. bfloat16
keeps float32's exponent range, so a CPU run needs no loss scaling. Measured on this project's 2-core CPU
(AVX512-BF16): training 1.5-1.6x with the same loss (2.1x with the training crops in memory), inference
1.7-3.0x batched (benchmarks/README.md).
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from typing import ContextManager

import torch


@lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 matrix products natively on this CPU (else autocast would emulate them)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or a non-oneDNN build
        return False


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The dtype forward passes on ``device`` run in with mixed precision ``enabled``; None: float32."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool = True) -> ContextManager:
    """The autocast context :func:`autocast_dtype` chooses (a no-op for float32)."""
    dtype = autocast_dtype(device, enabled)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
