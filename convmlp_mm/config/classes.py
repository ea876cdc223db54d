"""Class names and class counts of a run: ``--classes auto`` (read them from
the data, set them everywhere) and the checks that a config's heads,
datasets and annotation files agree (:func:`check_classes_agree`), run
before anything is built.

Without these, a COCO file holding two of COCO's names trains the 80-class
head without a word, and a config that sets ``metainfo.classes`` but forgets
a head's ``num_classes`` trains a head of the wrong size.
"""
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.config.walk import (
    dataset_classes,
    loader_datasets,
    loaders_for,
    task_of,
)
from convmlp_mm.datasets.checks import (
    CLASS_LIST_FILE,
    FULL_CHECK_MAX_BYTES,
    CocoFiles,
    ann_file_path,
    class_list_path,
    examples,
    read_class_list,
)
from convmlp_mm.errors import ConfigError

__all__ = ['check_classes_agree', 'head_classes', 'read_classes',
           'set_classes']

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


def _classes_by_dataset(cfg: Config, mode: str
                        ) -> List[Tuple[str, dict, Optional[tuple]]]:
    """``(dataloader, dataset, classes)`` of every dataset a ``'train'`` or
    ``'test'`` run reads (see :func:`~convmlp_mm.config.walk.
    dataset_classes`)."""
    task_of(cfg)  # a config of another library: its own error
    scope = cfg.get('default_scope')
    return [(loader_name, dataset, dataset_classes(dataset, scope))
            for loader_name, dataset in loader_datasets(
                cfg, loaders_for(cfg, mode))]


def read_classes(cfg: Config, mode: str = 'train',
                 coco: Optional[CocoFiles] = None) -> Tuple[str, ...]:
    """The class names of the data a run reads first (the training set, or
    the test set): the categories of its COCO annotation file (by id), or,
    for segmentation, one name a line of ``DATA_ROOT/classes.txt`` (line i:
    training label i). ``coco``: the run's parsed files."""
    loader_name = 'train_dataloader' if mode == 'train' else \
        'test_dataloader'
    datasets = [d for _, d in loader_datasets(cfg, [loader_name])]
    if not datasets:
        raise ConfigError(f'--classes auto: the config has no '
                          f'{loader_name}.dataset to read classes from.')
    dataset = datasets[0]
    if task_of(cfg) == 'detection':
        source = ann_file_path(dataset)
        if source is None or not osp.isfile(source):
            raise ConfigError(
                f'--classes auto reads the categories of {loader_name}\'s '
                f'COCO annotation file, and {source} is not a file; pass '
                '--data-root DIR or set the dataset\'s ann_file.')
        # A broken file: its own clear error.
        names = (coco or CocoFiles()).category_names(source)
    else:
        source = osp.join(dataset.get('data_root') or '.', CLASS_LIST_FILE)
        if not osp.isfile(source):
            raise ConfigError(
                f'--classes auto reads a segmentation folder\'s class names '
                f'from {source}, which does not exist; write one name a line '
                '(line 1: training label 0) into it (docs/own_data.md).')
        names = read_class_list(source)
    if not names or len(set(names)) != len(names):
        raise ConfigError(
            f'--classes auto: {source} must name distinct classes, got '
            f'{names!r}.')
    print_log(f'--classes auto: {len(names)} classes from {source}: '
              f'{examples(names, 10)}', logger='current')
    return tuple(names)


def set_classes(cfg: Config, classes: Sequence[str]) -> None:
    """Put ``classes`` in every dataset's ``metainfo.classes`` and their
    count in every head's ``num_classes``. Evaluators get the names from
    their dataset (mmengine passes ``dataset.metainfo`` as their
    ``dataset_meta``)."""
    classes = tuple(classes)
    task = task_of(cfg)
    for _, dataset in loader_datasets(cfg):
        metainfo = dict(dataset.get('metainfo') or {})
        metainfo['classes'] = classes
        # The base's palette has the base's class count.
        metainfo.pop('palette', None)
        dataset['metainfo'] = metainfo
        if task == 'segmentation' and dataset.get('type') != \
                'BaseSegDataset':
            # ADE20KDataset maps names onto its own 150 classes and refuses
            # others; the generic dataset reads the same folder.
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
    datasets = [(n, c) for n, _, c in _classes_by_dataset(cfg, mode) if c]
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
                f'({examples(classes)}); set '
                f'{key}.num_classes={len(classes)} (or pass --classes auto).')


def _check_subset(cfg: Config, mode: str, coco: CocoFiles) -> None:
    if cfg.get('classes_subset_ok'):
        return
    for loader_name, dataset, classes in _classes_by_dataset(cfg, mode):
        listed = class_list_path(dataset)
        if task_of(cfg) == 'segmentation' and classes and listed and \
                osp.isfile(listed):
            names = read_class_list(listed)
            if len(names) != len(classes):
                raise ConfigError(
                    f'{listed} names {len(names)} classes but {loader_name} '
                    f'trains {len(classes)} ({examples(classes)}); '
                    f'{SUBSET_FIX}.')
            continue
        path = ann_file_path(dataset)
        if not classes or 'Coco' not in str(dataset.get('type', '')) or \
                path is None or not osp.isfile(path) or \
                osp.getsize(path) > FULL_CHECK_MAX_BYTES:
            continue
        names = set(coco.category_names(path))
        held = [c for c in classes if c in names]
        if held and len(held) < len(classes):
            raise ConfigError(
                f'{path} holds {len(held)} of the {len(classes)} classes '
                f'{loader_name} trains ({examples(held)}), so the head would '
                f'learn {len(classes) - len(held)} classes that never '
                f'appear; {SUBSET_FIX}.')


def check_classes_agree(cfg: Config, mode: str = 'train',
                        coco: Optional[CocoFiles] = None) -> None:
    """Raise :class:`ConfigError` when a head's ``num_classes`` differs from
    its datasets' class count, when two datasets disagree, or when a COCO
    annotation file holds fewer of the config's classes than it trains
    (unless ``classes_subset_ok=True``). ``coco``: the run's parsed
    files."""
    _check_heads(cfg, mode)
    _check_subset(cfg, mode, coco or CocoFiles())
