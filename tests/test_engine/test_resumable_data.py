"""Resume skips used samples at the sampler, by index, without loading
them; each sample's augmentation follows from its position, whichever
process loads it. Expected orders come from mmengine's and mmdet's own
samplers and from torch.randperm, as the samplers document them."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.runner import Runner
from torch.utils.data import Dataset

from convmlp_mm.datasets.samplers import (
    ResumableDefaultSampler,
    ResumableInfiniteSampler,
    SeededIndex,
    SeededSampleDataset,
    resumable_dataloader_cfg,
)


class Counting(Dataset):
    """Returns (index, a NumPy draw, a torch draw) and counts loads in the
    class (Runner.build_dataloader loads from a deep copy)."""
    loaded = 0

    def __init__(self, size=10, shapes=None):
        self.size = size
        self.shapes = shapes or [(64, 48)] * size

    def __len__(self):
        return self.size

    def get_data_info(self, index):
        width, height = self.shapes[index]
        return dict(width=width, height=height)

    def __getitem__(self, index):
        Counting.loaded += 1
        return (int(index), float(np.random.rand()),
                float(torch.rand(1)))


def as_list(batch):
    return batch


def loader(dataset, sampler, batch_size=2, workers=0, batch_sampler=None):
    cfg = dict(dataset=dataset, batch_size=batch_size, num_workers=workers,
               sampler=dict(type=sampler, shuffle=True, seed=7),
               batch_sampler=batch_sampler,
               collate_fn=as_list)
    cfg = resumable_dataloader_cfg(cfg)
    return Runner.build_dataloader(cfg, seed=7)


def indices(batches):
    return [[int(s[0]) for s in batch] for batch in batches]


def test_default_sampler_keeps_mmengines_order_and_starts_anywhere():
    dataset = Counting(10)
    upstream = DefaultSampler(dataset, shuffle=True, seed=3)
    ours = ResumableDefaultSampler(dataset, shuffle=True, seed=3)
    for sampler in (upstream, ours):
        sampler.set_epoch(2)
    expected = list(upstream)
    assert [int(i) for i in ours] == expected
    ours.set_start(4)
    assert [int(i) for i in ours] == expected[4:]
    assert [int(i) for i in ours] == expected  # the start is for one pass


def test_infinite_sampler_pass_e_is_randperm_with_seed_plus_e():
    sampler = ResumableInfiniteSampler(Counting(10), shuffle=True, seed=5)
    expected = []
    for epoch in range(3):
        gen = torch.Generator().manual_seed(5 + epoch)
        expected += torch.randperm(10, generator=gen).tolist()
    stream = iter(sampler)
    assert [int(next(stream)) for _ in range(30)] == expected
    sampler.set_start(13)
    stream = iter(sampler)
    assert [int(next(stream)) for _ in range(17)] == expected[13:]


class LoadLog(Dataset):
    """Counting's samples; each load appends its index to a file, so loads
    in worker processes are counted too."""

    def __init__(self, path, size=10):
        self.path, self.size = str(path), size

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        with open(self.path, 'a') as f:
            f.write(f'{int(index)}\n')
        return (int(index), 0.0, 0.0)

    def loads(self) -> int:
        with open(self.path) as f:
            return len(f.read().split())


@pytest.mark.parametrize('workers', [0, 2])
def test_resume_at_10k_iterations_loads_only_the_next_batch(tmp_path,
                                                            workers):
    """The first batch after 10,000 iterations is the 10,001st of the
    stream, and getting it loads that batch (and, with workers, what they
    prefetch: 2 batches each), not the 10,000 before it as mmengine's
    fetch-and-drop loop would."""
    expected = []
    for epoch in range(2001):  # 10,001 batches of 2 from passes of 10
        gen = torch.Generator().manual_seed(7 + epoch)
        expected += torch.randperm(10, generator=gen).tolist()
    for skip in (0, 10_000):
        dataset = LoadLog(tmp_path / f'loads_{skip}.txt')
        open(dataset.path, 'w').close()
        data = loader(dataset, 'InfiniteSampler', workers=workers)
        data.batch_sampler.skip(skip)
        batches = iter(data)
        first = next(batches)
        assert [s[0] for s in first] == expected[2 * skip:2 * skip + 2]
        del batches  # workers stop: no more loads
        prefetched = 2 * 2 * workers  # prefetch_factor 2, batch 2
        assert 2 <= dataset.loads() <= 2 + prefetched


def test_aspect_ratio_batches_are_replayed_on_indices_only():
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    shapes = [(64, 48) if i % 3 else (48, 64) for i in range(12)]
    dataset = Counting(12, shapes)
    upstream = AspectRatioBatchSampler(
        DefaultSampler(dataset, shuffle=True, seed=7), batch_size=2)
    expected = [list(b) for b in upstream]
    data = loader(dataset, 'DefaultSampler',
                  batch_sampler=dict(type='mmdet.AspectRatioBatchSampler'))
    Counting.loaded = 0
    data.batch_sampler.skip(3)
    assert indices(data) == expected[3:]
    # 6 trained batches loaded; the 3 skipped were only grouped.
    assert Counting.loaded == 12 - 6


def test_augmentation_follows_the_position_not_the_worker():
    dataset = Counting(10)
    in_process = [s for b in loader(dataset, 'DefaultSampler') for s in b]
    in_workers = [s for b in loader(dataset, 'DefaultSampler', workers=2)
                  for s in b]
    assert in_process == in_workers
    resumed = loader(dataset, 'DefaultSampler', workers=2)
    resumed.batch_sampler.skip(2)
    assert [s for b in resumed for s in b] == in_process[4:]
    # Different samples, different draws; the main process's generators
    # are left where they were.
    assert len({s[1] for s in in_process}) == 10
    states = (torch.get_rng_state(), np.random.get_state()[1].copy())
    seeded = SeededSampleDataset(dataset)
    assert seeded[SeededIndex(3, 11)] == seeded[SeededIndex(3, 11)]
    assert seeded[SeededIndex(3, 11)] != seeded[SeededIndex(3, 12)]
    assert torch.equal(states[0], torch.get_rng_state())
    assert (states[1] == np.random.get_state()[1]).all()


def test_seeded_index_is_an_int_that_pickles_with_its_seed():
    index = SeededIndex(3, seed=123)
    assert index == 3 and [10, 11, 12, 13][index] == 13
    copy = pickle.loads(pickle.dumps(index))
    assert (int(copy), copy.seed) == (3, 123)
