"""tools/train.py and ./dist_detection.sh stopped by a signal at a random
iteration mid-epoch and run again (no flag) end with the uninterrupted
run's weights, with the paper configs' randomness on: RetinaNet (epoch-
based; Resize + RandomFlip, drop path 0.1, shuffled, aspect-ratio batches)
and Semantic FPN (iteration-based; RandomResize, RandomCrop, RandomFlip,
PhotoMetricDistortion, drop path 0.1)."""
import os
import os.path as osp
import random
import signal

import pytest
from preemption_runs import (
    ENV,
    max_abs_diff,
    run_to_end,
    signal_when,
    train_command,
    weights,
    write_detection,
    write_segmentation,
)

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.datasets import make_coco_dataset

from tools_run import REPO, free_port


def preempted_iteration(work_dir) -> int:
    last = (work_dir / 'last_checkpoint').read_text()
    assert osp.basename(last).startswith('preempted_iter_'), last
    return safe_torch_load(last, last)['meta']['iter']


@pytest.fixture(scope='module')
def detection(tmp_path_factory):
    root = tmp_path_factory.mktemp('det')
    data, config = write_detection(root)
    run_to_end(train_command(config, data, root / 'uninterrupted'))
    return data, config, weights(root / 'uninterrupted' / 'epoch_2.pth')


def test_detection_sigterm_mid_epoch_then_rerun_matches_uninterrupted(
        detection, tmp_path):
    data, config, expected = detection
    # 4 iterations per epoch; the signal lands in iteration g or g + 1.
    epoch, batch = random.choice([(1, 1), (1, 2), (2, 1), (2, 2)])
    print(f'SIGTERM after "Epoch(train) [{epoch}][{batch}/4]"')
    cmd = train_command(config, data, tmp_path)
    code, out, waited = signal_when(cmd, f'Epoch(train) [{epoch}][{batch}/4]')
    assert code == 75, out[-3000:]
    print(f'signal to exit: {waited:.1f} s')
    done = preempted_iteration(tmp_path)
    assert done - 4 * (epoch - 1) in (batch, batch + 1)  # mid-epoch
    assert not (tmp_path / f'epoch_{epoch}.pth').exists()

    log = run_to_end(cmd)  # the same command: resumes by itself
    assert 'Resuming from ' in log
    assert f'{done - 4 * (epoch - 1)} batches already trained are skipped' \
        in log
    diff = max_abs_diff(weights(tmp_path / 'epoch_2.pth'), expected)
    print(f'max abs weight difference: {diff:.3g}')
    assert diff <= 1e-6


@pytest.fixture(scope='module')
def segmentation(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg')
    data, config = write_segmentation(root)
    run_to_end(train_command(config, data, root / 'uninterrupted'))
    return data, config, weights(root / 'uninterrupted' / 'iter_8.pth')


def test_segmentation_sigterm_then_rerun_matches_uninterrupted(
        segmentation, tmp_path):
    data, config, expected = segmentation
    # Not at 4: that iteration's regular checkpoint would be the one used.
    at = random.choice([1, 2, 5, 6])
    print(f'SIGTERM after "Iter(train) [{at}/8]"')
    cmd = train_command(config, data, tmp_path)
    code, out, _ = signal_when(cmd, f'Iter(train) [{at}/8]')
    assert code == 75, out[-3000:]
    done = preempted_iteration(tmp_path)
    assert done in (at, at + 1)
    log = run_to_end(cmd)
    assert f'{done} batches already trained are skipped by moving the ' \
        "sampler's start" in log
    assert 'Advance dataloader' not in log  # mmengine's fetch-and-drop
    diff = max_abs_diff(weights(tmp_path / 'iter_8.pth'), expected)
    print(f'max abs weight difference: {diff:.3g}')
    assert diff <= 1e-6


def rank_one(proc) -> int:
    """The pid of the rank-1 worker under torchrun (``proc``)."""
    with open(f'/proc/{proc.pid}/task/{proc.pid}/children') as f:
        children = f.read().split()
    for pid in children:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            env = dict(item.split(b'=', 1) for item in f.read().split(b'\0')
                       if b'=' in item)
        if env.get(b'RANK') == b'1':
            return int(pid)
    raise AssertionError(f'no rank-1 worker among {children}')


def test_two_processes_signal_to_one_rank_then_rerun_matches(tmp_path):
    root = tmp_path / 'data'
    _, config = write_detection(root)
    # 12 images: 3 iterations of 2 x 2 per epoch.
    data = make_coco_dataset(str(root / 'coco12'), num_train=12, num_val=2,
                             image_size=(64, 48),
                             classes=('circle', 'square', 'triangle'))

    def command(work_dir):
        return [osp.join(REPO, 'dist_detection.sh'), config, '2', data,
                '--work-dir', str(work_dir)]

    def env():
        return dict(ENV, PORT=str(free_port()), TORCH_HOME=str(
            tmp_path / 'hub'))

    run_to_end(command(tmp_path / 'a'), env=env())
    code, out, _ = signal_when(command(tmp_path / 'b'),
                               'Epoch(train) [1][1/3]', signal.SIGUSR1,
                               env=env(), target=rank_one)
    assert code != 0, out[-3000:]
    assert 'SIGUSR1 received' in out
    # Rank 0 got no signal, yet stopped at the same iteration and saved.
    assert 'Preempted (a signal to another process)' in out
    done = preempted_iteration(tmp_path / 'b')
    assert done in (1, 2)
    log = run_to_end(command(tmp_path / 'b'), env=env())
    assert 'Resuming from ' in log
    diff = max_abs_diff(weights(tmp_path / 'b' / 'epoch_2.pth'),
                        weights(tmp_path / 'a' / 'epoch_2.pth'))
    print(f'2 processes: max abs weight difference {diff:.3g}')
    assert diff <= 1e-6
    assert os.path.isfile(tmp_path / 'b' / 'epoch_1.pth')
