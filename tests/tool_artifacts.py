"""Tool runs that more than one test module reads, made once per test run
(tests/artifacts.py): import the fixture into the test module and put the
test in the artifact's ``xdist_group``.

- ``dist_retinanet``: ./dist_detection.sh, RetinaNet-ConvMLP-S on 2 CPU
  processes (test_dist_launch.py; its dumped config: test_upstream_tools.py).
- ``semfpn_amp``: tools/train.py --amp, Semantic FPN-ConvMLP-S, 2 iterations
  (test_train_test_tools.py; its dumped config: test_upstream_tools.py).
- ``demo_upernet``: tools/demo.py --smoke --only upernet (the demo's job and
  the UperNet-ConvMLP-S training: test_demo_stronger_heads.py,
  test_configs/test_stronger_heads.py).
"""
import os.path as osp

import pytest
from artifacts import shared_artifact

from tools_run import (
    REPO,
    RETINANET,
    SEMFPN,
    detection_options,
    explain,
    free_port,
    python_tool,
    run,
    segmentation_options,
)


def _run_logged(folder, cmd, timeout=600, env=None):
    proc = run(cmd, folder, timeout=timeout, env=env)
    with open(osp.join(folder, 'stdout.log'), 'w') as f:
        f.write(proc.stdout)
    with open(osp.join(folder, 'stderr.log'), 'w') as f:
        f.write(proc.stderr)
    assert proc.returncode == 0, explain(proc)
    return dict(stdout=osp.join(folder, 'stdout.log'),
                stderr=osp.join(folder, 'stderr.log'))


@pytest.fixture(scope='session')
def dist_retinanet(tmp_path_factory, coco_root):
    """8 training images, 2 processes x 2 images: 2 iterations each, then
    COCO evaluation. Keys: work_dir, config (the dumped one), stdout,
    stderr."""
    def build(folder):
        work = osp.join(folder, 'work')
        info = _run_logged(folder, [
            osp.join(REPO, 'dist_detection.sh'), RETINANET, '2', coco_root,
            '--work-dir', work, '--cfg-options',
            *detection_options(RETINANET)
        ], env={'PORT': str(free_port()), 'NNODES': '1', 'NODE_RANK': '0',
                'MASTER_ADDR': '127.0.0.1'})
        return dict(info, work_dir=work,
                    config=osp.join(work, osp.basename(RETINANET)))
    return shared_artifact(tmp_path_factory, 'dist_retinanet', build)


@pytest.fixture(scope='session')
def semfpn_amp(tmp_path_factory, ade_root):
    """2 iterations with --amp (bfloat16 on CPU), validation at the end.
    Keys: work_dir, config (dumped), checkpoint, stdout, stderr."""
    def build(folder):
        work = osp.join(folder, 'work')
        info = _run_logged(folder, python_tool(
            'train.py', SEMFPN, '--amp', '--data-root', ade_root,
            '--work-dir', work, '--cfg-options', *segmentation_options()))
        return dict(info, work_dir=work,
                    config=osp.join(work, osp.basename(SEMFPN)),
                    checkpoint=osp.join(work, 'iter_2.pth'))
    return shared_artifact(tmp_path_factory, 'semfpn_amp', build)


@pytest.fixture(scope='session')
def demo_upernet(tmp_path_factory):
    """``tools/demo.py --smoke --only upernet``. Keys: work_dir (the demo's
    --work-dir), stdout, stderr."""
    def build(folder):
        work = osp.join(folder, 'wd')
        info = _run_logged(folder, python_tool(
            'demo.py', '--smoke', '--only', 'upernet', '--work-dir', work,
            '--data-dir', osp.join(folder, 'data')))
        return dict(info, work_dir=work)
    return shared_artifact(tmp_path_factory, 'demo_upernet', build)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()
