"""Tiny versions of the paper configs with their randomness on (random flip;
random resize, crop, flip and photometric distortion; drop path 0.1;
shuffled data) for the preemption tests: a ConvMLP of 0.1M parameters on
64x48 COCO images and 64x64 ADE20K crops."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import List, Tuple

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset

from helpers import REPO

TINY_ARCH = ('arch=dict(_delete_=True, channels=16, conv_blocks=1, '
             'blocks=[1, 1, 1], dims=[32, 48, 64], mlp_ratio=1)')

DETECTION = f'''
_base_ = '{REPO}/configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'
metainfo = dict(classes=('circle', 'square', 'triangle'))
model = dict(
    backbone=dict({TINY_ARCH}, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32,
                   stacked_convs=1))
# The paper pipeline (Resize, RandomFlip 0.5) at 64x48.
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(metainfo=metainfo, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(64, 48), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=2, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
randomness = dict(seed=0)
'''

SEGMENTATION = f'''
_base_ = '{REPO}/configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict({TINY_ARCH}, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=32))
# The paper pipeline (RandomResize 0.5-2, RandomCrop cat_max_ratio 0.75,
# RandomFlip, PhotoMetricDistortion) around 128x128 images, 64x64 crops.
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='RandomResize', scale=(128, 128), ratio_range=(0.5, 2.0),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(64, 64), cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=8, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=4))
randomness = dict(seed=0)
'''


def write_detection(root) -> Tuple[str, str]:
    """8 COCO images (4 iterations of 2 per epoch) and the config."""
    data = make_coco_dataset(osp.join(str(root), 'coco'), num_train=8,
                             num_val=2, image_size=(64, 48),
                             classes=('circle', 'square', 'triangle'))
    config = osp.join(str(root), 'retinanet_tiny_random.py')
    with open(config, 'w') as f:
        f.write(DETECTION)
    return data, config


def write_segmentation(root) -> Tuple[str, str]:
    data = make_ade20k_dataset(osp.join(str(root), 'ade'), num_train=8,
                               num_val=2, image_size=(128, 128))
    config = osp.join(str(root), 'fpn_tiny_random.py')
    with open(config, 'w') as f:
        f.write(SEGMENTATION)
    return data, config


ENV = dict(os.environ, PYTHONUNBUFFERED='1')


def train_command(config: str, data: str, work_dir, *extra) -> List[str]:
    return [sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
            '--data-root', data, '--work-dir', str(work_dir), *extra]


def run_to_end(cmd, env=None, timeout=300) -> str:
    proc = subprocess.run(cmd, cwd=REPO, env=env or ENV, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def signal_when(cmd, marker: str, signum=signal.SIGTERM, env=None,
                timeout=300, target=None) -> Tuple[int, str, float]:
    """Start ``cmd``; send ``signum`` (to the process, or to the pid
    ``target(proc)`` returns) when a line holds ``marker``; wait for the
    end. Returns (exit code, output, seconds from signal to exit)."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env or ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, sent = [], None
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            seen.append(line)
            if sent is None and marker in line:
                pid = target(proc) if target else proc.pid
                os.kill(pid, signum)
                sent = time.monotonic()
            assert time.monotonic() < deadline, 'run did not end'
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sent is not None, f'"{marker}" never came:\n' + ''.join(seen[-60:])
    return proc.returncode, ''.join(seen), time.monotonic() - sent


def weights(path) -> dict:
    return safe_torch_load(str(path), str(path))['state_dict']


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if a[k].is_floating_point())
