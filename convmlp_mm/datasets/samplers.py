"""Samplers that resume where a run stopped, and per-sample random seeds.

mmengine 0.10.7's ``IterBasedTrainLoop`` resumes at iteration N by fetching
N batches and throwing them away; its ``EpochBasedTrainLoop`` restarts a
half-done epoch from its first batch. The classes here start the data at
the right sample instead, by index, without reading any image:

- :class:`ResumableDefaultSampler` (``DefaultSampler``'s order, per epoch)
  and :class:`ResumableInfiniteSampler` (one shuffled pass of the dataset per
  "epoch" of the stream, seeded ``seed + epoch``) start at any position in
  O(1);
- :class:`ResumableBatchSampler` wraps the batch sampler a config names:
  plain batching moves the sampler's start; any other batch sampler
  (mmdet's ``AspectRatioBatchSampler``) is replayed on indices only.

Every index they yield is a :class:`SeededIndex`: the sample's position in
the stream gives it a seed (:func:`sample_seed`), and
:class:`SeededSampleDataset` runs the pipeline's random draws (flip, resize,
crop, photometric) from that seed, in a data-loader worker or in the main
process alike. A sample's augmentation is therefore a function of (seed,
epoch, position), whatever worker loads it and whether or not the run was
resumed: that is how each worker's random state is "restored".
"""
import random
from contextlib import contextmanager
from typing import Iterator, List, Optional, Union

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import BatchSampler, Dataset, Sampler


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 32-bit seed for the sample at ``position`` of ``epoch``'s order
    (NumPy's ``SeedSequence`` hashing: independent streams per sample)."""
    sequence = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, position])
    return int(sequence.generate_state(1)[0])


class SeededIndex(int):
    """A dataset index that carries the seed of its sample's random draws.

    An ``int`` everywhere an index is used (``get_data_info``, slicing); it
    pickles to data-loader workers with its seed.
    """

    def __new__(cls, index: int, seed: int) -> 'SeededIndex':
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __getnewargs__(self):
        return (int(self), self.seed)


@contextmanager
def seeded_rngs(seed: int):
    """Seed Python's, NumPy's and torch's CPU generators for a block and put
    the caller's states back afterwards (the main process keeps its own
    stream for drop path when the data is loaded in-process)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@DATASETS.register_module()
class SeededSampleDataset(Dataset):
    """Wraps a dataset (a config or a built one): a :class:`SeededIndex`
    runs its sample's pipeline under that seed. Everything else is the
    wrapped dataset's."""

    def __init__(self, dataset: Union[dict, Dataset]) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        seed = getattr(index, 'seed', None)
        if seed is None:
            return self.dataset[index]
        with seeded_rngs(seed):
            return self.dataset[int(index)]

    def __getattr__(self, name):
        # Guard: unpickling in a worker looks attributes up before
        # ``dataset`` is set.
        if name == 'dataset' or 'dataset' not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.dataset, name)


@DATA_SAMPLERS.register_module()
class ResumableDefaultSampler(DefaultSampler):
    """``DefaultSampler`` (same arguments, same order) whose next pass can
    start at a position (:meth:`set_start`); yields :class:`SeededIndex`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start = 0

    def set_start(self, num_samples: int) -> None:
        """Skip this rank's first ``num_samples`` in the next pass only."""
        self._start = int(num_samples)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())  # this rank's share, in order
        start, self._start = self._start, 0
        seed, epoch = self.seed, self.epoch
        rank, world_size = self.rank, self.world_size
        # Seeds are made lazily: an epoch's start costs no more than
        # DefaultSampler's.
        return (SeededIndex(indices[i],
                            sample_seed(seed, epoch, i * world_size + rank))
                for i in range(start, len(indices)))


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """``InfiniteSampler``'s arguments; the stream is one pass of the
    dataset after another, pass ``e`` shuffled with seed ``seed + e`` (as
    ``DefaultSampler`` per epoch), so any position is found in O(1)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start = 0

    def set_start(self, num_samples: int) -> None:
        """Start this rank's stream after its first ``num_samples``."""
        self._start = int(num_samples)

    def _order(self, epoch: int) -> List[int]:
        if not self.shuffle:
            return list(range(self.size))
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.size, generator=gen).tolist()

    def __iter__(self) -> Iterator[int]:
        position = self._start * self.world_size + self.rank
        epoch, order = None, None
        while True:
            this_epoch, offset = divmod(position, self.size)
            if this_epoch != epoch:
                epoch, order = this_epoch, self._order(this_epoch)
            yield SeededIndex(order[offset],
                              sample_seed(self.seed, epoch, offset))
            position += self.world_size


@DATA_SAMPLERS.register_module()
class ResumableBatchSampler(Sampler):
    """Batches of ``sampler`` as ``batch_sampler`` (a config; ``None``:
    plain batches of ``batch_size``) makes them, after skipping the first
    ``n`` of the next pass (:meth:`skip`) without loading any sample.

    ``hold()`` makes the next pass empty: a loop that builds its iterator
    before it knows where to resume loads nothing in vain.
    """

    def __init__(self, sampler: Sampler, batch_size: int,
                 batch_sampler: Optional[dict] = None,
                 drop_last: bool = False, held: bool = False) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        if batch_sampler is None:
            self.batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        else:
            self.batch_sampler = DATA_SAMPLERS.build(
                batch_sampler,
                default_args=dict(sampler=sampler, batch_size=batch_size))
        self._skip = 0
        self._held = held

    def skip(self, num_batches: int) -> None:
        self._skip = int(num_batches)

    def hold(self, held: bool = True) -> None:
        self._held = held

    @property
    def plain(self) -> bool:
        """Batches are consecutive runs of the sampler's order."""
        return type(self.batch_sampler) is BatchSampler and hasattr(
            self.sampler, 'set_start')

    def __iter__(self) -> Iterator[list]:
        # A generator: the skip is used at the first batch, not when
        # DataLoader calls iter() (it does twice for a worker iterator).
        if self._held:
            return
        skip, self._skip = self._skip, 0
        if self.plain:
            self.sampler.set_start(skip * self.batch_size)
            yield from self.batch_sampler
            return
        batches = iter(self.batch_sampler)
        # Indices (and at most the dataset's annotations, for grouping)
        # only: no image is read for a skipped batch.
        for _ in range(skip):
            next(batches, None)
        yield from batches

    def __len__(self) -> int:
        return len(self.batch_sampler)


def sampler_seed(dataloader) -> Optional[int]:
    """The seed of the data order of a loader built by
    :func:`resumable_dataloader_cfg`."""
    return getattr(getattr(dataloader.batch_sampler, 'sampler', None),
                   'seed', None)


def resumable_dataloader_cfg(cfg: dict) -> dict:
    """A copy of a dataloader config whose sampler, batch sampler and
    dataset resume as described above. A sampler other than mmengine's two
    keeps its type and is skipped by replaying its indices."""
    cfg = dict(cfg)
    sampler = dict(cfg.get('sampler') or {})
    kind = str(sampler.get('type', '')).split('.')[-1]
    sampler['type'] = dict(
        DefaultSampler='ResumableDefaultSampler',
        InfiniteSampler='ResumableInfiniteSampler').get(kind, sampler['type'])
    cfg['sampler'] = sampler
    batch_sampler = cfg.get('batch_sampler')
    wrapped = dict(type='ResumableBatchSampler', batch_sampler=batch_sampler)
    if batch_sampler is None:
        # DataLoader refuses drop_last next to a batch sampler.
        wrapped['drop_last'] = cfg.pop('drop_last', False)
    cfg['batch_sampler'] = wrapped
    # A config, built by Runner.build_dataloader (which deep-copies a built
    # dataset).
    cfg['dataset'] = dict(type='SeededSampleDataset', dataset=cfg['dataset'])
    return cfg
