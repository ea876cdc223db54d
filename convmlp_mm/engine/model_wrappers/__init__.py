"""Model wrappers a config can name (mmengine's ``MODEL_WRAPPERS``)."""
from convmlp_mm.engine.model_wrappers.cpu_distributed import (
    CPUDistributedDataParallel,
)

__all__ = ['CPUDistributedDataParallel']
