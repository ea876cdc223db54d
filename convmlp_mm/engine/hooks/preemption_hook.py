"""Save the step and stop on a preemption signal: :class:`PreemptionHook`.

A cluster that preempts a job (Slurm, Kubernetes) or ends it at its time
limit sends SIGTERM, or with ``--signal=USR1@120`` SIGUSR1 a while before.
On the first such signal, in any process of the run, the iteration in
flight finishes; all ranks learn of it (a max all-reduce of a flag at the
end of each iteration), a checkpoint of that iteration is written the crash-
safe way (``.partial`` file, fsync, rename, then ``last_checkpoint``, as
:class:`AtomicCheckpointHook`) and every process exits with
:data:`PREEMPTED_EXIT_CODE` (75). A second signal ends the process at once.
See docs/preemption.md.
"""
import os
import os.path as osp
import signal
import threading
import time
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_dist_info, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from convmlp_mm.checkpoint import commit_checkpoint
from convmlp_mm.engine.hooks.atomic_checkpoint_hook import checkpoint_bytes

# The exit status and the start-up handler this hook takes over from live
# in the light module the tools import before torch (tools/train.py).
from convmlp_mm_cli import PREEMPTED_EXIT_CODE, end_startup_signals

__all__ = ['PREEMPTED_EXIT_CODE', 'PreemptionHook']


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Checkpoint the iteration in flight and exit on a signal.

    Args:
        signals: names of the signals that request the stop.
        exit_code: what every process exits with after the save.
        filename_tmpl: the checkpoint's name, formatted with the number of
            iterations done.
    """

    # After CheckpointHook (VERY_LOW): a checkpoint it wrote this iteration
    # is not written twice.
    priority = 'LOWEST'

    def __init__(self,
                 signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = PREEMPTED_EXIT_CODE,
                 filename_tmpl: str = 'preempted_iter_{}.pth') -> None:
        self.signals = []
        for name in signals:
            if not hasattr(signal, name):
                raise ValueError(
                    f'PreemptionHook: signals names "{name}", which is not a '
                    'signal of this system; use names such as "SIGTERM", '
                    '"SIGUSR1".')
            self.signals.append(getattr(signal, name))
        self.exit_code = int(exit_code)
        self.filename_tmpl = filename_tmpl
        self.received: Optional[int] = None
        self._received_at = 0.0
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            # Second signal: no more waiting for the iteration.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        self._received_at = time.monotonic()
        # Only a flag here: logging from a signal handler can deadlock.
        os.write(2, f'{signal.Signals(signum).name} received: saving a '
                 'checkpoint at the end of this iteration (a second signal '
                 'ends the run at once)\n'.encode())

    def before_train(self, runner) -> None:
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning('PreemptionHook: not in the main thread, '
                                  'no signal handler installed.')
            return
        # From here on a signal saves; the handler that stopped the start-up
        # (nothing to save then) is not the one to put back after training.
        end_startup_signals()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def after_train(self, runner) -> None:
        self.restore_signals()

    def restore_signals(self) -> None:
        """Put back the handlers :meth:`before_train` replaced. Also called
        by ``ConvMLPRunner.train`` when a run ends otherwise (a preemption's
        exit, an error), where ``after_train`` never comes: a process that
        goes on (a notebook, a test) must not keep this run's handlers."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _stop_requested(self) -> bool:
        flag = torch.tensor([0 if self.received is None else 1])
        _, world_size = get_dist_info()
        if world_size > 1:
            all_reduce(flag, op='max')  # any rank's signal stops them all
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self._stop_requested():
            return
        path = self._save(runner)
        waited = time.monotonic() - self._received_at \
            if self.received is not None else None
        why = (signal.Signals(self.received).name if self.received else
               'a signal to another process')
        runner.logger.info(
            f'Preempted ({why}) in iteration {runner.iter + 1}: checkpoint '
            f'{path}' + (f' written {waited:.1f} s after the signal'
                         if waited is not None else '') +
            f'. Exiting with {self.exit_code}; running the same command '
            'again resumes from it.')
        self.after_train(runner)
        raise SystemExit(self.exit_code)

    def _checkpoint_hook(self, runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook
        return None

    def _save(self, runner) -> str:
        step = runner.iter + 1
        ckpt_hook = self._checkpoint_hook(runner)
        out_dir = runner.work_dir
        if ckpt_hook is not None and isinstance(
                getattr(ckpt_hook, 'file_backend', None), LocalBackend):
            out_dir = ckpt_hook.out_dir
        last = runner.message_hub.get_info('last_ckpt')
        # CheckpointHook may have written this very iteration already.
        if ckpt_hook is not None and not ckpt_hook.by_epoch and last and \
                osp.basename(last) == ckpt_hook.filename_tmpl.format(step):
            return last
        path = osp.join(out_dir, self.filename_tmpl.format(step))
        kwargs = {}
        if ckpt_hook is not None:
            kwargs = dict(save_optimizer=ckpt_hook.save_optimizer,
                          save_param_scheduler=ckpt_hook.save_param_scheduler)
        # by_epoch=False: the meta says "epoch e, iteration i", so a resumed
        # epoch-based run continues inside epoch e.
        commit_checkpoint(
            lambda partial: runner.save_checkpoint(
                out_dir, osp.basename(partial), by_epoch=False, **kwargs),
            path, osp.join(runner.work_dir, 'last_checkpoint'),
            writer=is_main_process(),
            needed=lambda: checkpoint_bytes(runner, last),
            previous=last)
        barrier()  # no rank leaves (and looks failed) before the file is in
        return path
