"""Memory-layout and checkpointing helpers of the ConvMLP layers.

The network runs channels-last throughout (see
:mod:`convmlp_mm.models.backbones.base`). These helpers are the pieces
that make that work: how a channel MLP's ``nn.Linear`` is computed
(:func:`channel_linear`), the one layout conversion at the outputs
(:class:`ToContiguousNCHW`) and activation checkpointing that keeps
BatchNorm statistics right (:func:`checkpoint_forward`).
"""
import functools
from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch.nn.modules.batchnorm import _BatchNorm

# How the channel MLPs compute their ``nn.Linear`` (``ConvMLP(mlp_impl=)``).
MLP_IMPLS = ('auto', 'linear', 'conv1x1')

# What each path is, in the log line of :func:`describe_mlp_impl`.
_PATH_NAMES = {'linear': 'F.linear', 'conv1x1': '1x1 convolutions'}


@functools.lru_cache(maxsize=None)
def cpu_info() -> Dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (``vendor_id``,
    ``model name``, ``flags``...), or ``{}`` where there is none (not Linux,
    not x86). The one place the project reads that file."""
    info: Dict[str, str] = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first processor's entries
                key, _, value = line.partition(':')
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def _cpu_vendor() -> str:
    """``vendor_id`` of /proc/cpuinfo ('GenuineIntel', 'AuthenticAMD'), or
    '' where there is none."""
    return cpu_info().get('vendor_id', '')


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


# Why ``mlp_impl='auto'`` takes its path, for the log line
# (:func:`describe_mlp_impl`); ``{vendor}`` and ``{mkl}`` filled in there.
_AUTO_REASONS = {
    'device': 'the input is not on the CPU',
    'dtype': 'the input is not fp32, and the 1x1 path is for fp32 only',
    'autocast': ('CPU autocast is on, where F.linear already runs in oneDNN '
                 'and was the faster'),
    'amd': ('{vendor} CPU with MKL, whose fp32 GEMM ran at half oneDNN\'s '
            'rate; docs/performance.md'),
    'intel': ('GenuineIntel CPU with MKL, whose fp32 GEMM beat oneDNN on the '
              'channel MLPs; docs/performance.md'),
    'other': ('{vendor} CPU {mkl} MKL; the 1x1 path is for AMD CPUs with MKL '
              'only; docs/performance.md'),
}


def auto_mlp_impl(x: torch.Tensor) -> Tuple[str, str]:
    """The path ``mlp_impl='auto'`` takes for the channel MLPs' input ``x``
    and why, as ``(impl, reason key)``: ``'conv1x1'`` for fp32 on a CPU
    outside autocast where :func:`blas_is_slow_here`, ``'linear'``
    otherwise. Runs at every channel MLP call: no strings built here."""
    if x.device.type != 'cpu':
        return 'linear', 'device'
    if x.dtype != torch.float32:
        return 'linear', 'dtype'
    if torch.is_autocast_enabled('cpu'):
        return 'linear', 'autocast'
    if blas_is_slow_here():
        return 'conv1x1', 'amd'
    return 'linear', 'other'


def describe_mlp_impl(impl: str, x: torch.Tensor) -> str:
    """One line naming the path the channel MLPs take for input ``x`` with
    ``mlp_impl=impl``, and why; the backbone logs it at its first
    forward."""
    if impl == 'auto':
        impl, key = auto_mlp_impl(x)
        vendor = _cpu_vendor() or 'unknown'
        mkl = torch.backends.mkl.is_available()
        if key == 'other' and vendor == 'GenuineIntel' and mkl:
            key = 'intel'
        why = "mlp_impl='auto': " + _AUTO_REASONS[key].format(
            vendor=vendor, mkl='with' if mkl else 'without')
    else:
        why = f"mlp_impl='{impl}' set explicitly"
    return f'channel MLPs: {_PATH_NAMES[impl]} ({why})'


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
    was measured faster (:func:`auto_mlp_impl`): fp32 on CPU outside
    autocast, on a CPU where MKL's fp32 GEMM runs at half oneDNN's rate
    (:func:`blas_is_slow_here`: AMD). On Intel CPUs, under bf16 autocast
    (where ``F.linear`` already goes to oneDNN and was the faster of the
    two) and on GPUs it is the plain ``F.linear``. The choice is fixed per
    machine (not timed at run time), so a run and its resumption on the same
    machine compute alike; the backbone logs it (:func:`describe_mlp_impl`).
    """
    if impl == 'auto':
        impl = auto_mlp_impl(x)[0]
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
