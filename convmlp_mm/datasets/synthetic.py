"""Small synthetic datasets in the real COCO and ADE20K formats.

Scenes are shapes of several kinds, sizes and rotations on textured
backgrounds, each class in its own (jittered) hue family: a task that a
detector or segmentor visibly learns in minutes on a CPU, stored exactly as
mmdet's ``CocoDataset`` and mmseg's ``ADE20KDataset`` read them, so the real
configs, pipelines and metrics run on it unchanged.

Everything is derived from ``seed`` (one random stream per image), JSON is
written with sorted keys and JPEG/PNG through OpenCV's encoders, so the same
arguments give the same bytes. A dataset is written into a hidden sibling
folder and renamed into place with its marker file last, so an interrupted
run leaves either nothing or a complete dataset; a folder that already holds
the same dataset is reused (rebuilt if damaged), any other content is
refused (see :mod:`convmlp_mm.datasets.folder`).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from convmlp_mm.datasets.folder import (
    FORMAT_VERSION,
    MARKER,
    SyntheticDatasetError,
    build_folder,
)

__all__ = [
    'SHAPES', 'DEFAULT_CLASSES', 'MARKER', 'SyntheticDatasetError',
    'make_coco_dataset', 'make_ade20k_dataset', 'ade20k_classes'
]

#: Shape kinds, in the order classes are assigned to them.
SHAPES = ('circle', 'square', 'triangle', 'star', 'hexagon', 'diamond')
DEFAULT_CLASSES = ('circle', 'square', 'triangle')

Size = Tuple[int, int]


# --------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------
def _shape_polygon(kind: str, center: np.ndarray, radius: float,
                   angle: float) -> np.ndarray:
    """Vertices (N, 2) of a shape of circumradius ``radius``."""
    if kind == 'circle':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        r = np.full_like(t, radius)
    elif kind == 'square':
        t = np.arange(4) * np.pi / 2 + np.pi / 4
        r = np.full(4, radius)
    elif kind == 'diamond':
        t = np.arange(4) * np.pi / 2
        r = np.array([radius, 0.6 * radius] * 2)
    elif kind == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        r = np.full(3, radius)
    elif kind == 'hexagon':
        t = np.arange(6) * np.pi / 3
        r = np.full(6, radius)
    elif kind == 'star':
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.array([radius, 0.45 * radius] * 5)
    else:  # guarded by _check_classes
        raise AssertionError(kind)
    t = t + (0 if kind == 'circle' else angle)
    return np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], 1)


def _background(rng: np.random.Generator, width: int,
                height: int) -> np.ndarray:
    """Textured, mostly grey background: gradient, soft blobs, stripes,
    noise. Kept low in saturation so that the objects' colours stand out."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(50, 200, (2, 1)) + rng.uniform(-20, 20, (2, 3))
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (xs * np.cos(direction) + ys * np.sin(direction))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    img = c0 + (c1 - c0) * ramp[..., None]
    for _ in range(rng.integers(2, 5)):  # soft blobs
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.1, 0.3) * max(width, height)
        blob = np.exp(-((xs - cx)**2 + (ys - cy)**2) / (2 * sigma**2))
        img += blob[..., None] * rng.uniform(-30, 30)
    period = rng.uniform(6, 20)  # faint stripes
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin((xs * np.sin(direction) - ys * np.cos(direction)) /
                     period * 2 * np.pi + phase)
    img += stripes[..., None] * rng.uniform(3, 8)
    img += rng.normal(0, 5, img.shape)
    return img


def _object_colour(rng: np.random.Generator, label: int,
                   num_classes: int) -> np.ndarray:
    """A saturated BGR colour in the class's own hue family (jittered), so
    that a model from scratch learns the task in minutes."""
    hue = (label * 180 / max(num_classes, 1) + rng.uniform(-8, 8)) % 180
    hsv = np.array([[[hue, rng.uniform(150, 255), rng.uniform(140, 255)]]],
                   np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _scene(rng: np.random.Generator, size: Size, num_classes: int,
           kinds: Sequence[str]) -> Tuple[np.ndarray, List[dict]]:
    """One image (H, W, 3) uint8 BGR and its objects (label, polygon).

    Objects do not overlap (boxes keep a small gap), so each polygon is the
    whole visible object and its box is the object's tight box.
    """
    width, height = size
    img = _background(rng, width, height)
    short = min(width, height)
    objects: List[dict] = []
    boxes: List[np.ndarray] = []
    wanted = int(rng.integers(2, 5))
    for _ in range(60):  # placement attempts
        if len(objects) == wanted:
            break
        label = int(rng.integers(num_classes))
        radius = rng.uniform(0.09, 0.22) * short
        center = rng.uniform([radius, radius],
                             [width - radius, height - radius])
        poly = _shape_polygon(kinds[label], center, radius,
                              rng.uniform(0, 2 * np.pi))
        poly[:, 0] = poly[:, 0].clip(0, width - 1)
        poly[:, 1] = poly[:, 1].clip(0, height - 1)
        box = np.concatenate([poly.min(0) - 3, poly.max(0) + 3])
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3]
               and b[1] < box[3] for b in boxes):
            continue
        boxes.append(box)
        objects.append(dict(label=label, polygon=np.round(poly, 2)))

    for obj in objects:
        poly = obj['polygon']
        colour = _object_colour(rng, obj['label'], num_classes)
        mask = np.zeros((height, width), np.uint8)
        _fill(mask, poly, 1)
        shade = colour + rng.normal(0, 5, img.shape)  # slightly uneven paint
        img = np.where(mask[..., None] > 0, shade, img)
    return np.clip(img, 0, 255).astype(np.uint8), objects


def _fill(canvas: np.ndarray, poly: np.ndarray, value: int) -> None:
    # 4 bits of sub-pixel precision so the paint follows the stored polygon.
    pts = np.round(poly * 16).astype(np.int32)[None]
    cv2.fillPoly(canvas, pts, value, lineType=cv2.LINE_8, shift=4)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _write(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)


def _encode(ext: str, img: np.ndarray) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == '.jpg' else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f'OpenCV could not encode a {ext} image')
    return buf.tobytes()


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # One independent stream per image: the same image whatever num_train is.
    split_id = {'train': 0, 'val': 1}[split]
    return np.random.default_rng([seed, split_id, index])


def _check_size(image_size: Sequence[int]) -> Size:
    if (len(image_size) != 2 or
            not all(isinstance(s, (int, np.integer)) for s in image_size)
            or min(image_size) < 32):
        raise SyntheticDatasetError(
            f'image_size must be (width, height), two integers >= 32, '
            f'got {image_size!r}')
    return int(image_size[0]), int(image_size[1])


def _check_counts(num_train: int, num_val: int) -> None:
    if num_train < 1 or num_val < 1:
        raise SyntheticDatasetError(
            f'num_train and num_val must be >= 1, got {num_train} and '
            f'{num_val}')


def _check_classes(classes: Sequence[str]) -> Tuple[str, ...]:
    classes = tuple(classes)
    if not 1 <= len(classes) <= len(SHAPES):
        raise SyntheticDatasetError(
            f'between 1 and {len(SHAPES)} classes are supported (one per '
            f'shape kind: {", ".join(SHAPES)}), got {len(classes)}')
    if len(set(classes)) != len(classes) or not all(
            isinstance(c, str) and c for c in classes):
        raise SyntheticDatasetError(
            f'classes must be distinct non-empty names, got {classes!r}')
    return classes


def _kinds_for(classes: Sequence[str]) -> Tuple[str, ...]:
    """Class i is drawn as ``SHAPES[i]`` unless its name is itself a shape."""
    named = [c for c in classes if c in SHAPES]
    spare = iter(s for s in SHAPES if s not in named)
    return tuple(c if c in SHAPES else next(spare) for c in classes)


def make_coco_dataset(root: str,
                      num_train: int = 64,
                      num_val: int = 16,
                      image_size: Sequence[int] = (256, 192),
                      seed: int = 0,
                      classes: Sequence[str] = DEFAULT_CLASSES) -> str:
    """Write a COCO-instances dataset of shapes (boxes + polygon masks).

    Layout, as mmdet's ``CocoDataset`` configs expect it::

        root/annotations/instances_{train,val}2017.json
        root/{train,val}2017/000000000001.jpg ...

    Each image holds 2 to 4 non-overlapping objects. Class ``i`` is drawn as
    the shape ``SHAPES[i]`` (a class named after a shape gets that shape), so
    ``classes`` may be any names, e.g. COCO's, to fit an unchanged config.

    Args:
        root: Folder to create. An existing folder made by this function with
            the same arguments is reused; any other non-empty folder is
            refused.
        num_train: Number of training images.
        num_val: Number of validation images.
        image_size: ``(width, height)`` of every image.
        seed: Seed of everything random; same arguments, same bytes.
        classes: Category names, ids 1..len(classes).

    Returns:
        The absolute path of ``root``.
    """
    width, height = _check_size(image_size)
    _check_counts(num_train, num_val)
    classes = _check_classes(classes)
    kinds = _kinds_for(classes)
    args = dict(num_train=num_train, num_val=num_val,
                image_size=[width, height], seed=seed, classes=list(classes))

    def write_into(folder: str) -> Dict:
        os.makedirs(osp.join(folder, 'annotations'))
        summary = {}
        for split, count in (('train', num_train), ('val', num_val)):
            img_dir = osp.join(folder, f'{split}2017')
            os.makedirs(img_dir)
            images, annotations = [], []
            for index in range(count):
                img, objects = _scene(
                    _image_rng(seed, split, index), (width, height),
                    len(classes), kinds)
                image_id = index + 1
                file_name = f'{image_id:012d}.jpg'
                _write(osp.join(img_dir, file_name), _encode('.jpg', img))
                images.append(dict(id=image_id, file_name=file_name,
                                   width=width, height=height))
                for obj in objects:
                    poly = obj['polygon']
                    x0, y0 = poly.min(0)
                    x1, y1 = poly.max(0)
                    flat = [float(v) for v in poly.reshape(-1)]
                    rle = mask_utils.merge(
                        mask_utils.frPyObjects([flat], height, width))
                    annotations.append(dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=obj['label'] + 1,
                        segmentation=[flat],
                        area=float(mask_utils.area(rle)),
                        bbox=[round(float(v), 2)
                              for v in (x0, y0, x1 - x0, y1 - y0)],
                        iscrowd=0))
            coco = dict(
                info=dict(description='convmlp_mm synthetic shapes',
                          version=str(FORMAT_VERSION)),
                licenses=[],
                images=images,
                annotations=annotations,
                categories=[dict(id=i + 1, name=name, supercategory='shape')
                            for i, name in enumerate(classes)])
            with open(osp.join(folder, 'annotations',
                               f'instances_{split}2017.json'), 'w') as f:
                json.dump(coco, f, sort_keys=True, separators=(',', ':'))
            summary[split] = dict(images=len(images),
                                  objects=len(annotations))
        return summary

    return build_folder(root, 'coco', args, write_into)


def ade20k_classes(num_classes: int = 3) -> Tuple[str, ...]:
    """Class names of :func:`make_ade20k_dataset` (labels 1..num_classes)."""
    if not 1 <= num_classes <= len(SHAPES):
        raise SyntheticDatasetError(
            f'num_classes must be in 1..{len(SHAPES)} (one per shape kind: '
            f'{", ".join(SHAPES)}), got {num_classes}')
    return SHAPES[:num_classes]


def make_ade20k_dataset(root: str,
                        num_train: int = 64,
                        num_val: int = 16,
                        image_size: Sequence[int] = (256, 256),
                        seed: int = 0,
                        num_classes: int = 3) -> str:
    """Write an ADE20K-layout semantic segmentation dataset of shapes.

    Layout and conventions of mmseg's ``ADE20KDataset``::

        root/images/{training,validation}/ADE_{train,val}_00000001.jpg
        root/annotations/{training,validation}/ADE_{train,val}_00000001.png

    Label maps are single-channel PNGs: 0 is "other" (the background, which
    ``reduce_zero_label=True`` turns into the ignore index 255) and the shape
    of class ``i`` (``ade20k_classes(num_classes)[i]``) is ``i + 1``.

    Args:
        root: Folder to create; reused or refused as in
            :func:`make_coco_dataset`.
        num_train: Number of training images.
        num_val: Number of validation images.
        image_size: ``(width, height)`` of every image.
        seed: Seed of everything random; same arguments, same bytes.
        num_classes: Number of object classes (shape kinds).

    Returns:
        The absolute path of ``root``.
    """
    width, height = _check_size(image_size)
    _check_counts(num_train, num_val)
    classes = ade20k_classes(num_classes)
    args = dict(num_train=num_train, num_val=num_val,
                image_size=[width, height], seed=seed,
                num_classes=num_classes)

    def write_into(folder: str) -> Dict:
        summary = {}
        for split, sub, count in (('train', 'training', num_train),
                                  ('val', 'validation', num_val)):
            img_dir = osp.join(folder, 'images', sub)
            ann_dir = osp.join(folder, 'annotations', sub)
            os.makedirs(img_dir)
            os.makedirs(ann_dir)
            for index in range(count):
                img, objects = _scene(
                    _image_rng(seed, split, index), (width, height),
                    num_classes, classes)
                label = np.zeros((height, width), np.uint8)
                for obj in objects:
                    _fill(label, obj['polygon'], obj['label'] + 1)
                stem = f'ADE_{split}_{index + 1:08d}'
                _write(osp.join(img_dir, stem + '.jpg'), _encode('.jpg', img))
                _write(osp.join(ann_dir, stem + '.png'),
                       _encode('.png', label))
            summary[split] = dict(images=count)
        summary['classes'] = list(classes)
        return summary

    return build_folder(root, 'ade20k', args, write_into)
