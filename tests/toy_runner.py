"""A tiny real mmengine Runner (linear model, 8 samples) for the reliability
tests: its checkpoints are genuine mmengine 0.10.7 training checkpoints
(message hub with HistoryBuffer/numpy, optimizer, schedulers) in seconds."""
import math
import os.path as osp
import uuid

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import convmlp_mm  # noqa: F401  (safe loaders, hooks)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        return out


class ToyDataset(Dataset):
    """Deterministic samples; ``nan_from`` makes labels NaN from that
    sample index on (a diverging run without touching the model)."""
    metainfo = dict(classes=('toy', ))

    def __init__(self, size=8, nan_from=None):
        self.size = size
        self.nan_from = nan_from

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        gen = torch.Generator().manual_seed(index)
        label = float(index)
        if self.nan_from is not None and index >= self.nan_from:
            label = math.nan
        return dict(inputs=torch.randn(2, generator=gen),
                    labels=torch.tensor(label))


def toy_runner(work_dir, *, max_iters=None, max_epochs=None, interval=1,
               checkpoint_type='AtomicCheckpointHook', max_keep_ckpts=-1,
               resume=False, load_from=None, dataset=None, custom_hooks=None,
               name=None):
    by_epoch = max_epochs is not None
    train_cfg = dict(by_epoch=True, max_epochs=max_epochs) if by_epoch \
        else dict(by_epoch=False, max_iters=max_iters)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        # Unique: mmengine keys its logger and scope instances by this name.
        experiment_name=name or f'toy_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=dataset or ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False,
                             milestones=[3], gamma=0.5),
        train_cfg=train_cfg,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type=checkpoint_type, interval=interval,
                            by_epoch=by_epoch,
                            max_keep_ckpts=max_keep_ckpts)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from)


from helpers import REPO  # noqa: E402

TRAIN = osp.join(REPO, 'tools', 'train.py')
# The real RetinaNet-ConvMLP config and pipeline, shrunk (a ConvMLP of 0.1M
# parameters, 64x48 images, 2 iterations per epoch) and without randomness:
# no flip, no drop path, a fixed seed (the sampler's shuffle follows it).
DETERMINISTIC_CONFIG = f'''
_base_ = '{REPO}/configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'
metainfo = dict(classes=('circle', 'square', 'triangle'))
model = dict(
    backbone=dict(arch=dict(_delete_=True, channels=16, conv_blocks=1,
                            blocks=[1, 1, 1],
                            dims=[32, 48, 64], mlp_ratio=1),
                  drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32,
                   stacked_convs=1))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 48), keep_ratio=True),
    dict(type='PackDetInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(metainfo=metainfo,
                                     pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=3, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
randomness = dict(seed=0)
'''


def write_tiny_coco(root):
    """A 4-image COCO set (64x48) and DETERMINISTIC_CONFIG under ``root``;
    returns (data_root, config_path)."""
    from convmlp_mm.datasets import make_coco_dataset
    data_root = make_coco_dataset(osp.join(str(root), 'coco'), num_train=4,
                                  num_val=2, image_size=(64, 48), seed=0)
    config = osp.join(str(root), 'retinanet_tiny_deterministic.py')
    with open(config, 'w') as f:
        f.write(DETERMINISTIC_CONFIG)
    return data_root, config
