"""Optimizer wrappers a config can name (mmengine's ``OPTIM_WRAPPERS``)."""
from convmlp_mm.engine.optimizers.cpu_amp_optim_wrapper import (
    CPUAmpOptimWrapper,
)

__all__ = ['CPUAmpOptimWrapper']
