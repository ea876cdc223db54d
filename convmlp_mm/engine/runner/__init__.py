"""Training loops a config can name (registered in mmengine's ``LOOPS``)
and the Runner the tools build (``RUNNERS``)."""
from convmlp_mm.engine.runner.convmlp_runner import (
           ConvMLPRunner,
           building_for_training,
)
from convmlp_mm.engine.runner.loops import (
           ResumableEpochBasedTrainLoop,
           ResumableIterBasedTrainLoop,
)

__all__ = ['ConvMLPRunner', 'ResumableEpochBasedTrainLoop',
           'ResumableIterBasedTrainLoop', 'building_for_training']
