"""``--amp`` without a GPU: :class:`CPUAmpOptimWrapper`.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU. ``tools/train.py --amp``
picks this one on a machine without CUDA and a config it dumps names it
(``optim_wrapper=dict(type='CPUAmpOptimWrapper', ...)``).
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on CPU: bfloat16 autocast around the forward pass.

    No loss scaling: bfloat16 has float32's exponent range, and torch's CPU
    autocast supports no other low-precision type.
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield
