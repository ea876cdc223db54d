"""Every engine class a config of this project, or a config our tools dump,
can name: hooks, optimizer wrappers and model wrappers. Importing this
package registers them in mmengine's registries, which mmdet's and mmseg's
fall back to."""
from .hooks import (
    PREEMPTED_EXIT_CODE,
    AtomicCheckpointHook,
    NonFiniteLossError,
    NonFiniteLossHook,
    NonFiniteMetricError,
    NonFiniteMetricHook,
    PreemptionHook,
    RandomStateHook,
)
from .model_wrappers import CPUDistributedDataParallel
from .optimizers import CPUAmpOptimWrapper
from .runner import (
    ConvMLPRunner,
    ResumableEpochBasedTrainLoop,
    ResumableIterBasedTrainLoop,
)

__all__ = [
    'AtomicCheckpointHook', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'ConvMLPRunner', 'NonFiniteLossError', 'NonFiniteLossHook',
    'NonFiniteMetricError', 'NonFiniteMetricHook', 'PREEMPTED_EXIT_CODE',
    'PreemptionHook',
    'RandomStateHook', 'ResumableEpochBasedTrainLoop',
    'ResumableIterBasedTrainLoop'
]
