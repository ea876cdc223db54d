"""Curves of training runs, from mmengine's
``WORK_DIR/<timestamp>/vis_data/scalars.json``: any logged key per run
(``tools/analysis/plot_curves.py``), losses and validation metrics side by
side (``tools/demo.py``), and loss curves compared (fp32 against ``--amp``,
``tools/analysis/amp_loss_curve.py``). matplotlib is imported when a figure
is drawn."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from convmlp_mm.analysis.plotting import pyplot, save_figure
from convmlp_mm.errors import ConfigError

__all__ = [
    'curve', 'load_scalars', 'match_key', 'plot_curves',
    'plot_loss_comparison', 'plot_training_curves'
]


def load_scalars(work_dir: str) -> Tuple[List[dict], List[dict]]:
    """Training and validation records of every run in ``work_dir``.

    mmengine writes ``<work_dir>/<timestamp>/vis_data/scalars.json`` once per
    run (a resumed run starts a new timestamp); later runs win for a step.
    Validation records of epoch-based loops are stamped with the epoch; they
    are converted to iterations here so both curves share one axis.
    """
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    iters_per_epoch = None
    for path in sorted(glob.glob(osp.join(work_dir, '2*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by an interruption
                if 'loss' in record and 'iter' in record:
                    train[record['iter']] = record
                    if record.get('epoch'):
                        per_epoch = record['iter'] / record['epoch']
                        iters_per_epoch = max(iters_per_epoch or 0,
                                              int(np.floor(per_epoch)))
                elif 'step' in record:
                    val[record['step']] = record
    val_rows = []
    for step, record in sorted(val.items()):
        record = dict(record)
        epoch_based = iters_per_epoch and not any(
            'epoch' not in r for r in train.values())
        record['iter'] = step * iters_per_epoch if epoch_based else step
        val_rows.append(record)
    return [train[k] for k in sorted(train)], val_rows


def plot_training_curves(runs: Sequence[Tuple[str, str, Sequence[str]]],
                         out_file: str) -> str:
    """One column per run: losses over iterations above, validation metrics
    below.

    Args:
        runs: ``(title, work_dir, metric_keys)`` for each training run, e.g.
            ``('RetinaNet', 'work_dirs/x', ['coco/bbox_mAP'])``. Metrics in
            percent (mmseg's) are shown as fractions like pycocotools'.
        out_file: PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, len(runs), figsize=(5.2 * len(runs), 7),
                             squeeze=False)
    for col, (title, work_dir, metric_keys) in enumerate(runs):
        train, val = load_scalars(work_dir)
        ax = axes[0][col]
        if train:
            iters = [r['iter'] for r in train]
            loss_keys = sorted({k for r in train for k in r
                                if k.startswith('loss') or
                                k.endswith('loss')})
            for key in loss_keys:
                values = [r.get(key, np.nan) for r in train]
                ax.plot(iters, values, label=key,
                        linewidth=2.2 if key == 'loss' else 1.2)
            ax.set_yscale('log')
            ax.legend(fontsize=8)
        ax.set_title(f'{title}: training loss')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax = axes[1][col]
        for key in metric_keys:
            points = [(r['iter'], r[key]) for r in val if key in r]
            if not points:
                continue
            xs, ys = zip(*points)
            ys = np.asarray(ys, dtype=float)
            if ys.max() > 1.0:  # mmseg logs percentages
                ys = ys / 100
            ax.plot(xs, ys, marker='o', label=key.split('/')[-1])
        ax.set_ylim(0, 1)
        ax.set_title(f'{title}: validation')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    return save_figure(fig, out_file)


def plot_loss_comparison(iters: Sequence[int],
                         losses: Sequence[Tuple[str, Sequence[float]]],
                         title: str, out_file: str) -> str:
    """Training-loss curves of runs that share iterations, one line each
    (e.g. fp32 and ``--amp``), on a log scale.

    Args:
        iters: The iterations the losses were logged at.
        losses: ``(label, values)`` per run, ``values`` aligned with
            ``iters``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, values), style in zip(losses, ('-', '--', ':', '-.')):
        ax.plot(iters, values, style, linewidth=1.2, label=label)
    ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_ylabel('training loss')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, out_file)


def match_key(key: str, names: Sequence[str]) -> Optional[str]:
    """The logged name ``key`` stands for: itself, else the shortest name
    whose last part after ``/`` is ``key`` or ends with ``_<key>``
    (``mAP`` matches ``coco/bbox_mAP``)."""
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
        name = match_key(key, names)
        if name:
            points = [(r['iter'], float(r[name])) for r in records
                      if name in r]
            return name, [p[0] for p in points], [p[1] for p in points]
    return None


def plot_curves(work_dirs: Sequence[str], keys: Sequence[str],
                out_file: str, title: Optional[str] = None) -> str:
    """One panel per key (:func:`match_key`), one line per work dir; a
    folder without training records or a key no run logged is a
    :class:`ConfigError` naming it."""
    for work_dir in work_dirs:
        if not load_scalars(work_dir)[0]:
            raise ConfigError(
                f'{work_dir} holds no training records (<timestamp>/vis_data/'
                'scalars.json); give the --work-dir of a tools/train.py run.')
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6),
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        found = False
        for work_dir in work_dirs:
            result = curve(work_dir, key)
            if result is None:
                continue
            name, iters, values = result
            found = True
            ax.plot(iters, values, marker='o' if len(iters) < 20 else None,
                    label=osp.basename(osp.normpath(work_dir)))
            ax.set_title(name)
        if not found:
            plt.close(fig)
            logged = sorted({name for work_dir in work_dirs
                             for records in load_scalars(work_dir)
                             for record in records for name in record
                             if name not in ('iter', 'step', 'epoch')})
            raise ConfigError(
                f'--keys {key}: no run in {", ".join(work_dirs)} logged '
                f'it; they logged {", ".join(logged)}. Metrics (bbox_mAP, '
                'mIoU) are logged at each validation '
                '(train_cfg.val_interval): a run that stopped before its '
                'first, or whose validation found no detection, has none.')
        if key.startswith('loss') or key.endswith('loss'):
            ax.set_yscale('log')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out_file)
