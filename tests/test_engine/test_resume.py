"""--resume under torch >= 2.6 with weights_only kept on; crash-safe
checkpoint writing; a real SIGKILL of tools/train.py resumed to the same
weights as an uninterrupted run."""
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.fileio import LocalBackend

from convmlp_mm.checkpoint.fileio import PARTIAL_SUFFIX
from convmlp_mm.checkpoint.safe_loading import safe_torch_load

from toy_runner import REPO, TRAIN, toy_runner, write_tiny_coco


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


# --- tools/train.py on a tiny COCO set, killed with SIGKILL and resumed ----

# Runs tools/train.py with mmengine's local writes slowed down for one
# checkpoint: half of it is written, then the process waits to be killed.
SLOW_WRITE = '''
import runpy, sys, time
from mmengine.fileio import LocalBackend
put = LocalBackend.put
def half_then_wait(self, obj, filepath):
    if 'epoch_2' in str(filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        print('HALF-WRITTEN', filepath, flush=True)
        time.sleep(600)
    return put(self, obj, filepath)
LocalBackend.put = half_then_wait
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp('tiny_coco'))


# Unbuffered, so log lines arrive as they are written.
ENV = dict(os.environ, PYTHONUNBUFFERED='1')


def train_command(config, data_root, work_dir, *extra):
    return [sys.executable, TRAIN, config, '--data-root', data_root,
            '--work-dir', str(work_dir), *extra]


def run_to_end(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                            env=ENV, timeout=300)
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


def kill_when(cmd, marker, timeout=300):
    """Start ``cmd``, SIGKILL it as soon as a line contains ``marker``;
    returns the output seen so far."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=ENV)
    seen = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, 'marker never came'
        else:
            raise AssertionError(f'ended before "{marker}":\n' +
                                 ''.join(seen[-40:]))
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return ''.join(seen)


def final_weights(work_dir):
    path = str(work_dir / 'epoch_3.pth')
    return safe_torch_load(path, path)['state_dict']


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if a[k].is_floating_point())


@pytest.fixture(scope='module')
def uninterrupted(tiny_coco, tmp_path_factory):
    data_root, config = tiny_coco
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    run_to_end(train_command(config, data_root, work_dir))
    return final_weights(work_dir)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(
        tiny_coco, uninterrupted, tmp_path):
    data_root, config = tiny_coco
    cmd = train_command(config, data_root, tmp_path)
    # One iteration into epoch 2, after epoch 1's checkpoint.
    kill_when(cmd, 'Epoch(train) [2][1/2]')
    assert read_last_checkpoint(tmp_path) == str(tmp_path / 'epoch_1.pth')
    assert not (tmp_path / 'epoch_2.pth').exists()

    log = run_to_end(cmd + ['--resume'])
    assert 'resumed epoch: 1, iter: 2' in log
    assert 'Epoch(train) [1]' not in log  # epoch 1 is not trained again
    diff = max_abs_diff(final_weights(tmp_path), uninterrupted)
    print(f'max abs weight difference after SIGKILL + resume: {diff:.3g}')
    assert diff <= 1e-5


def test_sigkill_during_checkpoint_write_resumes_from_previous(
        tiny_coco, uninterrupted, tmp_path):
    data_root, config = tiny_coco
    cmd = train_command(config, data_root, tmp_path)
    out = kill_when([sys.executable, '-c', SLOW_WRITE] + cmd[1:],
                    'HALF-WRITTEN')
    assert 'Saving checkpoint at 2 epochs' in out
    # The half-written file never got the checkpoint's name, and
    # last_checkpoint still names the complete epoch-1 file.
    assert read_last_checkpoint(tmp_path) == str(tmp_path / 'epoch_1.pth')
    assert not (tmp_path / 'epoch_2.pth').exists()
    assert (tmp_path / ('epoch_2.pth' + PARTIAL_SUFFIX)).exists()

    log = run_to_end(cmd + ['--resume'])
    assert 'resumed epoch: 1, iter: 2' in log
    assert not (tmp_path / ('epoch_2.pth' + PARTIAL_SUFFIX)).exists()
    diff = max_abs_diff(final_weights(tmp_path), uninterrupted)
    print(f'max abs weight difference after kill mid-write + resume: '
          f'{diff:.3g}')
    assert diff <= 1e-5
