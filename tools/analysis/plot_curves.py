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
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from convmlp_mm.errors import ConfigError
from convmlp_mm.cli import command
from convmlp_mm.checkpoint.fileio import partial_path, replace_atomically
from convmlp_mm.visualization import load_scalars


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dirs of tools/train.py runs')
    parser.add_argument('--keys', nargs='+', default=['loss', 'lr'],
                        help='logged names to plot (default: loss lr)')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def _match(key: str, names: Sequence[str]) -> Optional[str]:
    if key in names:
        return key
    tails = [n for n in names if n.split('/')[-1] == key or
             n.split('/')[-1].endswith('_' + key)]
    return sorted(tails, key=len)[0] if tails else None


def curve(work_dir: str, key: str
          ) -> Optional[Tuple[str, List[int], List[float]]]:
    """``(logged name, iterations, values)`` of ``key`` in ``work_dir``'s
    training or validation records, or ``None``."""
    train, val = load_scalars(work_dir)
    for records in (train, val):
        names = sorted({n for r in records for n in r})
        name = _match(key, names)
        if name:
            points = [(r['iter'], float(r[name])) for r in records
                      if name in r]
            return name, [p[0] for p in points], [p[1] for p in points]
    return None


def main(argv=None) -> None:
    args = parse_args(argv)
    for work_dir in args.work_dirs:
        if not load_scalars(work_dir)[0]:
            raise ConfigError(
                f'{work_dir} holds no training records (<timestamp>/vis_data/'
                'scalars.json); give the --work-dir of a tools/train.py run.')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(args.keys),
                             figsize=(4.5 * len(args.keys), 3.6),
                             squeeze=False)
    for ax, key in zip(axes[0], args.keys):
        found = False
        for work_dir in args.work_dirs:
            result = curve(work_dir, key)
            if result is None:
                continue
            name, iters, values = result
            found = True
            ax.plot(iters, values, marker='o' if len(iters) < 20 else None,
                    label=osp.basename(osp.normpath(work_dir)))
            ax.set_title(name)
        if not found:
            raise ConfigError(
                f'--keys {key}: no run in {", ".join(args.work_dirs)} logged '
                f'it; logged names are in vis_data/scalars.json (e.g. loss, '
                'lr, coco/bbox_mAP, mIoU).')
        if key.startswith('loss') or key.endswith('loss'):
            ax.set_yscale('log')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    partial = partial_path(args.out)
    fig.savefig(partial, format='png', dpi=100, bbox_inches='tight')
    replace_atomically(partial, args.out)
    plt.close(fig)
    print(f'{args.out}: {", ".join(args.keys)} of '
          f'{len(args.work_dirs)} run(s)')


if __name__ == '__main__':
    command(main)()
