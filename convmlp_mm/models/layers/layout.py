"""Memory-layout and checkpointing helpers of the ConvMLP layers.

The network runs channels-last throughout (see
:mod:`convmlp_mm.models.backbones.convmlp`). These helpers are the pieces
that make that work: how a channel MLP's ``nn.Linear`` is computed
(:func:`channel_linear`), the one layout conversion at the outputs
(:class:`ToContiguousNCHW`) and activation checkpointing that keeps
BatchNorm statistics right (:func:`checkpoint_forward`).
"""
import functools
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch.nn.modules.batchnorm import _BatchNorm

# How the channel MLPs compute their ``nn.Linear`` (``ConvMLP(mlp_impl=)``).
MLP_IMPLS = ('auto', 'linear', 'conv1x1')


def _cpu_vendor() -> str:
    """``vendor_id`` of /proc/cpuinfo ('GenuineIntel', 'AuthenticAMD'), or
    '' where there is none (not Linux, not x86)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('vendor_id'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


@functools.lru_cache(maxsize=None)
def blas_is_slow_here() -> bool:
    """Whether fp32 ``F.linear`` was measured at about half oneDNN's rate on
    this kind of CPU: MKL (PyTorch's x86 BLAS) on an AMD CPU, for which MKL
    does not dispatch its AVX-512 kernels. On the project's AMD EPYC
    machines ``F.linear`` ran at 194-207 GFLOP/s and oneDNN at 411-431; on
    its Intel Xeon MKL ran at 291-364 against oneDNN's 264-311, and the
    channel MLPs' forward + backward at 7x7 and 14x14 was 1.2-1.6x faster
    through MKL (docs/performance.md)."""
    return bool(torch.backends.mkl.is_available()) and \
        _cpu_vendor() == 'AuthenticAMD'


def channel_linear(fc: nn.Linear, x: torch.Tensor,
                   impl: str = 'auto') -> torch.Tensor:
    """``fc(x)`` over the channels of an NHWC tensor.

    ``impl='conv1x1'`` computes the same product as a 1x1 convolution of the
    NCHW view (channels-last memory: no copy), which oneDNN runs, while
    ``F.linear`` goes to the BLAS. Results agree to float rounding and the
    parameters stay the Linear's. ``'linear'`` always computes ``F.linear``
    with the Linear's weight and bias (on the 2-D view of a 4-D input, not
    through ``fc.forward``: a hook or subclass of the Linear is not called).
    ``'auto'`` (the backbone's default) takes the convolution only where it
    was measured faster: fp32 on CPU outside autocast, on a CPU where MKL's
    fp32 GEMM runs at half oneDNN's rate (:func:`blas_is_slow_here`: AMD).
    On Intel CPUs, under bf16 autocast (where ``F.linear`` already goes to
    oneDNN and was the faster of the two) and on GPUs it is the plain
    ``F.linear``. The choice is fixed per machine (not timed at run time),
    so a run and its resumption on the same machine compute alike.
    """
    if impl == 'auto':
        impl = 'conv1x1' if (x.device.type == 'cpu'
                             and x.dtype == torch.float32
                             and not torch.is_autocast_enabled('cpu')
                             and blas_is_slow_here()) \
            else 'linear'
    if x.dim() != 4:
        return fc(x)
    if impl == 'linear':
        # F.linear folds the leading dimensions into one GEMM itself; doing
        # it here (a view: the NHWC tensor is contiguous) also gives the
        # ONNX export a 2-D Gemm with its bias fused, where a 4-D MatMul
        # would keep a separate Add (docs/deployment.md).
        out = F.linear(x.reshape(-1, x.shape[-1]), fc.weight, fc.bias)
        return out.view(*x.shape[:-1], fc.out_features)
    return F.conv2d(x.permute(0, 3, 1, 2), fc.weight[:, :, None, None],
                    fc.bias).permute(0, 2, 3, 1)


class ToContiguousNCHW(torch.autograd.Function):
    """``x.contiguous()`` whose backward returns the gradient channels-last.

    A neck hands back contiguous NCHW gradients for the emitted levels. Added
    as they are to the trunk's channels-last gradient, they would make the sum
    NCHW, and every kernel upstream (max-pool, BatchNorm, convolution) would
    reorder it again; one conversion here, the mirror of the forward copy,
    keeps the backward pass in one layout."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class _FrozenBatchNormStats:
    """Keep BatchNorm running statistics still while a checkpointed block is
    recomputed in the backward pass, so ``with_cp`` updates them exactly once
    per step, as without checkpointing. The recomputation must run the same
    ops as the first pass, so the buffers are restored afterwards rather than
    kept from updating."""

    def __init__(self, module: nn.Module):
        self.buffers = [b for m in module.modules()
                        if isinstance(m, _BatchNorm) for b in m.buffers()]

    def __enter__(self):
        self.saved = [b.clone() for b in self.buffers]

    def __exit__(self, *exc):
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, self.saved):
                buffer.copy_(saved)


def checkpoint_forward(module: nn.Module,
                       inner_forward: Callable[[torch.Tensor], torch.Tensor],
                       x: torch.Tensor) -> torch.Tensor:
    """``inner_forward(x)`` under activation checkpointing, as mmpretrain's
    and mmdet's ``with_cp`` blocks do, with two differences.

    Non-reentrant checkpointing also works when only the parameters need
    grad, as for the tokenizer, whose input is the image and whose stride-2
    activations are the largest in the network. And ``module``'s BatchNorm
    statistics are restored after the recomputation (see
    :class:`_FrozenBatchNormStats`). Without grad (inference, or a frozen
    block) it is a plain call.
    """
    if not torch.is_grad_enabled() or not (
            x.requires_grad or
            any(p.requires_grad for p in module.parameters())):
        return inner_forward(x)
    calls = []

    def forward(inp: torch.Tensor) -> torch.Tensor:
        calls.append(None)
        if len(calls) == 1:
            return inner_forward(inp)
        with _FrozenBatchNormStats(module):
            return inner_forward(inp)

    return cp.checkpoint(forward, x, use_reentrant=False)
