"""Time to the first new batch after resuming at iteration N: mmengine's
``IterBasedTrainLoop`` (fetch and drop N batches) against
``ResumableIterBasedTrainLoop`` (start the sampler at N x batch size)
(``tools/analysis/resume_speed.py``).

Both read the Semantic FPN paper config's training data (its
``InfiniteSampler``, RandomResize, RandomCrop, RandomFlip and
PhotoMetricDistortion) from the built-in ADE20K data at 128x128 with 64x64
crops, through the loops' own iterators.
"""
import tempfile
import time
from typing import List, Optional, Sequence

from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator

from convmlp_mm.benchmark.sections import config_path
from convmlp_mm.config import load_config, set_data_root
from convmlp_mm.datasets import make_ade20k_dataset
from convmlp_mm.datasets.samplers import resumable_dataloader_cfg
from convmlp_mm.engine.runner.loops import _InfiniteIterator

__all__ = ['first_batch_seconds', 'resume_speed', 'train_loader_cfg']

CONFIG = 'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'


def train_loader_cfg(data_root: str, workers: int) -> dict:
    """The Semantic FPN config's training loader on ``data_root``, resized
    around 128x128 and cropped to 64x64."""
    cfg = load_config(config_path(CONFIG))
    set_data_root(cfg, data_root)
    loader = cfg.train_dataloader
    loader.num_workers = workers
    loader.persistent_workers = workers > 0
    pipeline = loader.dataset.pipeline
    pipeline[2].scale = (128, 128)  # RandomResize around 128x128
    pipeline[3].crop_size = (64, 64)  # RandomCrop
    return loader.to_dict()


def first_batch_seconds(loader_cfg: dict, done: int, ours: bool) -> float:
    """Seconds from building the loader to the first batch after ``done``
    iterations, through our resumable loop's iterator or mmengine's."""
    start = time.perf_counter()
    if ours:
        loader = Runner.build_dataloader(
            resumable_dataloader_cfg(loader_cfg), seed=0)
        loader.batch_sampler.skip(done)
        batches = _InfiniteIterator(loader)
    else:
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = _InfiniteDataloaderIterator(loader)
        for _ in range(done):  # what IterBasedTrainLoop.run does
            next(batches)
    next(batches)
    return time.perf_counter() - start


def resume_speed(iters: Sequence[int], upstream_up_to: int,
                 workers: int = 0, data_root: Optional[str] = None
                 ) -> List[str]:
    """The Markdown table, each row printed as it is measured; mmengine's
    loop is timed only up to ``upstream_up_to`` iterations. Without
    ``data_root`` the built-in data is written to a temporary folder."""
    init_default_scope('mmseg')
    with tempfile.TemporaryDirectory() as tmp:
        data_root = data_root or make_ade20k_dataset(
            f'{tmp}/ade', num_train=64, num_val=4, image_size=(128, 128))
        loader_cfg = train_loader_cfg(data_root, workers)
        batch = loader_cfg['batch_size']
        for ours in (True, False):  # imports and first builds, untimed
            first_batch_seconds(loader_cfg, 0, ours)
        rows = ['| N (iterations done) | images skipped | mmengine '
                'IterBasedTrainLoop (s) | ResumableIterBasedTrainLoop (s) |',
                '|---:|---:|---:|---:|']
        for done in iters:
            ours = first_batch_seconds(loader_cfg, done, ours=True)
            upstream = 'not run'
            if done <= upstream_up_to:
                seconds = first_batch_seconds(loader_cfg, done, ours=False)
                upstream = f'{seconds:.2f}'
            rows.append(f'| {done} | {done * batch} | {upstream} | '
                        f'{ours:.2f} |')
            print(rows[-1], flush=True)
    print(f'\nTime from building the data loader to the first new batch '
          f'(batch {batch}, {workers} workers):\n')
    print('\n'.join(rows))
    return rows
