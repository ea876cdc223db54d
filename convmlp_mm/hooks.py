"""Training hooks that make a crash, a kill or a diverging run cheap.

Both are registered in mmengine's ``HOOKS`` (the parent of mmdet's and
mmseg's), so any config that imports ``convmlp_mm`` can name them:

.. code-block:: python

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
    custom_hooks = [dict(type='NonFiniteLossHook')]

* :class:`AtomicCheckpointHook` is mmengine's ``CheckpointHook`` with a
  crash-safe write order. mmengine 0.10.7 deletes the outdated checkpoint
  (``max_keep_ckpts``) *before* writing the new one, writes the new one in
  place with no fsync, and rewrites ``last_checkpoint`` in place: a kill in
  between can leave ``last_checkpoint`` naming a half-written or deleted file,
  and ``--resume`` then fails. Here the new file is written under a
  ``.partial`` name, fsynced and renamed into place, ``last_checkpoint`` is
  replaced the same way, and only then are outdated checkpoints deleted.
* :class:`NonFiniteLossHook` stops training at the first NaN/inf loss, before
  any checkpoint of the diverged weights is written, with a message naming the
  iteration and the last good checkpoint.
"""
import glob
import math
import os
import os.path as osp
from typing import Mapping, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from .fileio import PARTIAL_SUFFIX, replace_atomically, write_text_atomically

class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints are never seen half-written.

    Takes exactly ``CheckpointHook``'s arguments. For non-local backends
    (``backend_args`` pointing at a remote store) it falls back to
    ``CheckpointHook``'s behaviour, since renames are not atomic there.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            # Left by a run killed in the middle of a write; never resumable.
            for stale in glob.glob(
                    osp.join(glob.escape(self.out_dir), '*' + PARTIAL_SUFFIX)):
                runner.logger.warning(
                    f'Removing {stale}: a checkpoint write interrupted by an '
                    'earlier crash (the previous checkpoint is intact).')
                os.remove(stale)

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)

        # Update the bookkeeping first, as CheckpointHook does, so the saved
        # message hub knows about this checkpoint after a resume; but delete
        # the outdated file only once the new one is in place.
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(  # master only: other ranks return at once
            self.out_dir,
            ckpt_filename + PARTIAL_SUFFIX,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        replace_atomically(self.last_ckpt + PARTIAL_SUFFIX, self.last_ckpt)
        write_text_atomically(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(path):
                os.remove(path)


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
