"""Every engine class a config of this project, or a config our tools dump,
can name: hooks, optimizer wrappers, model wrappers, the runner and its
loops, the detection visualizer of ``tools/test.py --show-dir``. Importing
this package registers them in mmengine's registries, which mmdet's and
mmseg's fall back to (the visualizer: in mmdet's).

Starting a run, for the tools: :func:`setup_cpu_distributed` and
:func:`build_runner` (``launch.py``), :func:`keep_freed_cpu_memory`
(``allocator.py``) and :class:`WorkDirLock` (``workdir_lock.py``).
"""
from convmlp_mm.engine.allocator import keep_freed_cpu_memory
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
from convmlp_mm.engine.launch import build_runner, setup_cpu_distributed
from convmlp_mm.engine.model_wrappers import CPUDistributedDataParallel
from convmlp_mm.engine.optimizers import CPUAmpOptimWrapper
from convmlp_mm.engine.runner import (
    ConvMLPRunner,
    ResumableEpochBasedTrainLoop,
    ResumableIterBasedTrainLoop,
)
from convmlp_mm.engine.visualization import (
    DuplicateFreeDetLocalVisualizer,
    detections_to_draw,
    drawn_detections,
)
from convmlp_mm.engine.workdir_lock import WorkDirInUseError, WorkDirLock

__all__ = [
    'AtomicCheckpointHook', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'ConvMLPRunner', 'DuplicateFreeDetLocalVisualizer', 'NonFiniteLossError',
    'NonFiniteLossHook',
    'NonFiniteMetricError', 'NonFiniteMetricHook', 'PREEMPTED_EXIT_CODE',
    'PreemptionHook', 'RandomStateHook', 'ResumableEpochBasedTrainLoop',
    'ResumableIterBasedTrainLoop', 'WorkDirInUseError', 'WorkDirLock',
    'build_runner', 'detections_to_draw', 'drawn_detections',
    'keep_freed_cpu_memory', 'setup_cpu_distributed'
]
