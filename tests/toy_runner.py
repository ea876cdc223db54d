"""A tiny real mmengine Runner (linear model, 8 samples) for the reliability
tests: its checkpoints are genuine mmengine 0.10.7 training checkpoints
(message hub with HistoryBuffer/numpy, optimizer, schedulers) in seconds."""
import math
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
