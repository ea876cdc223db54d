"""Time to the first new batch after resuming at iteration N: mmengine's
``IterBasedTrainLoop`` (fetch and drop N batches) against
``ResumableIterBasedTrainLoop`` (start the sampler at N x batch size).

Both read the Semantic FPN paper config's training data (its
``InfiniteSampler``, RandomResize, RandomCrop, RandomFlip and
PhotoMetricDistortion) from the built-in ADE20K data at 128x128 with 64x64
crops, through the loops' own iterators; a Markdown table is printed.

    python tools/analysis/resume_speed.py          # N = 0, 1000, 10000
    python tools/analysis/resume_speed.py --iters 0 1000 --upstream-up-to 1000
"""
import argparse
import os.path as osp
import tempfile
import time
from typing import List, Optional

from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.loops import _InfiniteDataloaderIterator

from convmlp_mm.datasets import make_ade20k_dataset
from convmlp_mm.datasets.samplers import resumable_dataloader_cfg
from convmlp_mm.engine.runner.loops import _InfiniteIterator
from convmlp_mm.config.core import load_config
from convmlp_mm.config.data_checks import set_data_root
from convmlp_mm.cli import command

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/segmentation/fpn_convmlp_s_512x512_40k_'
                  'ade20k.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, nargs='+',
                        default=[0, 1000, 10000],
                        help='resume points N (iterations already done)')
    parser.add_argument(
        '--upstream-up-to', type=int, default=10000,
        help="time mmengine's fetch-and-drop only up to this N (it loads "
        'N x batch images)')
    parser.add_argument('--workers', type=int, default=0,
                        help='data-loader worker processes')
    parser.add_argument('--data-root', help='ADE20K-layout data (default: '
                        'the built-in data, written to a temporary folder)')
    return parser.parse_args(argv)


def train_loader_cfg(data_root: str, workers: int) -> dict:
    cfg = load_config(CONFIG)
    set_data_root(cfg, data_root)
    loader = cfg.train_dataloader
    loader.num_workers = workers
    loader.persistent_workers = workers > 0
    pipeline = loader.dataset.pipeline
    pipeline[2].scale = (128, 128)  # RandomResize around 128x128
    pipeline[3].crop_size = (64, 64)  # RandomCrop
    return loader.to_dict()


def first_batch_seconds(loader_cfg: dict, done: int, ours: bool) -> float:
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


@command
def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    init_default_scope('mmseg')
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root or make_ade20k_dataset(
            osp.join(tmp, 'ade'), num_train=64, num_val=4,
            image_size=(128, 128))
        loader_cfg = train_loader_cfg(data_root, args.workers)
        batch = loader_cfg['batch_size']
        for ours in (True, False):  # imports and first builds, untimed
            first_batch_seconds(loader_cfg, 0, ours)
        rows = ['| N (iterations done) | images skipped | mmengine '
                'IterBasedTrainLoop (s) | ResumableIterBasedTrainLoop (s) |',
                '|---:|---:|---:|---:|']
        for done in args.iters:
            ours = first_batch_seconds(loader_cfg, done, ours=True)
            upstream = 'not run'
            if done <= args.upstream_up_to:
                seconds = first_batch_seconds(loader_cfg, done, ours=False)
                upstream = f'{seconds:.2f}'
            rows.append(f'| {done} | {done * batch} | {upstream} | '
                        f'{ours:.2f} |')
            print(rows[-1], flush=True)
    print(f'\nTime from building the data loader to the first new batch '
          f'(batch {batch}, {args.workers} workers):\n')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
