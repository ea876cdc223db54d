"""Hooks a config can name (registered in mmengine's ``HOOKS``, which mmdet's
and mmseg's registries fall back to)."""
from convmlp_mm.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook
from convmlp_mm.engine.hooks.non_finite_loss_hook import (
           NonFiniteLossError,
           NonFiniteLossHook,
)
from convmlp_mm.engine.hooks.non_finite_metric_hook import (
           NonFiniteMetricError,
           NonFiniteMetricHook,
)
from convmlp_mm.engine.hooks.preemption_hook import (
           PREEMPTED_EXIT_CODE,
           PreemptionHook,
)
from convmlp_mm.engine.hooks.random_state_hook import RandomStateHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'NonFiniteMetricError', 'NonFiniteMetricHook',
           'PREEMPTED_EXIT_CODE', 'PreemptionHook', 'RandomStateHook']
