"""tools/train.py and ./dist_detection.sh stopped by a signal and run again
(no flag) end with the uninterrupted run's weights, with the paper configs'
randomness on: RetinaNet (epoch-based; Resize + RandomFlip, drop path 0.1,
shuffled, aspect-ratio batches) and Semantic FPN (iteration-based;
RandomResize, RandomCrop, RandomFlip, PhotoMetricDistortion, drop path
0.1). The signal points are fixed (tests/preemption_runs.py's FaultAt):
on an epoch's last iteration, half-way through a checkpoint's write (the
run then stops mid-epoch), between two regular checkpoints and on a regular
checkpoint's iteration; the uninterrupted runs are made once per test
run."""
import os.path as osp

import pytest
from preemption_runs import (
    ENV,
    fault_config,
    last_checkpoint,
    max_abs_diff,
    reference,
    run_to_end,
    run_tool,
    train_command,
    two_process_reference,
    weights,
)

from convmlp_mm.checkpoint.safe_loading import safe_torch_load

from tools_run import REPO, free_port

pytestmark = pytest.mark.e2e


def preempted_iteration(work_dir) -> int:
    last = last_checkpoint(work_dir)
    assert osp.basename(last).startswith('preempted_iter_'), last
    return safe_torch_load(last, last)['meta']['iter']


def preempted_run(ref, work_dir, **fault) -> str:
    """tools/train.py with ``fault``; it must stop with 75 (preempted)."""
    config = fault_config(ref['config'], work_dir.parent, **fault)
    proc = run_tool(train_command(config, ref['data'], work_dir),
                    work_dir.parent)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 75, out[-3000:]
    assert 'SIGTERM received' in out
    return out


@pytest.fixture(scope='module')
def detection(tmp_path_factory):
    return reference(tmp_path_factory, 'detection')


@pytest.fixture(scope='module')
def segmentation(tmp_path_factory):
    return reference(tmp_path_factory, 'segmentation')


# fault -> (the iteration the preempted checkpoint holds, the batches of
# its epoch the rerun skips); 4 iterations per epoch, 2 epochs.
DETECTION_POINTS = {
    # epoch 1's last batch: all of epoch 1 trained, epoch_1.pth not yet
    # written; the rerun skips all four and then writes it
    'last-iteration-of-epoch': (dict(at=4), 4, 4),
    # SIGTERM half-way through epoch_1.pth: the write completes, the run
    # stops after the next iteration, mid-epoch 2 (one batch of four
    # trained; the mid-epoch case)
    'during-checkpoint-write': (dict(during_write='epoch_1'), 5, 1),
}


@pytest.mark.xdist_group('reference_detection')
@pytest.mark.parametrize('point', list(DETECTION_POINTS))
def test_detection_sigterm_then_rerun_matches_uninterrupted(
        detection, tmp_path, point):
    fault, done, skipped = DETECTION_POINTS[point]
    work_dir = tmp_path / 'work'
    out = preempted_run(detection, work_dir, **fault)
    assert preempted_iteration(work_dir) == done
    assert (work_dir / 'epoch_1.pth').exists() == (done > 4)
    assert not (work_dir / 'epoch_2.pth').exists()
    if point == 'during-checkpoint-write':
        # The signal did not break the file it came in the middle of.
        assert 'FAULT: SIGTERM half-way through' in out
        assert weights(work_dir / 'epoch_1.pth').keys() == weights(
            detection['weights']).keys()

    cmd = train_command(detection['config'], detection['data'], work_dir)
    log = run_to_end(cmd, tmp_path)  # the same command: resumes by itself
    assert 'Resuming from ' in log
    assert f'{skipped} batches already trained are skipped' in log
    # No epoch is trained twice; each remaining batch exactly once.
    trained = [f'Epoch(train) [{e}][{b}/4]' for e in (1, 2)
               for b in range(1, 5)]
    assert [line for line in trained if line in log] == trained[done:]
    diff = max_abs_diff(weights(work_dir / 'epoch_2.pth'),
                        weights(detection['weights']))
    print(f'max abs weight difference: {diff:.3g}')
    assert diff <= 1e-6


SEGMENTATION_POINTS = {
    # between the regular checkpoints of iterations 4 and 8
    'between-checkpoints': 6,
    # on iteration 4, whose regular checkpoint is the one used
    'on-a-checkpoint-iteration': 4,
}


@pytest.mark.xdist_group('reference_segmentation')
@pytest.mark.parametrize('point', list(SEGMENTATION_POINTS))
def test_segmentation_sigterm_then_rerun_matches_uninterrupted(
        segmentation, tmp_path, point):
    at = SEGMENTATION_POINTS[point]
    work_dir = tmp_path / 'work'
    preempted_run(segmentation, work_dir, at=at)
    last = last_checkpoint(work_dir)
    if at % 4:
        assert preempted_iteration(work_dir) == at
    else:  # no second file for the same iteration
        assert last == str(work_dir / f'iter_{at}.pth')
        assert not list(work_dir.glob('preempted_iter_*'))
    log = run_to_end(train_command(segmentation['config'],
                                   segmentation['data'], work_dir), tmp_path)
    assert f'{at} batches already trained are skipped by moving the ' \
        "sampler's start" in log
    assert 'Advance dataloader' not in log  # mmengine's fetch-and-drop
    assert f'Iter(train) [{at}/8]' not in log
    assert f'Iter(train) [{at + 1}/8]' in log
    diff = max_abs_diff(weights(work_dir / 'iter_8.pth'),
                        weights(segmentation['weights']))
    print(f'max abs weight difference: {diff:.3g}')
    assert diff <= 1e-6


@pytest.fixture(scope='session')
def two_processes(tmp_path_factory):
    """tests/preemption_runs.py's uninterrupted two-process run (shared
    with tests/test_tools/test_multinode.py)."""
    return two_process_reference(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group('reference_detection_2procs')
def test_two_processes_signal_to_one_rank_then_rerun_matches(
        two_processes, tmp_path):
    """SIGUSR1 to the rank-1 process only, at the start of iteration 2:
    rank 0 stops at the same iteration and saves; both exit 75, and the
    launch exits 75."""
    config, data = two_processes['config'], two_processes['data']
    fault = fault_config(config, tmp_path, signum='SIGUSR1', at=2, rank=1)

    def launch(cfg, work_dir):
        env = dict(ENV, PORT=str(free_port()),
                   TORCH_HOME=str(tmp_path / 'hub'))
        return run_tool([osp.join(REPO, 'dist_detection.sh'), cfg, '2', data,
                         '--work-dir', str(work_dir)], tmp_path, env=env)

    def log_of(proc):
        return proc.stdout + proc.stderr

    stopped = launch(fault, tmp_path / 'b')
    out = log_of(stopped)
    assert stopped.returncode == 75, out[-3000:]
    assert 'SIGUSR1 received' in out
    # Rank 0 got no signal, yet stopped at the same iteration and saved.
    assert 'Preempted (a signal to another process) in iteration 2' in out
    assert preempted_iteration(tmp_path / 'b') == 2
    rerun = launch(config, tmp_path / 'b')
    log = log_of(rerun)
    assert rerun.returncode == 0, log[-3000:]
    assert 'Resuming from ' in log
    assert '2 batches already trained are skipped' in log
    diff = max_abs_diff(weights(tmp_path / 'b' / 'epoch_2.pth'),
                        weights(two_processes['weights']))
    print(f'2 processes: max abs weight difference {diff:.3g}')
    assert diff <= 1e-6
    assert osp.isfile(tmp_path / 'b' / 'epoch_1.pth')
