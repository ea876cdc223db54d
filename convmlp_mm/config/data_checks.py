"""Data checks, run before any model is built: the folders and files a run
reads (:func:`set_data_root`, :func:`check_data_paths`) and the annotation
files themselves (:func:`check_annotation_files`).

A missing folder, a truncated download or a hand-edited JSON otherwise fails
minutes later, deep inside a dataset or pycocotools, after the model was built
and the work dir written.
"""
import json
import logging
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.config.core import ConfigError, evaluator_metrics, task_of
from convmlp_mm.errors import AnnotationError  # noqa: F401

# Above this size only the cheap truncation check runs: parsing COCO's 450 MB
# train2017 file twice costs ~20 s and a few GB of memory.
FULL_CHECK_MAX_BYTES = 100 * 2**20
COCO_KEYS = {'images': ('id', 'file_name', 'width', 'height'),
             'annotations': ('id', 'image_id', 'category_id', 'bbox'),
             'categories': ('id', 'name')}
LAYOUTS = {
    'detection': 'a COCO folder: annotations/instances_train2017.json, '
    'annotations/instances_val2017.json, train2017/, val2017/',
    'segmentation': 'an ADE20K folder: images/training, images/validation, '
    'annotations/training, annotations/validation',
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# dataloader -> the evaluator that reads its annotations
EVALUATORS = {'val_dataloader': 'val_evaluator',
              'test_dataloader': 'test_evaluator'}
FIX = ('Download or generate it again (built-in data: python '
       'tools/make_dataset.py coco DIR), or point --data-root at a folder '
       'whose annotations/instances_{train,val}2017.json are COCO files.')


def check_coco_json(path: str) -> None:
    """Raise :class:`AnnotationError` naming ``path`` unless it is a COCO
    instances file (``images``, ``annotations``, ``categories`` lists with
    the fields pycocotools and mmdet's CocoDataset read)."""
    size = osp.getsize(path)
    if size > FULL_CHECK_MAX_BYTES:
        with open(path, 'rb') as f:
            head = f.read(64).lstrip()
            f.seek(max(0, size - 64))
            tail = f.read().rstrip()
        if not (head.startswith(b'{') and tail.endswith(b'}')):
            raise AnnotationError(
                f'Annotation file {path} is not valid COCO JSON: it does '
                'not start with "{" and end with "}" (truncated download?). '
                + FIX)
        return
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


def leaf_datasets(dataset) -> Iterator[dict]:
    """The datasets inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if not isinstance(dataset, dict):
        return
    if 'datasets' in dataset:
        for inner in dataset['datasets']:
            yield from leaf_datasets(inner)
    elif isinstance(dataset.get('dataset'), dict):
        yield from leaf_datasets(dataset['dataset'])
    else:
        yield dataset


def _is_remote(path: str) -> bool:
    return '://' in str(path)


def _join(root: Optional[str], path: str) -> str:
    # BaseDataset's rule: a relative path is relative to data_root.
    if not root or osp.isabs(path) or _is_remote(path):
        return path
    return osp.join(root, path)


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point every dataloader and its evaluator's ``ann_file`` at
    ``data_root``, keeping the config's layout inside it."""
    data_root = osp.abspath(osp.expanduser(data_root))
    cfg.data_root = data_root
    for loader_name in LOADERS:
        loader = cfg.get(loader_name)
        if not loader or 'dataset' not in loader:
            continue
        leaves = list(leaf_datasets(loader['dataset']))
        for dataset in leaves:
            dataset['data_root'] = data_root
        evaluator = cfg.get(EVALUATORS.get(loader_name, ''))
        ann_files = [d['ann_file'] for d in leaves if d.get('ann_file')]
        for metric in evaluator_metrics(evaluator):
            if not metric.get('ann_file'):
                continue
            if len(ann_files) == 1:
                # CocoMetric reads the annotations itself, by full path.
                metric['ann_file'] = _join(data_root, ann_files[0])
            else:
                print_log(
                    f'--data-root: {EVALUATORS[loader_name]} '
                    f'{metric.get("type")} keeps ann_file '
                    f'{metric["ann_file"]}: {loader_name} reads '
                    f'{len(ann_files)} annotation files, so which one it '
                    'scores against is not clear; set it with --cfg-options.',
                    logger='current', level=logging.WARNING)


def _needed_paths(cfg: Config, loader_names: Sequence[str]
                  ) -> List[Tuple[str, str, str]]:
    """``(loader, what, path)`` for every local path the loaders read."""
    needed = []
    for loader_name in loader_names:
        loader = cfg.get(loader_name)
        if not loader or 'dataset' not in loader:
            continue
        for dataset in leaf_datasets(loader['dataset']):
            if dataset.get('backend_args'):
                continue  # a storage backend (petrel, ...): not local files
            root = dataset.get('data_root')
            if dataset.get('ann_file'):
                needed.append((loader_name, 'ann_file',
                               _join(root, dataset['ann_file'])))
            for key, prefix in (dataset.get('data_prefix') or {}).items():
                needed.append((loader_name, f'data_prefix.{key}',
                               _join(root, prefix) if prefix else root))
            if root and not dataset.get('data_prefix') and \
                    not dataset.get('ann_file'):
                needed.append((loader_name, 'data_root', root))
        for metric in evaluator_metrics(
                cfg.get(EVALUATORS.get(loader_name, ''))):
            if metric.get('ann_file') and not metric.get('backend_args'):
                needed.append((EVALUATORS[loader_name], 'ann_file',
                               metric['ann_file']))
    return [(n, w, p) for n, w, p in needed if p and not _is_remote(p)]


def loaders_for(cfg: Config, mode: str) -> List[str]:
    """The dataloaders a ``'train'`` (with validation, when configured) or
    ``'test'`` run reads."""
    if mode == 'test':
        return ['test_dataloader']
    names = ['train_dataloader']
    if cfg.get('val_cfg') and cfg.get('val_dataloader') and \
            cfg.get('val_evaluator'):
        names.append('val_dataloader')
    return names


def check_data_paths(cfg: Config, mode: str,
                     data_root: Optional[str] = None) -> None:
    """Raise :class:`ConfigError` naming every path a ``mode`` run needs and
    does not find. Cheap: nothing is built or read."""
    if data_root is not None and not osp.isdir(data_root):
        raise ConfigError(
            f'--data-root {data_root} is not a folder; it should be '
            f'{LAYOUTS.get(task_of(cfg), "a dataset folder")}.')
    missing = [(n, w, p) for n, w, p in _needed_paths(cfg, loaders_for(
        cfg, mode)) if not osp.exists(p)]
    if not missing:
        return
    lines = '\n'.join(f'  {name}.{what}: {path}' for name, what, path in
                      missing)
    where = f'--data-root {data_root}' if data_root else (
        'the config\'s data_root (pass --data-root DIR to use another '
        'folder)')
    raise ConfigError(
        f'{where} lacks what this config reads; missing:\n{lines}\n'
        f'Expected {LAYOUTS.get(task_of(cfg), "the layout the config names")}'
        '.')


def _coco_datasets(cfg, mode: str) -> Iterator[Tuple[str, dict, str]]:
    """``(loader, dataset, local ann_file path)`` for every ``Coco*`` dataset
    a ``'train'`` or ``'test'`` run reads."""
    for loader_name in loaders_for(cfg, mode):
        loader = cfg.get(loader_name)
        if not loader:
            continue
        for dataset in leaf_datasets(loader.get('dataset')):
            ann_file: Optional[str] = dataset.get('ann_file')
            if 'Coco' not in str(dataset.get('type', '')) or not ann_file \
                    or dataset.get('backend_args'):
                continue
            root = dataset.get('data_root') or ''
            path = ann_file if osp.isabs(ann_file) else osp.join(root,
                                                                  ann_file)
            if '://' not in path and osp.isfile(path):
                yield loader_name, dataset, path


def coco_annotation_files(cfg, mode: str = 'train') -> List[str]:
    """Local COCO JSON files a ``'train'`` or ``'test'`` run reads
    (datasets of a ``Coco*`` type, and ``CocoMetric`` evaluators)."""
    files = [path for _, _, path in _coco_datasets(cfg, mode)]
    for loader_name in loaders_for(cfg, mode):
        for metric in evaluator_metrics(cfg.get(EVALUATORS.get(loader_name,
                                                               ''))):
            if 'Coco' in str(metric.get('type', '')) and \
                    metric.get('ann_file'):
                files.append(metric['ann_file'])
    unique = []
    for path in files:
        if '://' not in path and osp.isfile(path) and path not in unique:
            unique.append(path)
    return unique


def check_annotation_files(cfg, mode: str = 'train') -> None:
    """Check every COCO annotation file a run reads (see
    :func:`check_coco_json`) and that its categories are ones the config
    trains on. Missing files are left to the path checks, which name all of
    them at once."""
    for path in coco_annotation_files(cfg, mode):
        check_coco_json(path)
    check_category_names(cfg, mode)


def _dataset_classes(dataset: dict) -> Optional[tuple]:
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return tuple(metainfo['classes'])
    from mmdet.registry import DATASETS
    dataset_cls = DATASETS.get(dataset.get('type', ''))
    return tuple(getattr(dataset_cls, 'METAINFO', {}).get('classes', ())) \
        or None


def check_category_names(cfg, mode: str = 'train') -> None:
    """mmdet's CocoDataset keeps only the categories whose names are in its
    ``metainfo['classes']`` (COCO's 80 by default). When none match, every
    image is dropped and mmengine fails later with "need at least one array
    to concatenate"; say what is wrong instead."""
    for loader_name, dataset, path in _coco_datasets(cfg, mode):
        if osp.getsize(path) > FULL_CHECK_MAX_BYTES:
            continue
        classes = _dataset_classes(dataset)
        with open(path, encoding='utf-8') as f:
            names = [c['name'] for c in json.load(f)['categories']]
        if classes and not set(names) & set(classes):
            raise AnnotationError(
                f'None of the categories in {path} '
                f'({", ".join(names[:5])}{", ..." if len(names) > 5 else ""})'
                f' is one of the classes {loader_name} trains on '
                f'({", ".join(classes[:5])}'
                f'{", ..." if len(classes) > 5 else ""}), '
                'so every image would be dropped. Pass --classes auto to '
                'train on the file\'s categories, or set '
                f'{loader_name}.dataset.metainfo.classes (and the head\'s '
                'num_classes) to them, as configs/demo/ does for the '
                'built-in data.')
