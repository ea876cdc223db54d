"""What is inside a dataset, checked before any model is built: each COCO
annotation and image file, each segmentation image and mask.

mmdet's ``CocoDataset`` silently drops an object with an unknown category
or a box under one pixel, pycocotools fails with a bare ``KeyError`` on an
annotation without ``area``, mmseg's dataset silently skips images of
another suffix, and masks with labels outside the classes fail deep inside
the loss. Here each is an :class:`AnnotationError` naming the file, the
image or annotation id, what is wrong and the fix; objects that mmdet drops
on purpose (empty boxes) are counted and printed.
"""
import json
import logging
import math
import os
import os.path as osp
import stat
from collections import Counter
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from convmlp_mm.config.data_checks import (
    FULL_CHECK_MAX_BYTES,
    AnnotationError,
    _coco_datasets,
    leaf_datasets,
    loaders_for,
)

__all__ = ['check_coco_content', 'check_image_file', 'check_seg_dataset',
           'check_dataset_contents', 'MAX_FILES_READ']

#: Files whose content (not only their existence) is read, per dataset.
#: COCO's 118k training images would take minutes; past this the loading
#: transform reports a broken file when it is read.
MAX_FILES_READ = 5000
JPEG_EXTENSIONS = ('.jpg', '.jpeg')
PNG_END = b'IEND\xaeB`\x82'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')


def _examples(items: Sequence, count: int = 5) -> str:
    shown = ', '.join(str(i) for i in list(items)[:count])
    return shown + (', ...' if len(items) > count else '')


def check_image_file(path: str, what: str, read: bool = True) -> None:
    """Raise :class:`AnnotationError` unless ``path`` is a regular, non-empty
    file; with ``read``, also unless a JPEG/PNG ends where its format says
    it ends (a truncated download decodes to a grey bottom, or not at
    all)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AnnotationError(f'{what}: {path} does not exist.') from None
    if not stat.S_ISREG(info.st_mode):
        raise AnnotationError(f'{what}: {path} is not a regular file.')
    if info.st_size == 0:
        raise AnnotationError(f'{what}: {path} is empty (0 bytes).')
    if not read:
        return
    lower = path.lower()
    if not lower.endswith(JPEG_EXTENSIONS + ('.png', )):
        return
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, info.st_size - 1024))
        tail = f.read()
    if lower.endswith(JPEG_EXTENSIONS):
        # Entropy-coded data never holds FF D9 (FF is stuffed), so a JPEG
        # without its end marker near the end was cut short.
        ok = head[:2] == b'\xff\xd8' and b'\xff\xd9' in tail
        kind = 'JPEG'
    else:
        ok = head == b'\x89PNG\r\n\x1a\n' and PNG_END in tail
        kind = 'PNG'
    if not ok:
        raise AnnotationError(
            f'{what}: {path} is not a complete {kind} file (truncated '
            'download or copy?). Download or copy it again, or remove it '
            'from the dataset.')


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_coco_content(path: str, data: Optional[dict] = None,
                       img_dir: Optional[str] = None) -> Dict[str, int]:
    """Check a COCO instances file's content (ids, categories, boxes, areas)
    and, with ``img_dir``, its image files. Returns counts; raises
    :class:`AnnotationError` naming ``path`` and the id."""
    if data is None:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    fix = ' Fix the annotation file (or regenerate it).'
    image_ids = Counter(img.get('id') for img in data['images'])
    repeated = [i for i, n in image_ids.items() if n > 1]
    if repeated:
        raise AnnotationError(
            f'{path}: image id {repeated[0]} appears {image_ids[repeated[0]]}'
            f' times in "images" ({len(repeated)} repeated ids); each image '
            'needs its own id.' + fix)
    ann_ids = Counter(a.get('id') for a in data['annotations'])
    repeated = [i for i, n in ann_ids.items() if n > 1]
    if repeated:
        raise AnnotationError(
            f'{path}: annotation id {repeated[0]} appears '
            f'{ann_ids[repeated[0]]} times (pycocotools keeps only one of '
            'them).' + fix)
    categories = {c['id'] for c in data['categories']}
    empty = []
    for ann in data['annotations']:
        where = f'{path}: annotation id {ann["id"]} (image id ' \
            f'{ann["image_id"]})'
        if ann['image_id'] not in image_ids:
            raise AnnotationError(
                f'{where} points to an image id that is not in "images".' +
                fix)
        if ann['category_id'] not in categories:
            raise AnnotationError(
                f'{where} has category_id {ann["category_id"]!r}, which is '
                f'not in "categories" (ids {_examples(sorted(categories))})'
                '; mmdet would drop the object silently.' + fix)
        box = ann['bbox']
        if not all(_number(v) for v in box):
            raise AnnotationError(
                f'{where} has bbox {box!r}: every value must be a finite '
                'number (not a string, null or NaN).' + fix)
        if box[2] < 0 or box[3] < 0:
            raise AnnotationError(
                f'{where} has bbox {box!r} with a negative width or height; '
                'COCO boxes are [x, y, width, height] (were [x1, y1, x2, '
                'y2] written?).' + fix)
        if 'area' not in ann:
            raise AnnotationError(
                f'{where} has no "area", which the COCO evaluation reads; '
                'add it (the mask area, or width x height of the box).' + fix)
        if not _number(ann['area']):
            raise AnnotationError(
                f'{where} has area {ann["area"]!r}, not a finite number.' +
                fix)
        if box[2] < 1 or box[3] < 1 or ann['area'] <= 0:
            empty.append(ann['id'])
    if empty:
        # mmdet's CocoDataset drops these on purpose; say how many.
        print_log(
            f'{path}: {len(empty)} annotation(s) with a box under 1 pixel '
            f'wide or high, or area <= 0, are dropped by mmdet (ids '
            f'{_examples(empty)}).', logger='current',
            level=logging.WARNING)
    if img_dir is not None:
        for index, img in enumerate(data['images']):
            check_image_file(osp.join(img_dir, str(img['file_name'])),
                             f'{path}: image id {img["id"]}',
                             read=index < MAX_FILES_READ)
    return dict(images=len(image_ids), annotations=len(ann_ids),
                dropped=len(empty))


def _seg_settings(dataset: dict) -> Tuple[str, str, bool, Optional[int]]:
    """img_suffix, seg_map_suffix, reduce_zero_label and the number of
    classes of an mmseg dataset config (the class's defaults filled in)."""
    import inspect

    from mmseg.registry import DATASETS
    cls = DATASETS.get(dataset.get('type', ''))
    defaults = {}
    if cls is not None:
        for klass in reversed(inspect.getmro(cls)):
            init = klass.__dict__.get('__init__')
            if init is None:
                continue
            for name, param in inspect.signature(init).parameters.items():
                if param.default is not param.empty:
                    defaults[name] = param.default
    settings = dict(defaults, **dataset)
    classes = (dataset.get('metainfo') or {}).get('classes') or \
        getattr(cls, 'METAINFO', {}).get('classes')
    return (settings.get('img_suffix', '.jpg'),
            settings.get('seg_map_suffix', '.png'),
            bool(settings.get('reduce_zero_label', False)),
            len(classes) if classes else None)


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
    import cv2
    from PIL import Image
    images, others = [], []
    for rel in _walk(img_dir):
        if rel.endswith(img_suffix):
            images.append(rel)
        elif rel.lower().endswith(IMAGE_EXTENSIONS):
            others.append(rel)
    if others:
        raise AnnotationError(
            f'{name}: {len(others)} image(s) in {img_dir} do not end in '
            f'img_suffix "{img_suffix}" ({_examples(others)}) and mmseg '
            'would skip them silently. Convert them to '
            f'{img_suffix}, or set {name}.img_suffix to their suffix.')
    scored = 0
    for index, rel in enumerate(images):
        img_path = osp.join(img_dir, rel)
        mask_path = osp.join(ann_dir, rel[:-len(img_suffix)] +
                             seg_map_suffix)
        read = index < MAX_FILES_READ
        check_image_file(img_path, f'{name} image', read=read)
        check_image_file(mask_path, f'{name} mask of {img_path}', read=read)
        if not read:
            continue
        with Image.open(img_path) as img:
            img_size = img.size
        mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise AnnotationError(
                f'{name}: mask {mask_path} is not a single-channel label '
                'image (one class id per pixel).')
        if (mask.shape[1], mask.shape[0]) != img_size:
            raise AnnotationError(
                f'{name}: mask {mask_path} is {mask.shape[1]}x'
                f'{mask.shape[0]} but its image {img_path} is '
                f'{img_size[0]}x{img_size[1]}; a mask must have its '
                'image\'s size.')
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
                    f'{_examples(raw)} outside the {num_classes} classes '
                    f'(valid: {1 if reduce_zero_label else 0}..'
                    f'{num_classes - (0 if reduce_zero_label else 1)}, or '
                    f'{ignore_index} to ignore{zero_note}). Fix the masks, '
                    'or the classes (metainfo) and the head\'s num_classes.')
        scored += int(any(v != ignore_index for v in labels))
    if not images:
        raise AnnotationError(
            f'{name}: no images ending in "{img_suffix}" in {img_dir}.')
    if scored == 0:
        raise AnnotationError(
            f'{name}: every mask checked in {ann_dir} is all ignore index '
            f'({ignore_index}) after reduce_zero_label={reduce_zero_label}, '
            'so there is nothing to train on or score (metrics would be '
            'NaN). Check reduce_zero_label and the masks.')
    return dict(images=len(images))


def _seg_datasets(cfg, mode: str) -> Iterator[Tuple[str, dict]]:
    for loader_name in loaders_for(cfg, mode):
        loader = cfg.get(loader_name) or {}
        for dataset in leaf_datasets(loader.get('dataset')):
            prefix = dataset.get('data_prefix') or {}
            if 'seg_map_path' in prefix and not dataset.get('backend_args') \
                    and not dataset.get('ann_file'):
                yield loader_name, dataset


def check_dataset_contents(cfg, mode: str = 'train') -> None:
    """Check the content of every local dataset a ``'train'`` or ``'test'``
    run reads (COCO annotation files and images, mmseg image/mask
    folders); see :func:`check_coco_content` and
    :func:`check_seg_dataset`."""
    for loader_name, dataset, path in _coco_datasets(cfg, mode):
        if osp.getsize(path) > FULL_CHECK_MAX_BYTES:
            continue
        root = dataset.get('data_root') or ''
        img_prefix = (dataset.get('data_prefix') or {}).get('img', '')
        check_coco_content(path, img_dir=osp.join(root, img_prefix))
    for loader_name, dataset in _seg_datasets(cfg, mode):
        root = dataset.get('data_root') or ''
        prefix = dataset['data_prefix']
        img_dir = osp.join(root, prefix.get('img_path', ''))
        ann_dir = osp.join(root, prefix['seg_map_path'])
        if not (osp.isdir(img_dir) and osp.isdir(ann_dir)):
            continue  # the path checks name missing folders
        img_suffix, seg_suffix, reduce_zero, num_classes = \
            _seg_settings(dataset)
        check_seg_dataset(img_dir, ann_dir, img_suffix, seg_suffix,
                          reduce_zero, num_classes,
                          dataset.get('ignore_index', 255),
                          f'{loader_name}.dataset')

