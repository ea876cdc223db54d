"""Write a built-in synthetic dataset in the COCO or ADE20K format.

Examples::

    python tools/make_dataset.py coco data/synthetic_coco
    python tools/make_dataset.py ade20k data/synthetic_ade20k --num-train 128
    python tools/make_dataset.py coco data/shapes --classes person car dog

Running it again with the same arguments reuses the folder, or rebuilds it
when files are missing or changed; a folder holding anything else is refused.
A run killed mid-way leaves a staging folder that the next run removes.
"""
import argparse
import json
import os.path as osp
import sys

from convmlp_mm_cli import command

# convmlp_mm.datasets.DEFAULT_CLASSES, written out so that --help answers
# before torch loads (tests/test_tools/test_tool_startup.py compares them).
DEFAULT_CLASSES = ('circle', 'square', 'triangle')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a synthetic shapes dataset (COCO instances or '
        'ADE20K layout) for quick ConvMLP experiments.')
    parser.add_argument('format', choices=['coco', 'ade20k'])
    parser.add_argument('root', help='folder to create (default location: '
                        'data/synthetic_<format>)', nargs='?')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument(
        '--image-size', type=int, nargs=2, metavar=('WIDTH', 'HEIGHT'),
        help='default: 256 192 for coco, 256 256 for ade20k')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--classes', nargs='+', default=list(DEFAULT_CLASSES),
        help='coco: category names (class i is drawn as the i-th shape '
        'kind)')
    parser.add_argument('--num-classes', type=int, default=3,
                        help='ade20k: number of object classes')
    return parser.parse_args(argv)


@command
def main(argv=None) -> int:
    args = parse_args(argv)
    from convmlp_mm.datasets import (
        MARKER,
        make_ade20k_dataset,
        make_coco_dataset,
    )
    root = args.root or osp.join('data', f'synthetic_{args.format}')
    common = dict(num_train=args.num_train, num_val=args.num_val,
                  seed=args.seed)
    if args.image_size:
        common['image_size'] = tuple(args.image_size)
    if args.format == 'coco':
        root = make_coco_dataset(root, classes=args.classes, **common)
    else:
        root = make_ade20k_dataset(root, num_classes=args.num_classes,
                                   **common)
    with open(osp.join(root, MARKER)) as f:
        marker = json.load(f)
    print(f'{args.format} dataset at {root}: '
          f'{json.dumps(marker["summary"], sort_keys=True)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
