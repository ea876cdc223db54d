"""mmseg image/mask folders: mmseg's dataset silently skips images of
another suffix, and masks with labels outside the classes fail deep inside
the loss. :func:`check_seg_dataset` says which file is wrong and how.

Which files are opened, and how far, is
:mod:`~convmlp_mm.datasets.checks.images`' rule: every image and mask
exists; the first ``MAX_HEADERS_READ`` pairs have their headers read (the
pixel limit, a mask of its image's size); the first ``MAX_FILES_READ``
pairs also have their ends read and their masks' labels checked."""
import os
import os.path as osp
from typing import Dict, Iterator, Optional

import cv2
import numpy as np

from convmlp_mm.datasets.checks import images
from convmlp_mm.datasets.checks.classes import examples
from convmlp_mm.datasets.image_files import IMAGE_EXTENSIONS
from convmlp_mm.errors import AnnotationError

__all__ = ['check_seg_dataset']


def _walk(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            yield osp.relpath(osp.join(root, name), folder)


def _train_labels(mask: np.ndarray, reduce_zero_label: bool) -> np.ndarray:
    # mmseg's LoadAnnotations: 0 -> 255, then every label minus one.
    # bincount: a few times faster than np.unique on a label image.
    labels = np.flatnonzero(np.bincount(mask.ravel())).astype(np.int64)
    if reduce_zero_label:
        labels = np.where(labels == 0, 255, labels - 1)
        labels[labels == 254] = 255
    return labels


def check_seg_dataset(img_dir: str, ann_dir: str, img_suffix: str = '.jpg',
                      seg_map_suffix: str = '.png',
                      reduce_zero_label: bool = False,
                      num_classes: Optional[int] = None,
                      ignore_index: int = 255,
                      name: str = 'dataset') -> Dict[str, int]:
    """Check an mmseg image/mask folder pair: images of another suffix,
    images without a mask, truncated files, masks of another size than
    their image, labels outside ``0..num_classes-1`` (after
    ``reduce_zero_label``) other than ``ignore_index``, and masks with no
    pixel to score at all. Raises :class:`AnnotationError`."""
    found, others = [], []
    for rel in _walk(img_dir):
        if rel.endswith(img_suffix):
            found.append(rel)
        elif rel.lower().endswith(IMAGE_EXTENSIONS):
            others.append(rel)
    if others:
        raise AnnotationError(
            f'{name}: {len(others)} image(s) in {img_dir} do not end in '
            f'img_suffix "{img_suffix}" ({examples(others)}) and mmseg '
            'would skip them silently. Convert them to '
            f'{img_suffix}, or set {name}.img_suffix to their suffix.')
    scored = 0
    for index, rel in enumerate(images.with_progress(
            found, f'{name} images and masks')):
        img_path = osp.join(img_dir, rel)
        mask_path = osp.join(ann_dir, rel[:-len(img_suffix)] +
                             seg_map_suffix)
        read = index < images.MAX_FILES_READ
        header = index < images.MAX_HEADERS_READ
        # Sizes from the headers (nothing decoded yet): the pixel limit
        # comes before cv2 decodes a mask.
        img_size = images.check_image_file(img_path, f'{name} image',
                                           read=read, header=header)
        mask_size = images.check_image_file(
            mask_path, f'{name} mask of {img_path}', read=read,
            header=header)
        if img_size and mask_size and mask_size != img_size:
            raise AnnotationError(
                f'{name}: mask {mask_path} is {mask_size[0]}x'
                f'{mask_size[1]} but its image {img_path} is '
                f'{img_size[0]}x{img_size[1]}; a mask must have its '
                'image\'s size.')
        if not read:
            continue
        mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise AnnotationError(
                f'{name}: mask {mask_path} is not a single-channel label '
                'image (one class id per pixel).')
        labels = _train_labels(mask, reduce_zero_label)
        if num_classes is not None:
            bad = [int(v) for v in labels
                   if v != ignore_index and not 0 <= v < num_classes]
            if bad:
                raw = [v + 1 for v in bad] if reduce_zero_label else bad
                zero_note = ', with reduce_zero_label=True' \
                    if reduce_zero_label else ''
                raise AnnotationError(
                    f'{name}: mask {mask_path} holds label(s) '
                    f'{examples(raw)} outside the {num_classes} classes '
                    f'(valid: {1 if reduce_zero_label else 0}..'
                    f'{num_classes - (0 if reduce_zero_label else 1)}, or '
                    f'{ignore_index} to ignore{zero_note}). Fix the masks, '
                    'or the classes (metainfo) and the head\'s num_classes.')
        scored += int(any(v != ignore_index for v in labels))
    if not found:
        raise AnnotationError(
            f'{name}: no images ending in "{img_suffix}" in {img_dir}.')
    if scored == 0:
        raise AnnotationError(
            f'{name}: every mask checked in {ann_dir} is all ignore index '
            f'({ignore_index}) after reduce_zero_label={reduce_zero_label}, '
            'so there is nothing to train on or score (metrics would be '
            'NaN). Check reduce_zero_label and the masks.')
    return dict(images=len(found))
