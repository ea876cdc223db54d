"""Figures of validation predictions: the per-image drawings of mmdet's
``DetLocalVisualizer`` / mmseg's ``SegLocalVisualizer`` (``tools/test.py
--show-dir``) in one titled grid, and label maps with the dataset's palette
beside their images."""
import glob
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np

from convmlp_mm.analysis.plotting import pyplot, save_figure

__all__ = ['find_files', 'save_image_grid', 'save_segmentation_figure']


def save_image_grid(image_files: Sequence[str], out_file: str, title: str,
                    columns: int = 2) -> str:
    """Lay out images (e.g. ``--show-dir`` output) in a titled grid."""
    plt = pyplot()
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
    return save_figure(fig, out_file)


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
    plt = pyplot()
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
    return save_figure(fig, out_file)


def find_files(folder: str, pattern: str = '*.png',
               limit: Optional[int] = None) -> List[str]:
    """Sorted files under ``folder`` (recursively) matching ``pattern``."""
    found = sorted(glob.glob(osp.join(folder, '**', pattern), recursive=True))
    return found[:limit] if limit else found
