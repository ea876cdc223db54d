"""Pictures of a training run: loss and metric curves from mmengine's
``vis_data/scalars.json``, and figures of validation predictions.

The per-image drawing is mmdet's ``DetLocalVisualizer`` / mmseg's
``SegLocalVisualizer`` (``tools/test.py --show-dir``); these functions lay
their output, or label maps with the dataset's palette, out in one figure
with titles and a legend. matplotlib is imported when a figure is drawn.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from convmlp_mm.checkpoint.fileio import partial_path, replace_atomically

__all__ = [
    'find_files', 'load_scalars', 'plot_loss_comparison',
    'plot_training_curves', 'save_image_grid', 'save_segmentation_figure'
]


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only; no display needed
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out_file: str) -> str:
    """Save through a temporary name so a reader never sees half a PNG."""
    partial = partial_path(out_file)
    fig.savefig(partial, format='png', dpi=100, bbox_inches='tight')
    replace_atomically(partial, out_file)
    return out_file


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
    plt = _pyplot()
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
    path = _save(fig, out_file)
    plt.close(fig)
    return path


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
    plt = _pyplot()
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
    path = _save(fig, out_file)
    plt.close(fig)
    return path


def save_image_grid(image_files: Sequence[str], out_file: str, title: str,
                    columns: int = 2) -> str:
    """Lay out images (e.g. ``--show-dir`` output) in a titled grid."""
    plt = _pyplot()
    import mmcv
    rows = int(np.ceil(len(image_files) / columns))
    first = mmcv.imread(image_files[0])
    height, width = first.shape[:2]
    scale = 6.5 / width
    fig, axes = plt.subplots(
        rows, columns, squeeze=False,
        figsize=(6.5 * columns, scale * height * rows + 0.6))
    for ax in axes.flat:
        ax.axis('off')
    for ax, path in zip(axes.flat, image_files):
        ax.imshow(mmcv.imread(path, channel_order='rgb'))
        ax.set_title(osp.basename(path), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = _save(fig, out_file)
    plt.close(fig)
    return path


def save_segmentation_figure(samples: Sequence[Tuple[str, str, str]],
                             classes: Sequence[str],
                             palette: Sequence[Sequence[int]],
                             out_file: str,
                             title: str,
                             ignore_index: int = 255) -> str:
    """Image | ground truth | prediction, colour-coded, one row per sample.

    Args:
        samples: ``(image, ground-truth PNG, predicted PNG)`` paths; label
            maps hold class indices (the dataset's, after any label mapping).
        classes: Class names, for the legend.
        palette: RGB colour of each class.
    """
    plt = _pyplot()
    import mmcv
    from matplotlib.patches import Patch
    colours = np.zeros((256, 3), np.uint8)
    colours[:len(palette)] = np.asarray(palette, np.uint8)
    colours[ignore_index] = (255, 255, 255)
    fig, axes = plt.subplots(len(samples), 3, squeeze=False,
                             figsize=(10, 3.4 * len(samples) + 0.8))
    for row, (img_file, gt_file, pred_file) in enumerate(samples):
        img = mmcv.imread(img_file, channel_order='rgb')
        gt = mmcv.imread(gt_file, flag='unchanged')
        pred = mmcv.imread(pred_file, flag='unchanged')
        valid = gt != ignore_index
        accuracy = float((pred[valid] == gt[valid]).mean()) if valid.any() \
            else float('nan')
        for ax, picture, name in zip(
                axes[row], (img, colours[gt], colours[pred]),
                ('image', 'ground truth',
                 f'prediction (pixel acc. {accuracy:.3f})')):
            ax.imshow(picture)
            ax.set_title(f'{osp.basename(img_file)}: {name}' if name ==
                         'image' else name, fontsize=9)
            ax.axis('off')
    handles = [Patch(color=np.asarray(c) / 255, label=n)
               for n, c in zip(classes, palette)]
    fig.legend(handles=handles, loc='lower center', ncol=len(classes))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = _save(fig, out_file)
    plt.close(fig)
    return path


def find_files(folder: str, pattern: str = '*.png',
               limit: Optional[int] = None) -> List[str]:
    """Sorted files under ``folder`` (recursively) matching ``pattern``."""
    found = sorted(glob.glob(osp.join(folder, '**', pattern), recursive=True))
    return found[:limit] if limit else found
