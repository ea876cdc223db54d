"""Checkpoints that are called good are good, and a full disk loses nothing
(NonFiniteLossHook, AtomicCheckpointHook, ConvMLPRunner), with real mmengine
Runners on the toy model of tests/toy_runner.py."""
import errno
import os
import os.path as osp
import shutil
import uuid

import pytest
import torch
from mmengine.fileio.backends.local_backend import LocalBackend

from convmlp_mm.checkpoint import safe_torch_load
from convmlp_mm.engine import ConvMLPRunner, NonFiniteLossError
from convmlp_mm.engine.hooks.non_finite_loss_hook import (
    last_finite_checkpoint,
)
from convmlp_mm.errors import DiskFullError, NonFiniteCheckpointError

from toy_runner import ToyDataset, ToyModel


class InfiniteGradientModel(ToyModel):
    """For a batch marked ``poison``, adds sqrt(out - out) (value 0, gradient
    1 / (2 sqrt(0)) = inf): the loss stays finite, the update after it makes
    the weights NaN, as a diverging run does."""

    def forward(self, inputs, labels=None, poison=None, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode != 'loss':
            return out
        loss = ((out - labels)**2).mean()
        if poison is not None and bool(poison.any()):
            loss = loss + torch.sqrt(out - out.detach()).sum()
        return dict(loss=loss)


class PoisonDataset(ToyDataset):

    def __init__(self, poison_from):
        super().__init__(size=8)
        self.poison_from = poison_from

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item['poison'] = torch.tensor(index >= self.poison_from)
        return item


def runner(work_dir, *, max_iters, interval=1, hooks=True, resume=False,
           load_from=None, poison_from=100):
    return ConvMLPRunner(
        model=InfiniteGradientModel(),
        work_dir=str(work_dir),
        experiment_name=f'safety_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=PoisonDataset(poison_from),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2, num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='AtomicCheckpointHook', interval=interval,
                            by_epoch=False)),
        custom_hooks=[dict(type='NonFiniteLossHook')] if hooks else None,
        randomness=dict(seed=0), resume=resume, load_from=load_from)


# What the fake file system says is free: a number no real disk here has.
FREE = 12_077


def fake_disk_usage(asked):
    """shutil.disk_usage reporting FREE bytes free, recording the folder
    asked about."""
    real = shutil.disk_usage

    def disk_usage(path):
        asked.append(str(path))
        return real(path)._replace(free=FREE)
    return disk_usage


def weights_finite(path):
    state = safe_torch_load(path, path)
    return all(bool(torch.isfinite(v).all())
               for v in state['state_dict'].values())


def test_update_that_breaks_the_weights_is_never_saved(tmp_path):
    # Samples 4, 5 (iteration 3, batch 2 in order) have an infinite
    # gradient: the loss at iteration 3 is finite, the weights after it not.
    with pytest.raises(NonFiniteLossError) as info:
        runner(tmp_path, max_iters=6, poison_from=4).train()
    message = str(info.value)
    good = osp.join(str(tmp_path), 'iter_2.pth')
    assert 'Non-finite weights at iteration 3' in message
    assert 'although the loss was finite' in message
    assert f'The last good checkpoint is {good}.' in message
    assert sorted(f for f in os.listdir(tmp_path) if '.pth' in f) == [
        'iter_1.pth', 'iter_2.pth']
    assert weights_finite(good)
    with open(osp.join(str(tmp_path), 'last_checkpoint')) as f:
        assert f.read() == good


def test_stop_names_the_newest_checkpoint_with_finite_weights(tmp_path):
    # Without the hook, mmengine saves the broken weights (iter_3, iter_4).
    runner(tmp_path, max_iters=4, hooks=False, poison_from=4).train()
    assert [weights_finite(str(tmp_path / f'iter_{i}.pth'))
            for i in (1, 2, 3, 4)] == [True, True, False, False]
    probe = runner(tmp_path, max_iters=4)
    probe.message_hub.update_info('last_ckpt', str(tmp_path / 'iter_4.pth'))
    assert last_finite_checkpoint(probe) == str(tmp_path / 'iter_2.pth')

    # --resume from a broken checkpoint is refused, naming file and count.
    bad = str(tmp_path / 'iter_4.pth')
    with pytest.raises(NonFiniteCheckpointError) as info:
        runner(tmp_path, max_iters=6, resume=True, load_from=bad).train()
    assert bad in str(info.value)
    assert '2 of 2 tensors hold NaN or inf' in str(info.value)


def test_disk_full_keeps_previous_checkpoint_and_resumes(tmp_path,
                                                         monkeypatch):
    put = LocalBackend.put
    calls = []

    def full_disk(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == 3:  # the third checkpoint finds the disk full
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                          str(filepath))
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', full_disk)
    asked = []
    monkeypatch.setattr(shutil, 'disk_usage', fake_disk_usage(asked))
    with pytest.raises(DiskFullError) as info:
        runner(tmp_path, max_iters=5).train()
    message = str(info.value)
    previous = str(tmp_path / 'iter_2.pth')
    assert 'the disk is full' in message
    assert str(tmp_path / 'iter_3.pth') in message
    # What it needs is the previous checkpoint's size; where, with how much
    # (what the file system says of the checkpoint's folder at that moment).
    assert 'needs about' in message
    assert f'({osp.getsize(previous)} bytes) in {tmp_path}' in message
    assert asked == [str(tmp_path)]
    assert f'which has 11.8 KiB ({FREE} bytes) free' in message
    assert f'The previous checkpoint {previous} is kept' in message
    assert sorted(os.listdir(tmp_path)) == sorted(
        [d for d in os.listdir(tmp_path) if d.startswith('2')] +
        ['.train.lock', 'iter_1.pth', 'iter_2.pth', 'last_checkpoint'])
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == previous

    monkeypatch.undo()  # room again
    resumed = runner(tmp_path, max_iters=5, resume=True)
    resumed.train()
    assert resumed.iter == 5
    assert osp.isfile(tmp_path / 'iter_5.pth')
    assert weights_finite(str(tmp_path / 'iter_5.pth'))
