"""Every engine class a config of this project, or a config our tools dump,
can name: hooks, optimizer wrappers and model wrappers. Importing this
package registers them in mmengine's registries, which mmdet's and mmseg's
fall back to."""
from .hooks import (
    AtomicCheckpointHook,
    NonFiniteLossError,
    NonFiniteLossHook,
    NonFiniteMetricError,
    NonFiniteMetricHook,
)
from .model_wrappers import CPUDistributedDataParallel
from .optimizers import CPUAmpOptimWrapper
from .runner import ConvMLPRunner

__all__ = [
    'AtomicCheckpointHook', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'ConvMLPRunner', 'NonFiniteLossError', 'NonFiniteLossHook',
    'NonFiniteMetricError', 'NonFiniteMetricHook'
]
