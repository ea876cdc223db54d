"""Hooks a config can name (registered in mmengine's ``HOOKS``, which mmdet's
and mmseg's registries fall back to)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .non_finite_metric_hook import NonFiniteMetricError, NonFiniteMetricHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'NonFiniteMetricError', 'NonFiniteMetricHook']
