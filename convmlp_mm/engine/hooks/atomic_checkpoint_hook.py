"""Crash-safe checkpoints: :class:`AtomicCheckpointHook`.

mmengine 0.10.7's ``CheckpointHook`` deletes the outdated checkpoint
(``max_keep_ckpts``) *before* writing the new one, writes the new one in
place with no fsync, and rewrites ``last_checkpoint`` in place: a kill in
between can leave ``last_checkpoint`` naming a half-written or deleted file,
and ``--resume`` then fails. Here the new file is written under a
``.partial`` name, fsynced and renamed into place, ``last_checkpoint`` is
replaced the same way, and only then are outdated checkpoints deleted.

Configs name it as ``default_hooks = dict(checkpoint=dict(
type='AtomicCheckpointHook'))``.
"""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from convmlp_mm.checkpoint import (
    PARTIAL_SUFFIX,
    commit_checkpoint,
    tensor_bytes,
)


def checkpoint_bytes(runner, previous) -> int:
    """What the checkpoint being written needs: the previous one's size
    (same model, same optimizer), else the bytes of its tensors."""
    if previous and osp.isfile(previous):
        return osp.getsize(previous)
    state = [runner.model.state_dict()]
    if hasattr(runner.optim_wrapper, 'state_dict'):
        state.append(runner.optim_wrapper.state_dict())
    return tensor_bytes(state)


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
        previous = getattr(self, 'last_ckpt', None)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        def save(partial: str) -> None:  # the master writes, others return
            runner.save_checkpoint(
                self.out_dir,
                osp.basename(partial),
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)

        commit_checkpoint(  # disk full: see checkpoint/fileio.py
            save, self.last_ckpt, osp.join(runner.work_dir,
                                           'last_checkpoint'),
            writer=is_main_process(),
            needed=lambda: checkpoint_bytes(runner, previous),
            previous=previous)
        if not is_main_process():
            return
        if outdated is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(path):
                os.remove(path)
