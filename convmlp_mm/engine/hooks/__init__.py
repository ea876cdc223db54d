"""Hooks a config can name (registered in mmengine's ``HOOKS``, which mmdet's
and mmseg's registries fall back to)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .non_finite_metric_hook import NonFiniteMetricError, NonFiniteMetricHook
from .preemption_hook import PREEMPTED_EXIT_CODE, PreemptionHook
from .random_state_hook import RandomStateHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'NonFiniteMetricError', 'NonFiniteMetricHook',
           'PREEMPTED_EXIT_CODE', 'PreemptionHook', 'RandomStateHook']
