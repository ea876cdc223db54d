"""A worker of a 2-process CPU run (./dist_detection.sh, torchrun + gloo) is
SIGKILLed: the launch exits non-zero within bounded time, and the run
resumes from its last checkpoint."""
import os
import signal
import socket
import subprocess
import sys
import time

from convmlp_mm.checkpoint.safe_loading import safe_torch_load

from toy_runner import REPO, write_tiny_coco

# torchrun polls its workers every 0.1 s and stops the others when one
# fails; anything near this bound would mean a hang in a gloo collective.
EXIT_BOUND_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch_env():
    return dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1',
                PORT=str(free_port()), MASTER_ADDR='127.0.0.1')


def worker_pid(launcher_pid: int, local_rank: int) -> int:
    """The pid of the launcher's descendant with LOCAL_RANK=local_rank."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo, descendants = [launcher_pid], []
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            descendants.append(child)
            todo.append(child)
    for pid in descendants:
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = f.read().split(b'\0')
        except OSError:
            continue
        if f'LOCAL_RANK={local_rank}'.encode() in env and b'RANK=' + str(
                local_rank).encode() in env:
            return pid
    raise AssertionError(f'no worker with LOCAL_RANK={local_rank}')


def read_last_checkpoint(work_dir):
    path = work_dir / 'last_checkpoint'
    return path.read_text().strip() if path.exists() else None


def test_dead_worker_ends_launch_and_run_resumes(tmp_path):
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = tmp_path / 'work'
    # 4 images, 2 processes x 2 per batch: one iteration per epoch. Many
    # epochs, so the run is still training when a worker is killed.
    cmd = [os.path.join(REPO, 'dist_detection.sh'), config, '2', data_root,
           '--work-dir', str(work_dir)]
    launcher = subprocess.Popen(
        cmd + ['--cfg-options', 'train_cfg.max_epochs=1000'], cwd=REPO,
        env=launch_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        seen = []
        for line in launcher.stdout:
            seen.append(line)
            if 'Saving checkpoint at 2 epochs' in line:
                break
        else:
            raise AssertionError('run ended early:\n' + ''.join(seen[-40:]))
        victim = worker_pid(launcher.pid, local_rank=1)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        rest, _ = launcher.communicate(timeout=EXIT_BOUND_S + 30)
        exit_s = time.monotonic() - killed_at
    finally:
        if launcher.poll() is None:  # only if the bound was broken
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    print(f'launch exited {exit_s:.1f} s after a worker was killed, '
          f'rc={launcher.returncode}')
    assert launcher.returncode != 0
    assert exit_s < EXIT_BOUND_S
    assert 'SIGKILL' in rest or 'Signal 9' in rest, rest[-2000:]

    last = read_last_checkpoint(work_dir)
    assert last is not None and os.path.isfile(last)
    # Killed while epoch 2's checkpoint was being written (or just after):
    # the last complete one is named, whichever it is.
    epoch = safe_torch_load(last, last)['meta']['epoch']
    assert epoch in (1, 2)

    resumed = subprocess.run(
        cmd + ['--resume', '--cfg-options',
               f'train_cfg.max_epochs={epoch + 1}'],
        cwd=REPO, env=launch_env(), capture_output=True, text=True,
        timeout=300)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f'resumed epoch: {epoch}, iter: {epoch}' in log
    assert f'Epoch(train) [{epoch + 1}][1/1]' in log
    assert read_last_checkpoint(work_dir) == str(
        work_dir / f'epoch_{epoch + 1}.pth')


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
