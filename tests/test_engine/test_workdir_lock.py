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
from tool_runner import start_tool

from convmlp_mm.engine.workdir_lock import WorkDirInUseError, WorkDirLock

from helpers import load_tool
from tools_run import explain, run, tool_env
from toy_runner import REPO, TRAIN, write_tiny_coco


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
    """Until the run holds the lock: WorkDirLock writes the holder's PID
    into the lock file only once flock succeeded. Only the file is read: a
    probe that took the lock, even for a moment, could make the run itself
    fail to start."""
    lock_file = osp.join(work_dir, '.train.lock')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, \
            f'the first run ended early ({process.returncode})'
        if osp.exists(lock_file):
            with open(lock_file) as f:
                if f.read().startswith(f'{process.pid} '):
                    return
        time.sleep(0.2)
    raise AssertionError('the first run never took the lock')


@pytest.mark.e2e
def test_two_runs_then_sigkill_then_a_new_run(tmp_path):
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = str(tmp_path / 'work')
    env = tool_env(tmp_path, {'PYTHONUNBUFFERED': '1'})
    first = start_tool(_train(config, data_root, work_dir, 100), REPO, env)
    try:
        _wait_until_locked(work_dir, first)
        # The second run, in this process: only its error line is read.
        with pytest.raises(SystemExit) as info:
            load_tool('tools/train.py').main(
                _train(config, data_root, work_dir, 1)[2:])
        line = info.value.code
        assert isinstance(line, str) and '\n' not in line, line
        assert line.startswith(f'error: work dir {work_dir} is in use by '
                               f'another training run (PID {first.pid}'), \
            line
    finally:
        first.kill_group()
    assert first.returncode == -signal.SIGKILL

    # --no-resume: the killed run may have left checkpoints, which a plain
    # re-run would resume from (auto-resume); this run starts afresh.
    third = run(_train(config, data_root, work_dir, 1) + ['--no-resume'],
                tmp_path, timeout=600)
    assert third.returncode == 0, explain(third)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'epoch_1.pth')
