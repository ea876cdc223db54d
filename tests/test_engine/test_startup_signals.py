"""A SIGTERM or SIGUSR1 before training starts (imports, config, data
checks, model build, checkpoint loading) ends tools/train.py with exit
status 75, as a preemption during training does, and one line saying that
nothing was saved; from the first iteration on the PreemptionHook handles
the signals (tests/test_engine/test_preemption.py)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from tool_runner import start_tool

from convmlp_mm_cli import (
    PREEMPTED_EXIT_CODE,
    end_startup_signals,
    startup_signals,
)

from helpers import REPO
from toy_runner import TRAIN, write_tiny_coco

STOPPED = 'during start-up, before the first training iteration: nothing ' \
    'was saved (exit status 75); run the same command again'


def test_startup_signal_exits_75_and_puts_the_handlers_back(capfd):
    before = signal.getsignal(signal.SIGUSR1)
    # What was there (SIG_DFL in a fresh process; an earlier in-process
    # test in this worker may have left another).
    before_term = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        with startup_signals():
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(60)  # the handler's exception ends this at once
    assert stop.value.code == PREEMPTED_EXIT_CODE == 75
    assert f'stopped by SIGUSR1 {STOPPED}' in capfd.readouterr().err
    assert signal.getsignal(signal.SIGUSR1) is before
    # Training starts: the runner ends the start-up handling inside.
    with startup_signals():
        assert signal.getsignal(signal.SIGTERM) is not before_term
        end_startup_signals()
        assert signal.getsignal(signal.SIGTERM) == before_term
        assert signal.getsignal(signal.SIGUSR1) is before


def test_sigterm_during_imports_exits_75(tmp_path):
    """A plain interpreter (the tool server has torch imported already):
    the signal is sent once ``-X importtime`` reports the first torch
    module, in the middle of the imports of tools/train.py's main."""
    work_dir = tmp_path / 'work'
    proc = subprocess.Popen(
        [sys.executable, '-X', 'importtime', TRAIN, 'config.py',
         '--work-dir', str(work_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if line.rsplit('|', 1)[-1].strip().startswith('torch'):
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
    assert err.strip().splitlines()[-1] == f'stopped by SIGTERM {STOPPED}'
    assert 'Traceback' not in err
    assert not work_dir.exists()


HOLDING = 'HOLDING before the first iteration'
# Holds the run after the Runner is built, before its first iteration: the
# test signals once this is printed, a point that does not depend on the
# machine's speed.
HOLD_MODULE = f'''
import time
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class HoldBeforeRun(Hook):
    def before_run(self, runner):
        print({HOLDING!r}, flush=True)
        time.sleep(600)  # a signal ends this (the test's timeout, at most)
'''


def _held_config(config: str, folder) -> str:
    """``config`` plus ``HoldBeforeRun`` (module ``startup_hold`` in
    ``folder``) after its own hooks (the base config's PreemptionHook among
    them)."""
    from mmengine.config import Config
    hooks = [dict(h) for h in Config.fromfile(config).get('custom_hooks')]
    assert any(h['type'] == 'PreemptionHook' for h in hooks)
    with open(osp.join(str(folder), 'startup_hold.py'), 'w') as f:
        f.write(HOLD_MODULE)
    path = osp.join(str(folder), 'held.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {config!r}\n'
                "custom_imports = dict(imports=['convmlp_mm', "
                "'startup_hold'], allow_failed_imports=False)\n"
                f'custom_hooks = {hooks + [dict(type="HoldBeforeRun")]!r}\n')
    return path


@pytest.mark.e2e
def test_sigusr1_after_the_runner_is_built_exits_75_saving_nothing(
        tmp_path):
    """The last moment of start-up: the Runner, model and hooks are built,
    no iteration has run and the PreemptionHook has not installed its
    handlers yet."""
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    proc = start_tool([sys.executable, TRAIN, _held_config(config, tmp_path),
                       '--data-root', data_root, '--work-dir', str(work_dir)],
                      REPO, env)
    try:
        deadline = time.monotonic() + 300
        # (The run creates its output files as it starts.)
        while not osp.exists(proc.out_path) or \
                HOLDING not in proc.output()[0]:
            assert proc.poll() is None, proc.output()[1][-3000:]
            assert time.monotonic() < deadline, 'the run never held'
            time.sleep(0.1)
        proc.send_signal(signal.SIGUSR1)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill_group()
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
    assert err.strip().splitlines()[-1] == f'stopped by SIGUSR1 {STOPPED}'
    assert 'Epoch(train)' not in out
    assert not list(work_dir.glob('*.pth*'))
    assert not (work_dir / 'last_checkpoint').exists()
