"""A worker of a 2-process CPU run (./dist_detection.sh, torchrun + gloo) is
SIGKILLed: the launch ends with a non-zero status, its other worker does not
outlive it, and the run resumes from its last checkpoint."""
import os.path as osp
import subprocess
import sys

import pytest
from preemption_runs import ENV, fault_config, last_checkpoint

from convmlp_mm.checkpoint.safe_loading import safe_torch_load

from tools_run import free_port
from toy_runner import REPO, write_tiny_coco


def launch_env():
    return dict(ENV, PYTHON=sys.executable, PORT=str(free_port()),
                MASTER_ADDR='127.0.0.1')


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


@pytest.mark.e2e
@pytest.mark.slow
def test_dead_worker_ends_launch_and_run_resumes(tmp_path):
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = tmp_path / 'work'
    # 4 images, 2 processes x 2 per batch: one iteration per epoch. Rank 1
    # SIGKILLs itself at the end of iteration 4: after the gradients'
    # all-reduce, which rank 0 joined only once epoch 3's checkpoint was
    # written, and before rank 0 can write epoch 4's (it waits for rank 1
    # in the iteration's last all-reduce).
    fault = fault_config(config, tmp_path, signum='SIGKILL', at_end=4,
                         rank=1, pid_dir=str(tmp_path))
    cmd = [osp.join(REPO, 'dist_detection.sh'), fault, '2', data_root,
           '--work-dir', str(work_dir), '--cfg-options',
           'train_cfg.max_epochs=1000']
    # The timeout only guards against a hang: a launch that does not end
    # fails here.
    launch = subprocess.run(cmd, cwd=REPO, env=launch_env(), timeout=300,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    out = launch.stdout
    assert launch.returncode != 0, out[-3000:]
    assert 'FAULT: SIGKILL at the end of iteration 4' in out
    assert 'SIGKILL' in out or 'Signal 9' in out, out[-2000:]
    pids = [int((tmp_path / f'rank{r}.pid').read_text()) for r in (0, 1)]
    assert not [pid for pid in pids if alive(pid)], 'a worker outlived it'

    # Epoch 3's checkpoint was written before rank 1 died.
    last = last_checkpoint(work_dir)
    assert last == str(work_dir / 'epoch_3.pth'), last
    assert safe_torch_load(last, last)['meta']['epoch'] == 3

    resumed = subprocess.run(
        [osp.join(REPO, 'dist_detection.sh'), config, '2', data_root,
         '--work-dir', str(work_dir), '--resume', '--cfg-options',
         'train_cfg.max_epochs=4'],
        cwd=REPO, env=launch_env(),
        capture_output=True, text=True, timeout=300)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert 'resumed epoch: 3, iter: 3' in log
    assert 'Epoch(train) [4][1/1]' in log
    assert 'Epoch(train) [3]' not in log
    assert last_checkpoint(work_dir) == str(work_dir / 'epoch_4.pth')


def test_gloo_timeout_in_seconds_as_mmengine_takes_it(monkeypatch):
    """env_cfg.dist_cfg.timeout (seconds, mmengine's convention) bounds how
    long a CPU process waits on a hung peer; torch wants a timedelta."""
    import torch.distributed as dist
    from mmengine.config import Config

    from convmlp_mm.engine.launch import setup_cpu_distributed
    for name, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                            MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(name, value)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl',
                                                 timeout=120))))
    try:
        assert setup_cpu_distributed(cfg, 'pytorch')
        assert dist.get_backend() == 'gloo'
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
