"""Class names and class counts of a run: ``--classes auto`` (read them from
the data, set them everywhere) and the checks that a config's heads, datasets
and annotation files agree, run before anything is built.

Without these, a COCO file holding two of COCO's names trains the 80-class
head without a word, and a config that sets ``metainfo.classes`` but forgets
a head's ``num_classes`` trains a head of the wrong size.
"""
import json
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.config.core import ConfigError, task_of
from convmlp_mm.config.data_checks import (
    FULL_CHECK_MAX_BYTES,
    check_coco_json,
    leaf_datasets,
    loaders_for,
)

__all__ = [
    'CLASS_LIST_FILE', 'check_classes', 'dataset_classes', 'head_classes',
    'read_classes', 'set_classes'
]

#: The class list of a segmentation folder: ``DATA_ROOT/classes.txt``.
CLASS_LIST_FILE = 'classes.txt'
# Heads that have a num_classes of the dataset's classes. rpn_head is not one
# of them: its num_classes=1 means "object".
HEAD_KEYS = ('bbox_head', 'mask_head', 'decode_head', 'auxiliary_head')
SUBSET_FIX = ('pass --classes auto to train on the file\'s categories '
              'instead, or --classes-subset-ok if this subset is intended')


def head_classes(model: dict, prefix: str = 'model'
                 ) -> Iterator[Tuple[str, dict]]:
    """``(config key, head dict)`` of every head with a ``num_classes``:
    RetinaNet's ``bbox_head``, Mask R-CNN's ``roi_head.bbox_head`` and
    ``mask_head`` (lists in cascade heads), Semantic FPN's ``decode_head``
    and ``auxiliary_head``."""
    if not isinstance(model, dict):
        return
    for key in ('roi_head', ):
        if isinstance(model.get(key), dict):
            yield from head_classes(model[key], f'{prefix}.{key}')
    for key in HEAD_KEYS:
        heads = model.get(key)
        items = list(enumerate(heads)) if isinstance(heads, (list, tuple)) \
            else [(None, heads)]
        for index, head in items:
            if isinstance(head, dict) and 'num_classes' in head:
                name = f'{prefix}.{key}' + (
                    '' if index is None else f'.{index}')
                yield name, head


def _registered_classes(dataset: dict, task: str) -> Optional[tuple]:
    if task == 'detection':
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    dataset_cls = DATASETS.get(dataset.get('type', ''))
    classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    return tuple(classes) if classes else None


def dataset_classes(cfg: Config, mode: str
                    ) -> List[Tuple[str, dict, Optional[tuple]]]:
    """``(dataloader, dataset, classes)`` of every dataset a ``'train'`` or
    ``'test'`` run reads; classes from ``metainfo.classes`` or else the
    dataset type's own (``None`` when neither names any)."""
    task = task_of(cfg)
    found = []
    for loader_name in loaders_for(cfg, mode):
        loader = cfg.get(loader_name) or {}
        for dataset in leaf_datasets(loader.get('dataset')):
            metainfo = dataset.get('metainfo') or {}
            classes = tuple(metainfo['classes']) if metainfo.get(
                'classes') else _registered_classes(dataset, task)
            found.append((loader_name, dataset, classes))
    return found


def _ann_path(dataset: dict) -> Optional[str]:
    ann_file = dataset.get('ann_file')
    if not ann_file or '://' in str(ann_file):
        return None
    root = dataset.get('data_root') or ''
    return ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)


def _coco_category_names(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        categories = json.load(f)['categories']
    # mmdet's CocoDataset gives label i to the i-th category by id.
    return [c['name'] for c in sorted(categories, key=lambda c: c['id'])]


def read_classes(cfg: Config, mode: str = 'train') -> Tuple[str, ...]:
    """The class names of the data a run reads first (the training set, or
    the test set): the categories of its COCO annotation file (by id), or,
    for segmentation, one name a line of ``DATA_ROOT/classes.txt`` (line i:
    training label i)."""
    loader_name = 'train_dataloader' if mode == 'train' else \
        'test_dataloader'
    datasets = list(leaf_datasets((cfg.get(loader_name) or {}).get(
        'dataset')))
    if not datasets:
        raise ConfigError(f'--classes auto: the config has no '
                          f'{loader_name}.dataset to read classes from.')
    dataset = datasets[0]
    if task_of(cfg) == 'detection':
        path = _ann_path(dataset)
        if path is None or not osp.isfile(path):
            raise ConfigError(
                f'--classes auto reads the categories of {loader_name}\'s '
                f'COCO annotation file, and {path} is not a file; pass '
                '--data-root DIR or set the dataset\'s ann_file.')
        check_coco_json(path)  # a broken file: its own clear error
        names = _coco_category_names(path)
        source = path
    else:
        root = dataset.get('data_root') or '.'
        source = osp.join(root, CLASS_LIST_FILE)
        if not osp.isfile(source):
            raise ConfigError(
                f'--classes auto reads a segmentation folder\'s class names '
                f'from {source}, which does not exist; write one name a line '
                '(line 1: training label 0) into it (docs/own_data.md).')
        with open(source, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(
            f'--classes auto: {source} must name distinct classes, got '
            f'{names!r}.')
    print_log(f'--classes auto: {len(names)} classes from {source}: '
              f'{", ".join(names[:10])}{", ..." if len(names) > 10 else ""}',
              logger='current')
    return tuple(names)


def set_classes(cfg: Config, classes: Sequence[str]) -> None:
    """Put ``classes`` in every dataset's ``metainfo.classes`` and their
    count in every head's ``num_classes``. Evaluators get the names from
    their dataset (mmengine passes ``dataset.metainfo`` as their
    ``dataset_meta``)."""
    classes = tuple(classes)
    task = task_of(cfg)
    for loader_name in ('train_dataloader', 'val_dataloader',
                        'test_dataloader'):
        loader = cfg.get(loader_name) or {}
        for dataset in leaf_datasets(loader.get('dataset')):
            metainfo = dict(dataset.get('metainfo') or {})
            metainfo['classes'] = classes
            # The base's palette has the base's class count.
            metainfo.pop('palette', None)
            dataset['metainfo'] = metainfo
            if task == 'segmentation' and dataset.get('type') != \
                    'BaseSegDataset':
                # ADE20KDataset maps names onto its own 150 classes and
                # refuses others; the generic dataset reads the same folder.
                dataset['type'] = 'BaseSegDataset'
                dataset.setdefault('img_suffix', '.jpg')
                dataset.setdefault('seg_map_suffix', '.png')
                dataset.setdefault('reduce_zero_label', True)
    heads = list(head_classes(cfg.get('model') or {}))
    if not heads:
        raise ConfigError('--classes: the model has no head with '
                          'num_classes to set.')
    for _, head in heads:
        head['num_classes'] = len(classes)


def _check_heads(cfg: Config, mode: str) -> None:
    datasets = [(n, c) for n, _, c in dataset_classes(cfg, mode) if c]
    if not datasets:
        return
    loader_name, classes = datasets[0]
    for other_name, other in datasets[1:]:
        if len(other) != len(classes):
            raise ConfigError(
                f'{loader_name} has {len(classes)} classes but {other_name} '
                f'has {len(other)}; set the same metainfo.classes in both '
                '(or pass --classes auto).')
    for key, head in head_classes(cfg.get('model') or {}):
        if head['num_classes'] != len(classes):
            raise ConfigError(
                f'{key}.num_classes is {head["num_classes"]} but '
                f'{loader_name} has {len(classes)} classes '
                f'({", ".join(classes[:5])}'
                f'{", ..." if len(classes) > 5 else ""}); set '
                f'{key}.num_classes={len(classes)} (or pass --classes auto).')


def _check_subset(cfg: Config, mode: str) -> None:
    if cfg.get('classes_subset_ok'):
        return
    for loader_name, dataset, classes in dataset_classes(cfg, mode):
        listed = osp.join(dataset.get('data_root') or '', CLASS_LIST_FILE)
        if task_of(cfg) == 'segmentation' and classes and \
                dataset.get('data_root') and osp.isfile(listed):
            with open(listed, encoding='utf-8') as f:
                names = [line.strip() for line in f if line.strip()]
            if len(names) != len(classes):
                raise ConfigError(
                    f'{listed} names {len(names)} classes but {loader_name} '
                    f'trains {len(classes)} ({", ".join(classes[:5])}'
                    f'{", ..." if len(classes) > 5 else ""}); '
                    f'{SUBSET_FIX}.')
            continue
        path = _ann_path(dataset)
        if not classes or 'Coco' not in str(dataset.get('type', '')) or \
                path is None or not osp.isfile(path) or \
                osp.getsize(path) > FULL_CHECK_MAX_BYTES:
            continue
        names = set(_coco_category_names(path))
        held = [c for c in classes if c in names]
        if held and len(held) < len(classes):
            raise ConfigError(
                f'{path} holds {len(held)} of the {len(classes)} classes '
                f'{loader_name} trains ({", ".join(held[:5])}'
                f'{", ..." if len(held) > 5 else ""}), so the head would '
                f'learn {len(classes) - len(held)} classes that never '
                f'appear; {SUBSET_FIX}.')


def check_classes(cfg: Config, mode: str = 'train') -> None:
    """Raise :class:`ConfigError` when a head's ``num_classes`` differs from
    its datasets' class count, when two datasets disagree, or when a COCO
    annotation file holds fewer of the config's classes than it trains
    (unless ``classes_subset_ok=True``)."""
    _check_heads(cfg, mode)
    _check_subset(cfg, mode)
