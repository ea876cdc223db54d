"""--resume under torch >= 2.6 with weights_only kept on; crash-safe
checkpoint writing; a real SIGKILL of tools/train.py half-way through a
checkpoint's write resumed to the same weights as the uninterrupted run
(tests/preemption_runs.py's shared reference)."""
import os
import os.path as osp
import pickle
import signal

import pytest
import torch
from mmengine.fileio import LocalBackend
from preemption_runs import (
    fault_config,
    max_abs_diff,
    reference,
    run_to_end,
    run_tool,
    train_command,
    weights,
)

from convmlp_mm.checkpoint.fileio import PARTIAL_SUFFIX
from convmlp_mm.checkpoint.safe_loading import safe_torch_load

from toy_runner import toy_runner


def read_last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def test_mmengine_checkpoint_resumes_with_weights_only(tmp_path):
    first = toy_runner(tmp_path, max_iters=6, interval=3)
    first.train()
    last = read_last_checkpoint(tmp_path)
    assert last == str(tmp_path / 'iter_6.pth')
    # What torch >= 2.6 does with mmengine's own checkpoint out of the box:
    with pytest.raises(pickle.UnpicklingError, match='getattr|HistoryBuffer'):
        torch.load(last, weights_only=True)

    saved = safe_torch_load(last, last)
    buffer = saved['message_hub']['log_scalars']['train/loss']
    assert type(buffer).__name__ == 'HistoryBuffer'
    assert buffer.mean() == pytest.approx(
        first.message_hub.get_scalar('train/loss').mean())

    resumed = toy_runner(tmp_path, max_iters=8, interval=3, resume=True)
    resumed.train()
    assert resumed.iter == 8
    # Scheduler (milestone at 3, gamma 0.5) and optimizer state came back:
    # the lr stayed halved and Adam's step count continued from 6.
    assert resumed.optim_wrapper.get_lr()['lr'] == [0.025]
    state = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert all(int(s['step']) == 8 for s in state.values())
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) == 8


def test_kill_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    """A write interrupted half-way (as by SIGKILL) leaves last_checkpoint on
    the previous complete file, even with max_keep_ckpts=1; mmengine's own
    CheckpointHook deletes that file first and is left with nothing."""
    original_put = LocalBackend.put

    class Killed(BaseException):
        pass

    def put_then_die(self, obj, filepath):
        if 'iter_4' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise Killed
        return original_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put_then_die)
    for hook, work_dir in [('AtomicCheckpointHook', tmp_path / 'atomic'),
                           ('CheckpointHook', tmp_path / 'stock')]:
        runner = toy_runner(work_dir, max_iters=6, interval=2,
                            checkpoint_type=hook, max_keep_ckpts=1)
        with pytest.raises(Killed):
            runner.train()
    monkeypatch.setattr(LocalBackend, 'put', original_put)

    # mmengine's hook: last_checkpoint names iter_2.pth, already deleted,
    # next to a half-written iter_4.pth.
    stock = tmp_path / 'stock'
    assert read_last_checkpoint(stock) == str(stock / 'iter_2.pth')
    assert not (stock / 'iter_2.pth').exists()

    atomic = tmp_path / 'atomic'
    assert read_last_checkpoint(atomic) == str(atomic / 'iter_2.pth')
    assert sorted(p for p in os.listdir(atomic) if 'pth' in p) == [
        'iter_2.pth', 'iter_4.pth' + PARTIAL_SUFFIX]
    resumed = toy_runner(atomic, max_iters=6, interval=2, max_keep_ckpts=1,
                         resume=True)
    resumed.train()
    assert resumed.iter == 6
    checkpoints = sorted(p for p in os.listdir(atomic) if 'pth' in p)
    assert checkpoints == ['iter_6.pth']  # partial cleaned, old ones rotated
    assert safe_torch_load(str(atomic / 'iter_6.pth'), 'x')['meta'][
        'iter'] == 6


def test_resume_continues_epoch_based(tmp_path):
    toy_runner(tmp_path, max_epochs=2).train()
    runner = toy_runner(tmp_path, max_epochs=3, resume=True)
    runner.train()
    assert (runner.epoch, runner.iter) == (3, 12)
    meta = safe_torch_load(str(tmp_path / 'epoch_3.pth'), 'x')['meta']
    assert (meta['epoch'], meta['iter']) == (3, 12)


# --- tools/train.py on the tiny RetinaNet config, SIGKILLed, resumed ------


@pytest.fixture(scope='module')
def detection(tmp_path_factory):
    return reference(tmp_path_factory, 'detection')


def killed_run(detection, work_dir, **fault):
    """tools/train.py SIGKILLed at the placed fault; its output."""
    config = fault_config(detection['config'], work_dir.parent, **fault)
    proc = run_tool(train_command(config, detection['data'], work_dir),
                    work_dir.parent)
    assert proc.returncode == -signal.SIGKILL, (proc.stdout[-3000:] +
                                                proc.stderr[-3000:])
    return proc.stdout + proc.stderr


@pytest.mark.e2e
@pytest.mark.xdist_group('reference_detection')
def test_sigkill_during_checkpoint_write_resumes_from_previous(
        detection, tmp_path):
    """SIGKILL half-way through epoch 2's checkpoint (epoch 2 trained):
    the rerun resumes from epoch 1's file and trains epoch 2 again, to the
    uninterrupted run's weights. (A SIGKILL anywhere in epoch 2 leaves the
    same epoch_1.pth to resume from.)"""
    work_dir = tmp_path / 'work'
    out = killed_run(detection, work_dir, signum='SIGKILL',
                     during_write='epoch_2')
    assert 'Saving checkpoint at 2 epochs' in out
    assert 'FAULT: SIGKILL half-way through' in out
    # The half-written file never got the checkpoint's name, and
    # last_checkpoint still names the complete epoch-1 file.
    assert read_last_checkpoint(work_dir) == str(work_dir / 'epoch_1.pth')
    assert not (work_dir / 'epoch_2.pth').exists()
    assert (work_dir / ('epoch_2.pth' + PARTIAL_SUFFIX)).exists()

    log = run_to_end(train_command(detection['config'], detection['data'],
                                   work_dir, '--resume'), tmp_path)
    assert 'resumed epoch: 1, iter: 4' in log
    assert not (work_dir / ('epoch_2.pth' + PARTIAL_SUFFIX)).exists()
    diff = max_abs_diff(weights(work_dir / 'epoch_2.pth'),
                        weights(detection['weights']))
    print(f'max abs weight difference after kill mid-write + resume: '
          f'{diff:.3g}')
    assert diff <= 1e-6
