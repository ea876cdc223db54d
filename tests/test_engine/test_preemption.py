"""PreemptionHook and RandomStateHook on a real mmengine Runner (a linear
model with dropout, data drawn from NumPy): a signal saves the iteration in
flight and exits 75; the resumed run ends with the uninterrupted run's
weights; a second signal ends the process at once."""
import os
import signal
import sys
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from tool_runner import run_tool
from torch.utils.data import Dataset

from convmlp_mm.checkpoint.fileio import PARTIAL_SUFFIX
from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.engine import PREEMPTED_EXIT_CODE

from helpers import REPO


class DropoutModel(BaseModel):
    """Draws from torch's global generator every step (as drop path)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(self.drop(inputs)).squeeze(-1)
        return dict(loss=((out - labels)**2).mean())


class AugmentedData(Dataset):
    """A random scale from NumPy's global generator per sample (as a
    random resize)."""
    metainfo = dict(classes=('toy', ))

    def __len__(self):
        return 10

    def __getitem__(self, index):
        gen = torch.Generator().manual_seed(index)
        scale = float(np.random.uniform(0.5, 1.5))
        return dict(inputs=torch.randn(2, generator=gen) * scale,
                    labels=torch.tensor(float(index)))


class SignalAt(Hook):
    """Sends ``signum`` to this process at the start of iteration ``at``."""

    def __init__(self, at, signum=signal.SIGUSR1, times=1):
        self.at, self.signum, self.times = at, signum, times

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


def runner(work_dir, by_epoch, hooks=(), workers=0, seed=0):
    torch.manual_seed(1)  # the model is built before the Runner seeds
    loop = dict(type='ResumableEpochBasedTrainLoop', max_epochs=3) \
        if by_epoch else dict(type='ResumableIterBasedTrainLoop', max_iters=12)
    return Runner(
        model=DropoutModel(),
        work_dir=str(work_dir),
        experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(
            dataset=AugmentedData(),
            sampler=dict(type='DefaultSampler' if by_epoch else
                         'InfiniteSampler', shuffle=True),
            batch_size=3, num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        train_cfg=loop,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='AtomicCheckpointHook', by_epoch=by_epoch,
                            interval=1 if by_epoch else 5)),
        custom_hooks=[dict(type='RandomStateHook'),
                      dict(type='PreemptionHook'), *hooks],
        randomness=dict(seed=seed),
        resume=True)


def end_loader_workers(run) -> None:
    """Stop ``run``'s DataLoader worker processes now. Left to garbage
    collection, a run stopped mid-epoch has workers blocked on a full result
    queue, and torch's ``_shutdown_workers`` waits 5 s for each before it
    terminates them, in whatever test happens to collect them (seen as 10
    to 40 s stalls of unrelated tests in the suite)."""
    from torch.utils.data import _utils
    iterator = getattr(run.train_dataloader, '_iterator', None)
    if iterator is None or not getattr(iterator, '_workers', None):
        return
    if iterator._worker_pids_set:  # else torch's SIGCHLD check raises
        _utils.signal_handling._remove_worker_pids(id(iterator))
        iterator._worker_pids_set = False
    for worker in iterator._workers:
        worker.kill()
        worker.join()
    iterator._shutdown_workers()  # the joins return at once now


def max_abs_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize('by_epoch,workers', [(True, 0), (True, 2),
                                              (False, 0), (False, 2)])
def test_signal_saves_the_iteration_and_resume_is_exact(
        tmp_path, by_epoch, workers):
    uninterrupted = runner(tmp_path / 'a', by_epoch, workers=workers)
    uninterrupted.train()

    work_dir = tmp_path / 'b'
    # Whatever this worker process had installed before (an earlier test
    # may have left its own handler): the hook must put exactly that back.
    before = signal.getsignal(signal.SIGUSR1)
    # Iteration 6 of 12 (epoch 2, batch 2 of 4 when epoch-based).
    interrupted = runner(work_dir, by_epoch, [SignalAt(5)], workers)
    with pytest.raises(SystemExit) as stop:
        interrupted.train()
    end_loader_workers(interrupted)
    assert stop.value.code == PREEMPTED_EXIT_CODE == 75
    saved = work_dir / 'preempted_iter_6.pth'
    assert (work_dir / 'last_checkpoint').read_text() == str(saved)
    assert not list(work_dir.glob('*' + PARTIAL_SUFFIX))
    checkpoint = safe_torch_load(str(saved), str(saved))
    assert checkpoint['meta']['iter'] == 6
    assert checkpoint['meta']['epoch'] == (1 if by_epoch else 0)
    assert len(checkpoint['random_states']['ranks']) == 1
    # The handlers are put back when the run stops.
    assert signal.getsignal(signal.SIGUSR1) is before

    # seed=None: the resumed run takes the checkpoint's seed.
    resumed = runner(work_dir, by_epoch, workers=workers, seed=None)
    resumed.train()
    assert resumed.iter == 12
    diff = max_abs_diff(uninterrupted.model.state_dict(),
                        resumed.model.state_dict())
    print(f'max abs weight difference after the signal + resume: {diff}')
    for run in (uninterrupted, resumed):
        end_loader_workers(run)
    assert diff <= 1e-6


SECOND_SIGNAL = f'''
import signal, sys
sys.path[:0] = [{REPO!r} + '/tests', {REPO!r} + '/tests/test_engine']
from test_preemption import SignalAt, runner
runner(sys.argv[1], True, [SignalAt(5, signal.SIGTERM, times=2)]).train()
'''


def test_second_signal_ends_the_run_at_once(tmp_path):
    # Its own process (the second signal kills it): a fork of the tool
    # server (tests/tool_runner.py), which has the imports already.
    script = tmp_path / 'second_signal.py'
    script.write_text(SECOND_SIGNAL)
    proc = run_tool([sys.executable, str(script), str(tmp_path / 'work')],
                    REPO, dict(os.environ), timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr[-3000:]
    assert 'SIGTERM received' in proc.stderr
    assert not list((tmp_path / 'work').glob('preempted_iter_*'))
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()  # it did train


def test_unknown_signal_name_is_refused():
    from convmlp_mm.engine import PreemptionHook
    with pytest.raises(ValueError, match='"SIGNOPE", which is not a signal'):
        PreemptionHook(signals=('SIGTERM', 'SIGNOPE'))
