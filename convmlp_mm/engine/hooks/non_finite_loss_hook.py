"""Stop at the first NaN or infinite loss: :class:`NonFiniteLossHook`.

Training stops before any checkpoint of the diverged weights is written, with
a message naming the iteration and the last good checkpoint. Configs name it
as ``custom_hooks = [dict(type='NonFiniteLossHook')]``.

The loss alone is not enough: the update after the last finite loss can
break the weights, and a checkpoint saved right then would hold them. So
the weights are checked too, when a checkpoint is about to be written, and
"the last good checkpoint" is the newest file on disk whose weights are
all finite and none above ``LARGEST_SANE_WEIGHT`` (1e6) in magnitude
(BatchNorm running statistics aside): a run on its way to a NaN passes
through finite but absurd weights (1e30), and a checkpoint of those is no
place to resume from.
"""
import glob
import math
import os.path as osp
from typing import Mapping, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from convmlp_mm.checkpoint import (
    LARGEST_SANE_WEIGHT,
    PARTIAL_SUFFIX,
    extract_state_dict,
    non_finite_keys,
    oversized_keys,
    safe_torch_load,
)
from convmlp_mm.errors import CheckpointError, NonFiniteLossError


def last_finite_checkpoint(runner) -> Optional[str]:
    """The newest checkpoint in the run's checkpoint folder whose weights
    are all finite and sane (see the module's docstring; each candidate is
    read, newest first)."""
    last = runner.message_hub.get_info('last_ckpt')
    folder = osp.dirname(last) if last else runner.work_dir
    files = [f for f in glob.glob(osp.join(glob.escape(folder), '*.pth'))
             if not f.endswith(PARTIAL_SUFFIX)]
    for path in sorted(files, key=osp.getmtime, reverse=True):
        try:
            state = extract_state_dict(safe_torch_load(path, path), path)
        except (CheckpointError, ValueError):
            continue
        if not non_finite_keys(state) and not oversized_keys(state):
            return path
    return None


def _where(runner, batch_idx: Optional[int] = None) -> str:
    where = f'iteration {runner.iter + 1}'
    if isinstance(runner.train_loop, EpochBasedTrainLoop) and \
            batch_idx is not None:
        where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
    return where


def _advice(last: Optional[str]) -> str:
    if not last:
        return ('No checkpoint with good weights (all finite, none above '
                f'{LARGEST_SANE_WEIGHT:g} in magnitude) was saved yet. Lower '
                'the learning rate or enable gradient clipping '
                '(optim_wrapper.clip_grad) and start again.')
    return (f'The last good checkpoint is {last}. Enable gradient clipping '
            '(optim_wrapper.clip_grad) and continue with --resume '
            f'{last}, or lower the learning rate and start from its '
            f'weights with --cfg-options load_from={last} (a resumed run '
            'keeps the saved learning rate).')


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
        losses = ', '.join(f'{k}={v}' for k, v in bad.items())
        message = (f'Non-finite loss at {_where(runner, batch_idx)}: '
                   f'{losses}. Training stopped before saving these '
                   'weights. ' + _advice(last_finite_checkpoint(runner)))
        runner.logger.error(message)
        raise NonFiniteLossError(message)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write weights that hold NaN or inf (the loss that
        preceded them can still have been finite)."""
        state = checkpoint.get('state_dict') or {}
        bad = non_finite_keys(state)
        if not bad:
            return
        message = (
            f'Non-finite weights at {_where(runner)}: {len(bad)} of '
            f'{len(state)} tensors hold NaN or inf (e.g. '
            f'{", ".join(bad[:3])}) although the loss was finite: the last '
            'update diverged. Training stopped before saving them. ' +
            _advice(last_finite_checkpoint(runner)))
        runner.logger.error(message)
        raise NonFiniteLossError(message)
