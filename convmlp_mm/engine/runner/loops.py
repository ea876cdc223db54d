"""Training loops that resume mid-epoch and skip used data by index.

``ResumableEpochBasedTrainLoop`` and ``ResumableIterBasedTrainLoop`` take
exactly the arguments of mmengine's ``EpochBasedTrainLoop`` and
``IterBasedTrainLoop``. On resume they start the sampler at the first batch
not yet trained (:mod:`convmlp_mm.datasets.samplers`) instead of fetching
and dropping N batches (mmengine's "Advance dataloader N steps"), and an
epoch-based run resumed from a mid-epoch checkpoint continues that epoch
rather than training it again from its start. Each sample's random
augmentation follows from its position in the data order, and the data
loader's own draw from the global torch generator (the workers' base seed)
is kept out of the model's stream, so a resumed run draws what the
uninterrupted one did.
"""
import copy
from typing import Dict, Union

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from convmlp_mm.datasets.samplers import resumable_dataloader_cfg


def _resumable(dataloader: Union[DataLoader, Dict],
               held: bool = False) -> Union[DataLoader, Dict]:
    if not isinstance(dataloader, dict):
        return dataloader  # built by the caller: used as it is
    cfg = resumable_dataloader_cfg(copy.deepcopy(dataloader))
    cfg['batch_sampler']['held'] = held
    return cfg


def _new_iterator(dataloader: DataLoader):
    # A new data-loader iterator draws the workers' base seed from the
    # global torch generator; the samples' seeds make it unused, and drawing
    # it would shift drop path after a resume.
    with torch.random.fork_rng(devices=[]):
        return iter(dataloader)


def _skip(dataloader: DataLoader, num_batches: int, where: str) -> None:
    batch_sampler = dataloader.batch_sampler
    if num_batches <= 0 or not hasattr(batch_sampler, 'skip'):
        return
    batch_sampler.skip(num_batches)
    how = ('by moving the sampler\'s start' if batch_sampler.plain else
           'by replaying the batch sampler on indices')
    print_log(f'Resuming {where}: {num_batches} batches already trained are '
              f'skipped {how}; no sample is loaded for them.',
              logger='current')


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes in the middle of an epoch."""

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        super().__init__(runner, _resumable(dataloader), *args, **kwargs)

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        # Batches of this epoch a resumed checkpoint already holds.
        done = max(self._iter - self._epoch * len(self.dataloader), 0)
        _skip(self.dataloader, done, f'epoch {self._epoch + 1} at batch '
              f'{done + 1}')
        batches = _new_iterator(self.dataloader)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


class _InfiniteIterator:
    """mmengine's ``_InfiniteDataloaderIterator`` (next pass when a finite
    sampler ends), starting at pass ``epoch`` and drawing no seed from the
    model's generator."""

    def __init__(self, dataloader: DataLoader, epoch: int = 0) -> None:
        self._dataloader = dataloader
        self._epoch = epoch
        self._set_epoch()
        self._iterator = _new_iterator(dataloader)

    def _set_epoch(self) -> None:
        sampler = getattr(self._dataloader.batch_sampler, 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self._epoch)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            self._set_epoch()
            self._iterator = _new_iterator(self._dataloader)
            return next(self._iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume at iteration N costs no more than
    a start: the sampler begins at sample N x batch size."""

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        # Held: the parent builds an iterator before the resume point is
        # known, and it must not load (or prefetch) anything.
        super().__init__(runner, _resumable(dataloader, held=True), *args,
                         **kwargs)

    def _start_data(self) -> None:
        batch_sampler = self.dataloader.batch_sampler
        if hasattr(batch_sampler, 'hold'):
            batch_sampler.hold(False)
        sampler = getattr(batch_sampler, 'sampler', None)
        epoch, done = 0, self._iter
        if not isinstance(sampler, InfiniteSampler) and done:
            # A finite sampler: whole passes go by set_epoch.
            epoch, done = divmod(done, len(self.dataloader))
        _skip(self.dataloader, done, f'at iteration {self._iter + 1}')
        self.dataloader_iterator = _InfiniteIterator(self.dataloader, epoch)
        if not hasattr(batch_sampler, 'skip'):
            # A data loader built by the caller: mmengine's way, fetching.
            for _ in range(done):
                next(self.dataloader_iterator)

    def run(self) -> None:
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self._start_data()
        # From here on as IterBasedTrainLoop.run.
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
