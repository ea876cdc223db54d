"""Every engine class a config of this project, or a config our tools dump,
can name: hooks, optimizer wrappers and model wrappers. Importing this
package registers them in mmengine's registries, which mmdet's and mmseg's
fall back to."""
from convmlp_mm.engine.hooks import (
    PREEMPTED_EXIT_CODE,
    AtomicCheckpointHook,
    NonFiniteLossError,
    NonFiniteLossHook,
    NonFiniteMetricError,
    NonFiniteMetricHook,
    PreemptionHook,
    RandomStateHook,
)
from convmlp_mm.engine.model_wrappers import CPUDistributedDataParallel
from convmlp_mm.engine.optimizers import CPUAmpOptimWrapper
from convmlp_mm.engine.runner import (
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
