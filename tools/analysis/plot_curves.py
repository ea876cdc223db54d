"""Plot any run's curves (loss, lr, metrics) from mmengine's
``WORK_DIR/<timestamp>/vis_data/scalars.json`` to a PNG, one panel per key,
one line per work dir. No seaborn needed (upstream's analyze_logs.py needs
it).

    python tools/analysis/plot_curves.py work_dirs/a [work_dirs/b ...] \\
        --keys loss lr coco/bbox_mAP --out curves.png

A key matches a logged name exactly, or its last part after ``/`` (``mAP``
matches ``coco/bbox_mAP``, ``mIoU`` matches ``mIoU``).
"""
import argparse

from convmlp_mm_cli import command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dirs of tools/train.py runs')
    parser.add_argument('--keys', nargs='+', default=['loss', 'lr'],
                        help='logged names to plot (default: loss lr)')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


@command
def main(argv=None) -> None:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.analysis import plot_curves
    plot_curves(args.work_dirs, args.keys, args.out, args.title)
    print(f'{args.out}: {", ".join(args.keys)} of '
          f'{len(args.work_dirs)} run(s)')


if __name__ == '__main__':
    main()
