"""Model wrappers a config can name (mmengine's ``MODEL_WRAPPERS``)."""
from .cpu_distributed import CPUDistributedDataParallel

__all__ = ['CPUDistributedDataParallel']
