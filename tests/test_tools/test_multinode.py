"""Two nodes on one machine: ./dist_detection.sh CONFIG 1 DATA_ROOT with
NNODES=2, NODE_RANK 0 and 1, MASTER_ADDR=127.0.0.1 and MASTER_PORT, one CPU
process each over gloo. A signal to the node-1 process (FaultAt, at the
start of iteration 2) stops both nodes with 75, and the same two commands
again resume to the weights of an uninterrupted run; the launcher's
multi-node settings are checked before anything starts."""
import os
import os.path as osp
import signal
import subprocess

import pytest
from preemption_runs import (
    ENV,
    fault_config,
    last_checkpoint,
    max_abs_diff,
    two_process_reference,
    weights,
)

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.engine import PREEMPTED_EXIT_CODE

from helpers import REPO, load_tool
from tools_run import free_port, tool_env

LAUNCHER = osp.join(REPO, 'dist_detection.sh')
# Environment variables of a launch that must come from the test only.
LAUNCH_VARIABLES = ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT',
                    'PORT')


def _env(tmp_path, **extra) -> dict:
    env = tool_env(tmp_path, dict(ENV, **extra))
    for name in LAUNCH_VARIABLES:
        if name not in extra:
            env.pop(name, None)
    return env


@pytest.fixture(scope='session')
def reference(tmp_path_factory):
    """tests/preemption_runs.py's uninterrupted two-process run."""
    return two_process_reference(tmp_path_factory)


def launch_two_nodes(config, data, work_dir, tmp_path, timeout=240):
    """Node 0 and node 1 started together, as two machines would; each
    one's (exit status, output)."""
    port = str(free_port())
    procs, logs = [], []
    try:
        for rank in (0, 1):
            log = tmp_path / f'{work_dir.name}_node{rank}.log'
            with open(log, 'w') as out:
                procs.append(subprocess.Popen(
                    [LAUNCHER, config, '1', data, '--work-dir',
                     str(work_dir)], cwd=REPO, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    env=_env(tmp_path, NNODES='2', NODE_RANK=str(rank),
                             MASTER_ADDR='127.0.0.1', MASTER_PORT=port)))
            logs.append(log)
        codes = [proc.wait(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:  # torchrun and its worker, after a timeout
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return [(code, log.read_text()) for code, log in zip(codes, logs)]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.xdist_group('reference_detection_2procs')
def test_two_nodes_preempted_on_node_1_exit_75_and_resume_exactly(
        reference, tmp_path):
    work_dir = tmp_path / 'work'
    fault = fault_config(reference['config'], tmp_path, signum='SIGUSR1',
                         at=2, rank=1)
    (code0, out0), (code1, out1) = launch_two_nodes(
        fault, reference['data'], work_dir, tmp_path)
    # Both nodes say "preempted, run again": a requeue-on-75 wrapper
    # requeues both.
    assert (code0, code1) == (75, 75), out0[-3000:] + out1[-3000:]
    assert 'SIGUSR1 received' in out1
    assert 'Preempted (a signal to another process) in iteration 2' in out0
    for out in (out0, out1):
        assert 'preempted: the processes of this node' in out
        assert 'Traceback' not in out, out[-3000:]
    last = last_checkpoint(work_dir)
    assert osp.basename(last) == 'preempted_iter_2.pth'
    assert safe_torch_load(last, last)['meta']['iter'] == 2

    (code0, out0), (code1, out1) = launch_two_nodes(
        reference['config'], reference['data'], work_dir, tmp_path)
    assert (code0, code1) == (0, 0), out0[-3000:] + out1[-3000:]
    assert 'Resuming from ' in out0
    assert '2 batches already trained are skipped' in out0
    # World size 2: each process sees half of the 12 images, 2 a batch.
    assert 'Epoch(train) [2][3/3]' in out0
    diff = max_abs_diff(weights(work_dir / 'epoch_2.pth'),
                        weights(reference['weights']))
    print(f'two nodes, preempted and resumed: max abs weight difference '
          f'{diff:.3g}')
    assert diff <= 1e-6


def launcher_arguments(tmp_path, **variables) -> subprocess.CompletedProcess:
    """./dist_detection.sh with a Python that prints its arguments instead
    of running them: what the launcher would start, in a second."""
    python = tmp_path / 'python'
    python.write_text('#!/bin/sh\necho "$@"\n')
    python.chmod(0o755)
    return subprocess.run(
        [LAUNCHER, 'config.py', '1', str(tmp_path)], cwd=REPO,
        env=_env(tmp_path, PYTHON=str(python), **variables), timeout=60,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_launcher_reads_master_port_and_starts_the_exit_code_keeping_torchrun(
        tmp_path):
    proc = launcher_arguments(tmp_path, NNODES='2', NODE_RANK='1',
                              MASTER_ADDR='10.1.2.3', MASTER_PORT='29123')
    assert proc.returncode == 0, proc.stderr
    preflight, launch = proc.stdout.splitlines()
    assert '--preflight' in preflight
    assert launch.startswith(osp.join(REPO, 'tools', 'dist_launch.py'))
    for argument in ('--nnodes=2', '--node_rank=1',
                     '--master_addr=10.1.2.3', '--master_port=29123'):
        assert argument in launch.split(), launch
    # PORT (upstream's name) wins over MASTER_PORT.
    proc = launcher_arguments(tmp_path, PORT='29001', MASTER_PORT='29123')
    assert '--master_port=29001' in proc.stdout.split()


@pytest.mark.parametrize('variables, message', [
    (dict(NNODES='2', NODE_RANK='1'),
     'error: NNODES=2 needs MASTER_ADDR, the address of the NODE_RANK=0 '
     'node, set on every node'),
    (dict(NNODES='2', NODE_RANK='2', MASTER_ADDR='127.0.0.1'),
     "error: NODE_RANK must be 0 to 1 with NNODES=2, got '2'"),
    (dict(NNODES='two'), "error: NNODES must be a positive number of nodes, "
     "got 'two'"),
])
def test_multinode_settings_are_checked_before_anything_starts(
        tmp_path, variables, message):
    """Without MASTER_ADDR node 1 would wait for a master on itself."""
    proc = launcher_arguments(tmp_path, **variables)
    assert proc.returncode == 2
    assert proc.stderr.strip() == message
    assert proc.stdout == ''  # neither the preflight nor torchrun ran


def test_dist_launch_keeps_75_only_for_a_preempted_node():
    tool = load_tool('tools/dist_launch.py')
    assert tool.PREEMPTED_EXIT_CODE == PREEMPTED_EXIT_CODE
    # One process exited 75; torchrun then ended the others.
    assert tool.preempted([75])
    assert tool.preempted([75, -signal.SIGTERM, 75])
    assert not tool.preempted([1])
    assert not tool.preempted([75, 1])
    assert not tool.preempted([-signal.SIGTERM])
    assert not tool.preempted([-signal.SIGKILL, -signal.SIGKILL])

