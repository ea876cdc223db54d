"""./dist_detection.sh with 2 CPU processes over gloo (what a machine without
CUDA runs), the launchers' task check, and the CPU DDP wrapper."""
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from tool_artifacts import dist_retinanet, read  # noqa: F401

from convmlp_mm.engine import CPUDistributedDataParallel

from tools_run import REPO, RETINANET, SEMFPN, run


@pytest.mark.e2e
@pytest.mark.xdist_group('tool_runs')
def test_dist_detection_trains_with_two_cpu_processes(dist_retinanet):  # noqa: F811
    """The launch itself is the shared artifact (tests/tool_artifacts.py):
    test_upstream_tools.py reruns its dumped config."""
    out = read(dist_retinanet['stdout']) + read(dist_retinanet['stderr'])
    assert 'Distributed training: True' in out
    assert "type='CPUDistributedDataParallel'" in read(
        dist_retinanet['config'])
    # Each process sees half of the 8 images: 2 iterations of 2 x 2 images.
    assert 'Epoch(train) [1][2/2]' in out, out[-3000:]
    assert 'coco/bbox_mAP:' in out
    # Only rank 0 writes the checkpoint (gloo barrier, no deadlock).
    assert osp.isfile(osp.join(dist_retinanet['work_dir'], 'epoch_1.pth'))


def test_launchers_refuse_the_other_tasks_config(tmp_path):
    data = tmp_path / 'ade'
    data.mkdir()
    proc = run([osp.join(REPO, 'dist_detection.sh'), SEMFPN, '2', str(data)],
               tmp_path)
    assert proc.returncode == 1
    assert 'is a segmentation config' in proc.stderr
    assert f'Use ./dist_segmentation.sh {SEMFPN} GPUS DATA_ROOT' in \
        proc.stderr
    # Refused once, before torchrun started any process.
    assert 'torch.distributed' not in proc.stderr

    proc = run([osp.join(REPO, 'dist_segmentation.sh'), RETINANET, '1',
                str(data)], tmp_path)
    assert proc.returncode == 1
    assert 'Use ./dist_detection.sh' in proc.stderr

    proc = run([osp.join(REPO, 'dist_detection.sh'), RETINANET], tmp_path)
    assert proc.returncode == 2
    assert 'usage:' in proc.stderr


def test_cpu_ddp_wrapper_drops_device_ids_and_syncbn(tmp_path):
    """What mmengine's Runner builds on CPU: device_ids=[LOCAL_RANK] is
    ignored and SyncBN (no CPU kernel in torch) becomes BN."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4))
        wrapped = CPUDistributedDataParallel(module=model, device_ids=[0])
        assert wrapped.device_ids is None
        assert not any(isinstance(m, nn.SyncBatchNorm)
                       for m in wrapped.modules())
        wrapped(torch.rand(2, 3, 8, 8)).sum().backward()
        assert wrapped.module[0].weight.grad is not None
        # DDP's reducer must go before its process group: freed after
        # destroy_process_group, gloo's destructor waits forever on a worker.
        del wrapped
    finally:
        dist.destroy_process_group()
