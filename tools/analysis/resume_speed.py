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
from typing import List, Optional

from convmlp_mm_cli import command


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


@command
def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.benchmark import resume_speed
    resume_speed(args.iters, args.upstream_up_to, args.workers,
                 args.data_root)


if __name__ == '__main__':
    main()
