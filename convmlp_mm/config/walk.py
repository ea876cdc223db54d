"""Walking a config, one copy of each: its task, the loaders a run reads,
the datasets inside wrappers, the class names it trains on, a scope's
registries and the whole model it builds."""
import importlib
import inspect
from typing import Iterator, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

from convmlp_mm.errors import ConfigError

__all__ = [
    'DEFAULT_DRAW_IOU', 'EVALUATORS', 'LOADERS', 'TASKS', 'build_model',
    'config_classes', 'dataset_class', 'dataset_classes', 'draw_iou_threshold',
    'evaluator_metrics', 'leaf_datasets', 'loader_datasets', 'loaders_for',
    'scope_registry', 'task_of'
]

# default_scope -> task, as the launchers name them.
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# dataloader -> the evaluator that reads its annotations
EVALUATORS = {'val_dataloader': 'val_evaluator',
              'test_dataloader': 'test_evaluator'}


def task_of(cfg: Config) -> str:
    """``'detection'`` or ``'segmentation'``, from the config's
    ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ConfigError(
            f'Cannot tell the task of this config: default_scope is '
            f'{scope!r}, expected "mmdet" (detection) or "mmseg" '
            '(segmentation). Inherit an mmdet:: or mmseg:: base config.')
    return TASKS[scope]


def scope_registry(scope: Optional[str], name: str = 'MODELS'):
    """``<scope>.registry.<name>`` (``mmdet``'s ``DATASETS``, ...); mmengine's
    own registry of that name when the scope has none (or is ``None``)."""
    try:
        module = importlib.import_module(f'{scope}.registry')
        return getattr(module, name)
    except (ImportError, AttributeError, TypeError):
        return getattr(importlib.import_module('mmengine.registry'), name)


def build_model(cfg: Config, scope: Optional[str] = None) -> nn.Module:
    """The whole detector or segmentor of ``cfg.model``, built by the
    ``MODELS`` registry of ``scope`` (default: the config's
    ``default_scope``) under that scope, as mmengine's Runner builds it.
    Weights as initialised by the constructors; nothing is loaded."""
    scope = scope or cfg.get('default_scope')
    if scope not in TASKS:
        task_of(cfg)  # the one error for a config of another library
    with DefaultScope.overwrite_default_scope(scope):
        return scope_registry(scope, 'MODELS').build(cfg.model)


def evaluator_metrics(evaluator) -> List[dict]:
    """The metric dicts of an evaluator config (one dict or a list)."""
    if isinstance(evaluator, dict):
        return [evaluator]
    return [m for m in evaluator or [] if isinstance(m, dict)]


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


def loader_datasets(cfg: Config, loader_names: Sequence[str] = LOADERS
                    ) -> Iterator[Tuple[str, dict]]:
    """``(dataloader, leaf dataset)`` of each of ``loader_names`` (default:
    all three) that the config has."""
    for loader_name in loader_names:
        loader = cfg.get(loader_name) or {}
        for dataset in leaf_datasets(loader.get('dataset')):
            yield loader_name, dataset


def dataset_class(dataset: dict, scope: Optional[str]):
    """The class a dataset dict's ``type`` names in ``scope``'s
    ``DATASETS``; ``None`` when it names none."""
    type_name = dataset.get('type')
    if inspect.isclass(type_name):
        return type_name
    if not isinstance(type_name, str):
        return None
    return scope_registry(scope, 'DATASETS').get(type_name)


def dataset_classes(dataset: dict, scope: Optional[str]
                    ) -> Optional[Tuple[str, ...]]:
    """The class names of one dataset dict: its ``metainfo.classes``, else
    its type's own (``METAINFO``, from the registry of ``scope``); ``None``
    when neither names any."""
    classes = (dataset.get('metainfo') or {}).get('classes')
    if not classes and scope in TASKS:
        found = getattr(dataset_class(dataset, scope), 'METAINFO', None)
        classes = (found or {}).get('classes')
    return tuple(classes) if classes else None


def config_classes(cfg: Config, loader_name: str = 'test_dataloader'
                   ) -> Optional[Tuple[str, ...]]:
    """The class names of the (first) dataset of ``loader_name`` (default:
    the test set), by :func:`dataset_classes`."""
    for _, dataset in loader_datasets(cfg, [loader_name]):
        return dataset_classes(dataset, cfg.get('default_scope'))
    return None


# Pictures: when the config's test_cfg names no NMS (mmdet's default for
# RetinaNet and Mask R-CNN's box head).
DEFAULT_DRAW_IOU = 0.5


def draw_iou_threshold(cfg: Config) -> float:
    """The IoU above which a box is a duplicate of a higher-scored one in
    detection pictures: the config's own test-time NMS threshold
    (``model.test_cfg.nms``, or ``.rcnn.nms`` for two-stage detectors), else
    :data:`DEFAULT_DRAW_IOU`."""
    test_cfg = cfg.model.get('test_cfg') or {}
    for part in (test_cfg.get('rcnn') or {}, test_cfg):
        nms = part.get('nms') if hasattr(part, 'get') else None
        if nms and nms.get('iou_threshold') is not None:
            return float(nms['iou_threshold'])
    return DEFAULT_DRAW_IOU
