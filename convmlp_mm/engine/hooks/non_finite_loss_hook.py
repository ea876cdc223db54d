"""Stop at the first NaN or infinite loss: :class:`NonFiniteLossHook`.

Training stops before any checkpoint of the diverged weights is written, with
a message naming the iteration and the last good checkpoint. Configs name it
as ``custom_hooks = [dict(type='NonFiniteLossHook')]``.
"""
import math
from typing import Mapping, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first NaN or infinite loss.

    Runs before ``CheckpointHook`` (priority ``ABOVE_NORMAL`` vs
    ``VERY_LOW``), so the diverged weights are never saved and the last
    checkpoint on disk is the last good one. mmdet's ``CheckInvalidLossHook``
    does a similar check every 50 iterations with a bare ``assert``; this one
    checks every iteration (one ``isfinite`` per loss), works for mmseg too,
    and says where to resume from.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[Mapping] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        bad = {}
        for name, value in outputs.items():
            if 'loss' not in name:
                continue
            value = float(value.detach()) if hasattr(value, 'detach') \
                else float(value)
            if not math.isfinite(value):
                bad[name] = value
        if not bad:
            return
        last = runner.message_hub.get_info('last_ckpt')
        losses = ', '.join(f'{k}={v}' for k, v in bad.items())
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        message = (
            f'Non-finite loss at {where}: {losses}. Training '
            'stopped before saving these weights. ' +
            (f'The last good checkpoint is {last}. Enable gradient clipping '
             '(optim_wrapper.clip_grad) and continue with --resume '
             f'{last}, or lower the learning rate and start from its '
             f'weights with --cfg-options load_from={last} (a resumed run '
             'keeps the saved learning rate).'
             if last else 'No checkpoint was saved yet. Lower the learning '
             'rate or enable gradient clipping (optim_wrapper.clip_grad) and '
             'start again.'))
        runner.logger.error(message)
        raise NonFiniteLossError(message)
