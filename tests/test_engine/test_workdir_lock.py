"""One training run per work dir (convmlp_mm/engine/workdir_lock.py): a
second run refuses to start, naming the work dir and the other run's PID; a
run killed with SIGKILL leaves nothing that blocks the next one."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from convmlp_mm.engine.workdir_lock import WorkDirInUseError, WorkDirLock

from tools_run import explain, tool_env
from toy_runner import TRAIN, write_tiny_coco


def test_second_lock_names_the_holder(tmp_path):
    first = WorkDirLock(str(tmp_path)).acquire()
    with pytest.raises(WorkDirInUseError) as info:
        WorkDirLock(str(tmp_path)).acquire()
    assert f'work dir {tmp_path} is in use' in str(info.value)
    assert f'PID {os.getpid()}' in str(info.value)
    first.release()
    WorkDirLock(str(tmp_path)).acquire().release()


def test_lock_of_a_sigkilled_process_does_not_block(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, '-c',
         'import sys, time; from convmlp_mm.engine.workdir_lock import '
         'WorkDirLock; WorkDirLock(sys.argv[1]).acquire(); print("held", '
         'flush=True); time.sleep(600)', str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(WorkDirInUseError, match=f'PID {holder.pid}'):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    WorkDirLock(str(tmp_path)).acquire().release()  # the kernel let go


def _train(config, data_root, work_dir, epochs):
    return [sys.executable, TRAIN, config, '--data-root', data_root,
            '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_epochs={epochs}']


def _wait_until_locked(work_dir, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, 'the first run ended early'
        if osp.exists(osp.join(work_dir, '.train.lock')):
            try:
                WorkDirLock(work_dir).acquire().release()
            except WorkDirInUseError:
                return
        time.sleep(0.5)
    raise AssertionError('the first run never took the lock')


def test_two_runs_then_sigkill_then_a_new_run(tmp_path):
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = str(tmp_path / 'work')
    env = tool_env(tmp_path)
    first = subprocess.Popen(
        _train(config, data_root, work_dir, 100), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_locked(work_dir, first)
        second = subprocess.run(
            _train(config, data_root, work_dir, 1), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=300)
        assert second.returncode == 1, explain(second)
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith(f'error: work dir {work_dir} is in use by '
                               f'another training run (PID {first.pid}'), \
            explain(second)
        assert 'Traceback' not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)

    # --no-resume: the killed run may have left checkpoints, which a plain
    # re-run would resume from (auto-resume); this run starts afresh.
    third = subprocess.run(
        _train(config, data_root, work_dir, 1) + ['--no-resume'], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=600)
    assert third.returncode == 0, explain(third)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'epoch_1.pth')
