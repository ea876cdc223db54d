"""COCO instances files: read and parsed once per run
(:class:`CocoFiles`), then checked as JSON (:func:`check_coco_json`), for
their content (:func:`check_coco_content`) and against the classes a run
trains (:func:`check_category_overlap`).

mmdet's ``CocoDataset`` silently drops an object with an unknown category
or a box under one pixel, and an image whose ``width`` or ``height`` is 0;
pycocotools fails with a bare ``KeyError`` on an annotation without
``area``; an empty ``annotations`` list ends in "need at least one array to
concatenate", a ``file_name`` with ``../`` reads a file outside the data
root, and an image of another size than its JSON says trains on boxes that
miss its pixels. Here each is an :class:`AnnotationError` naming the file,
the image or annotation id, what is wrong and the fix; objects that mmdet
drops on purpose (empty boxes) are counted and printed.

Every image's JSON entry is checked (no file is opened for it); which image
files are opened, and how far, is :mod:`~convmlp_mm.datasets.checks.images`'
rule: all exist, the first ``MAX_HEADERS_READ`` have their header read (the
pixel limit, and their size against the JSON's), the first
``MAX_FILES_READ`` their end.
"""
import json
import logging
import math
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log

from convmlp_mm.datasets.checks import images
from convmlp_mm.datasets.checks.classes import coco_category_names, examples
from convmlp_mm.errors import AnnotationError

__all__ = ['COCO_KEYS', 'FULL_CHECK_MAX_BYTES', 'CocoFiles',
           'check_category_overlap', 'check_coco_content', 'check_coco_json']

# Above this size only the cheap truncation check runs: parsing COCO's 450 MB
# train2017 file costs ~10 s and a few GB of memory.
FULL_CHECK_MAX_BYTES = 100 * 2**20
COCO_KEYS = {'images': ('id', 'file_name', 'width', 'height'),
             'annotations': ('id', 'image_id', 'category_id', 'bbox'),
             'categories': ('id', 'name')}
FIX = ('Download or generate it again (built-in data: python '
       'tools/make_dataset.py coco DIR), or point --data-root at a folder '
       'whose annotations/instances_{train,val}2017.json are COCO files.')


def _check_ends(path: str, size: int) -> None:
    with open(path, 'rb') as f:
        head = f.read(64).lstrip()
        f.seek(max(0, size - 64))
        tail = f.read().rstrip()
    if not (head.startswith(b'{') and tail.endswith(b'}')):
        raise AnnotationError(
            f'Annotation file {path} is not valid COCO JSON: it does '
            'not start with "{" and end with "}" (truncated download?). '
            + FIX)


def _parse(path: str) -> dict:
    """The content of a COCO instances file; :class:`AnnotationError` naming
    it when it is not one."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            f'Annotation file {path} is not valid COCO JSON: not UTF-8 text '
            f'({exc.reason} at byte {exc.start}). ' + FIX) from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f'Annotation file {path} is not valid COCO JSON: {exc.msg} at '
            f'line {exc.lineno}, column {exc.colno}. ' + FIX) from None
    problems = _coco_problems(data)
    if problems:
        raise AnnotationError(
            f'Annotation file {path} is JSON but not a COCO instances file: '
            + '; '.join(problems) + '. ' + FIX)
    return data


def _coco_problems(data) -> List[str]:
    if not isinstance(data, dict):
        return [f'the top level is a {type(data).__name__}, not an object '
                'with "images", "annotations" and "categories"']
    problems = []
    for key, fields in COCO_KEYS.items():
        if key not in data:
            problems.append(f'"{key}" is missing')
            continue
        items = data[key]
        if not isinstance(items, list):
            problems.append(f'"{key}" is a {type(items).__name__}, not a list')
            continue
        for index, item in enumerate(items):
            lacking = [f for f in fields if not isinstance(item, dict) or
                       f not in item]
            if lacking:
                problems.append(f'{key}[{index}] lacks {", ".join(lacking)}')
                break
            if key == 'annotations' and not (
                    isinstance(item['bbox'], list) and len(item['bbox']) == 4):
                problems.append(f'annotations[{index}].bbox is '
                                f'{item["bbox"]!r}, not [x, y, w, h]')
                break
    if not problems and not data['categories']:
        problems.append('"categories" is empty')
    return problems


def check_coco_json(path: str, whole: bool = False) -> Optional[dict]:
    """The content of ``path``; raise :class:`AnnotationError` naming it
    unless it is a COCO instances file (``images``, ``annotations``,
    ``categories`` lists with the fields pycocotools and mmdet's CocoDataset
    read). A file above :data:`FULL_CHECK_MAX_BYTES` only has its ends
    checked and gives ``None``, unless ``whole``."""
    size = osp.getsize(path)
    if size > FULL_CHECK_MAX_BYTES:
        _check_ends(path, size)
        if not whole:
            return None
    return _parse(path)


class CocoFiles:
    """The COCO files of one run, each opened and parsed once: the checks
    before a run (``--classes auto``, the JSON, category, content and class
    subset checks) all ask one instance for the parsed file. Holds the
    parsed files until it is dropped."""

    def __init__(self):
        self._data: Dict[str, Optional[dict]] = {}

    def load(self, path: str, whole: bool = False) -> Optional[dict]:
        """:func:`check_coco_json` of ``path``, once."""
        key = osp.realpath(path)
        if key not in self._data or (whole and self._data[key] is None):
            self._data[key] = check_coco_json(path, whole)
        return self._data[key]

    def category_names(self, path: str) -> List[str]:
        """The category names of ``path`` in the file's order (whatever
        its size)."""
        return coco_category_names(self.load(path, whole=True))


def check_category_overlap(path: str, data: dict, classes: Sequence[str],
                           loader_name: str) -> None:
    """mmdet's CocoDataset keeps only the categories whose names are in its
    ``metainfo['classes']`` (COCO's 80 by default). When none match, every
    image is dropped and mmengine fails later with "need at least one array
    to concatenate"; say what is wrong instead."""
    names = coco_category_names(data)
    if classes and not set(names) & set(classes):
        raise AnnotationError(
            f'None of the categories in {path} ({examples(names)}) is one '
            f'of the classes {loader_name} trains on ({examples(classes)}), '
            'so every image would be dropped. Pass --classes auto to '
            'train on the file\'s categories, or set '
            f'{loader_name}.dataset.metainfo.classes (and the head\'s '
            'num_classes) to them, as configs/demo/ does for the '
            'built-in data.')


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it, by name (a symlink
    inside the folder may lead elsewhere: a dataset folder often is one)."""
    path, folder = osp.abspath(path), osp.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(osp.sep) +
                                             osp.sep)


def _check_image_entries(path: str, data: dict, img_dir: Optional[str],
                         data_root: Optional[str]) -> None:
    """Each entry of "images": a positive width and height, and (with
    ``img_dir``) a file_name that stays inside the data root (inside
    ``img_dir`` when that is not in the data root: an absolute prefix)."""
    bound = data_root if data_root and img_dir is not None and \
        _inside(img_dir, data_root) else img_dir
    for img in data['images']:
        where = f'{path}: image id {img["id"]} ({img["file_name"]!r})'
        width, height = img['width'], img['height']
        if not (_number(width) and _number(height) and width > 0 and
                height > 0):
            raise AnnotationError(
                f'{where} has width {width!r} and height {height!r}; both '
                'must be positive numbers of pixels (mmdet would drop the '
                'image and its objects without a word). Set them to the '
                'image file\'s width and height.')
        if img_dir is None or not bound:
            continue
        file = osp.join(img_dir, str(img['file_name']))
        if not _inside(file, bound):
            raise AnnotationError(
                f'{where}: its file_name leads outside the data root '
                f'{bound}, to {osp.normpath(file)}, which mmdet would read. '
                f'Give file names relative to {img_dir} that stay inside '
                'it (no "../", no absolute path), and copy or link the '
                'image into the dataset.')


def check_coco_content(path: str, data: Optional[dict] = None,
                       img_dir: Optional[str] = None,
                       data_root: Optional[str] = None) -> Dict[str, int]:
    """Check a COCO instances file's content (ids, image sizes, file names,
    categories, boxes, areas) and, with ``img_dir``, its image files (sizes
    from their headers against the JSON's). ``data``: the parsed file (read
    from ``path`` when not given); ``data_root``: the folder no file_name
    may leave (``img_dir`` when not given). Returns counts; raises
    :class:`AnnotationError` naming ``path`` and the id."""
    if data is None:
        data = _parse(path)
    fix = ' Fix the annotation file (or regenerate it).'
    if not data['annotations']:
        raise AnnotationError(
            f'{path} has no objects ("annotations": []): mmdet would drop '
            'every image in training, which then fails with "need at least '
            'one array to concatenate", and there is nothing to score. '
            'Point the config at the file with the annotations, or add '
            'them.')
    image_ids = Counter(img.get('id') for img in data['images'])
    ann_ids = Counter(a.get('id') for a in data['annotations'])
    for ids, what, consequence in (
            (image_ids, 'image', ' in "images" ({} repeated ids); each '
             'image needs its own id.'),
            (ann_ids, 'annotation', ' (pycocotools keeps only one of '
             'them).')):
        repeated = [i for i, n in ids.items() if n > 1]
        if repeated:
            raise AnnotationError(
                f'{path}: {what} id {repeated[0]} appears '
                f'{ids[repeated[0]]} times' +
                consequence.format(len(repeated)) + fix)
    _check_image_entries(path, data, img_dir, data_root)
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
                f'not in "categories" (ids {examples(sorted(categories))})'
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
            f'{examples(empty)}).', logger='current',
            level=logging.WARNING)
    if img_dir is not None:
        for index, img in enumerate(images.with_progress(
                data['images'], f'image files of {path}')):
            images.check_image_file(
                osp.join(img_dir, str(img['file_name'])),
                f'{path}: image id {img["id"]}',
                read=index < images.MAX_FILES_READ,
                header=index < images.MAX_HEADERS_READ,
                expected_size=(img['width'], img['height']),
                expected_from='its JSON entry')
    return dict(images=len(image_ids), annotations=len(ann_ids),
                dropped=len(empty))
