"""Running tools/train.py, tools/test.py and dist_*.sh on tiny data, in
subprocesses (each run sets mmengine's process-wide scope and logger)."""
import itertools
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from tool_runner import is_tool_command, run_tool

from helpers import REPO

RETINANET = 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'
MASKRCNN = 'configs/detection/maskrcnn_convmlp_s_fpn_1x_coco.py'
SEMFPN = 'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'
CLASSES = ('circle', 'square', 'triangle')
# (width, height) of the synthetic images; the pipelines resize to it.
COCO_SIZE = (128, 96)
ADE_SIZE = (128, 128)


def _loaders_in_process(names: Sequence[str]) -> List[str]:
    opts = []
    for loader in names:
        opts += [f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts


def detection_options(config: str, max_epochs: int = 1) -> List[str]:
    """--cfg-options for a few iterations at 128x96 on 3 synthetic classes,
    with no ImageNet checkpoint (offline) and every score kept so the COCO
    metric has detections to score."""
    classes = '[' + ','.join(f"'{c}'" for c in CLASSES) + ']'
    scale = f'({COCO_SIZE[0]},{COCO_SIZE[1]})'
    opts = [
        'model.backbone.init_cfg=None',
        f'train_cfg.max_epochs={max_epochs}',
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
        'default_hooks.logger.interval=1',
    ]
    for loader in ('train', 'val', 'test'):
        opts.append(f'{loader}_dataloader.dataset.metainfo.classes={classes}')
    if 'maskrcnn' in config:
        opts += [
            f'model.roi_head.bbox_head.num_classes={len(CLASSES)}',
            f'model.roi_head.mask_head.num_classes={len(CLASSES)}',
            'model.train_cfg.rpn_proposal.nms_pre=200',
            'model.train_cfg.rpn_proposal.max_per_img=100',
            'model.train_cfg.rcnn.sampler.num=64',
            'model.test_cfg.rpn.nms_pre=200',
            'model.test_cfg.rpn.max_per_img=100',
            'model.test_cfg.rcnn.score_thr=0.0',
            'model.test_cfg.rcnn.max_per_img=20',
        ]
    else:
        opts += [f'model.bbox_head.num_classes={len(CLASSES)}',
                 'model.test_cfg.score_thr=0.0',
                 'model.test_cfg.max_per_img=20']
    return opts + _loaders_in_process(
        ('train_dataloader', 'val_dataloader', 'test_dataloader'))


def segmentation_options(max_iters: int = 2) -> List[str]:
    """--cfg-options for a few iterations on 64x64 crops of 128x128 images.
    The 150 ADE20K classes stay: the synthetic labels 1-3 are classes 0-2."""
    scale = f'({ADE_SIZE[0]},{ADE_SIZE[1]})'
    return [
        'model.backbone.init_cfg=None',
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        f'default_hooks.checkpoint.interval={max_iters}',
        f'train_dataloader.dataset.pipeline.2.scale={scale}',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'model.data_preprocessor.size=(64,64)',
        f'val_dataloader.dataset.pipeline.1.scale={scale}',
        f'test_dataloader.dataset.pipeline.1.scale={scale}',
        'default_hooks.logger.interval=1',
    ] + _loaders_in_process(
        ('train_dataloader', 'val_dataloader', 'test_dataloader'))


def tool_env(tmp_path, extra: Optional[Dict[str, str]] = None) -> dict:
    env = dict(os.environ)
    # A private torch hub cache: no checkpoint download is ever found there.
    env['TORCH_HOME'] = os.path.join(str(tmp_path), 'torch_home')
    env['PYTHON'] = sys.executable
    env.update(extra or {})
    return env


def run(cmd: Sequence[str], tmp_path, timeout: float = 300,
        env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root; stdout and stderr as text.
    ``python tools/X.py ...`` runs as a fork of the preloaded tool server
    (tests/tool_runner.py), anything else as a subprocess."""
    if is_tool_command(cmd, REPO):
        return run_tool(cmd, REPO, tool_env(tmp_path, env), timeout)
    return subprocess.run(
        list(cmd), cwd=REPO, env=tool_env(tmp_path, env), timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def python_tool(tool: str, *args: str) -> List[str]:
    return [sys.executable, osp.join(REPO, 'tools', tool), *args]


_ports = itertools.count()


def free_port() -> int:
    """A port no other test of this run is given: each pytest-xdist worker
    draws from its own block of 1000 (gw0: 21000-21999, gw1: 22000-...,
    no xdist: 20000-), in order, skipping ports something already listens
    on. An OS-chosen free port could be handed out twice once released."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw-1')
    base = 21000 + 1000 * int(worker[2:])
    for _ in range(1000):
        port = base + next(_ports) % 1000
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
        return port
    raise RuntimeError(f'no free port in {base}-{base + 999}')


def explain(proc: subprocess.CompletedProcess) -> str:
    """The tail of a run's output, for assertion messages."""
    return (proc.stdout[-3000:] + '\n--- stderr ---\n' + proc.stderr[-3000:])
