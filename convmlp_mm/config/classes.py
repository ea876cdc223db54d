"""The one place that decides a run's label-to-name map (label i is called
``classes[i]``) and checks that every source of it agrees, before
anything is built:

- the annotation files, by the datasets' own rule: mmdet's ``CocoDataset``
  and ``CocoMetric`` number the categories a config names in the order the
  file lists them (:func:`~convmlp_mm.datasets.checks.coco_label_names`);
  a segmentation folder's ``classes.txt`` line i is label i;
- the config's ``metainfo.classes`` and heads' ``num_classes``;
- ``--classes a,b,c`` and ``--classes auto`` (:func:`read_classes`: the
  train file's order, so it is the dataset's rule, never a re-sort);
- a checkpoint's ``meta`` (``dataset_meta.classes``, mmcv 1's
  ``CLASSES``): :func:`check_checkpoint_label_map` for ``tools/test.py``
  and resuming, :func:`model_classes` for inference and export.

Where two sources disagree the run stops with one line naming both orders
and the fix. The one remap: inference names a model's labels as its
checkpoint records them, whatever order the config lists, and says so
(the weights were trained in that order; no data is read). mmdet numbers
a COCO file's labels itself, so a config order other than the file's
cannot be remapped: it is an error. A name given twice is refused
everywhere.

Without these, a COCO file holding two of COCO's names trains the 80-class
head without a word, a config that sets ``metainfo.classes`` but forgets a
head's ``num_classes`` trains a head of the wrong size, and a file listing
its categories as ids 90, 1, 7 trains every object under another class's
name.
"""
import logging
import os.path as osp
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.config.walk import (
    EVALUATORS,
    dataset_classes,
    evaluator_metrics,
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
    coco_label_names,
    examples,
    is_remote,
    read_class_list,
    repeated_names,
)
from convmlp_mm.errors import ConfigError
from convmlp_mm.models import legacy_dataset_meta

__all__ = ['check_checkpoint_label_map', 'check_classes_agree',
           'check_distinct', 'checkpoint_classes', 'head_classes',
           'model_classes', 'read_classes', 'set_classes']

# Heads that have a num_classes of the dataset's classes. rpn_head is not one
# of them: its num_classes=1 means "object".
HEAD_KEYS = ('bbox_head', 'mask_head', 'decode_head', 'auxiliary_head')
SUBSET_FIX = ('pass --classes auto to train on the file\'s categories '
              'instead, or --classes-subset-ok if this subset is intended')
# How many names an order shows in a message.
SHOWN = 8


def _order(names: Sequence[str]) -> str:
    """``('a', 'b', ...)``: quoted, as names may hold commas."""
    return f'({examples([repr(n) for n in names], SHOWN)})'


def _first_difference(truth: Sequence[str], named: Sequence[str]) -> int:
    """The first label the two lists name differently (within both)."""
    return next((i for i, (a, b) in enumerate(zip(truth, named)) if a != b),
                min(len(truth), len(named)))


def _conflict(first: Sequence[str], second: Sequence[str]
              ) -> Optional[Tuple[str, int, int]]:
    """``(name, label in first, label in second)`` of the first name both
    lists hold under different labels; ``None`` when none does."""
    where = {name: i for i, name in enumerate(second)}
    for i, name in enumerate(first):
        if name in where and where[name] != i:
            return name, i, where[name]
    return None


def check_distinct(names: Sequence[str], where: str,
                   fix: str = 'name each class once, label 0 first'
                   ) -> Tuple[str, ...]:
    """``names`` as a tuple; :class:`ConfigError` naming ``where`` when it is
    empty, holds an empty name or a name twice (two labels one name: every
    score and picture of one of them goes to the other)."""
    names = tuple(names)
    if not names:
        raise ConfigError(f'{where} names no classes; {fix}.')
    blank = [i for i, name in enumerate(names)
             if not isinstance(name, str) or not name.strip()]
    if blank:
        raise ConfigError(f'{where} has no name for label {blank[0]} '
                          f'{_order(names)}; {fix}.')
    repeated = repeated_names(names)
    if repeated:
        labels = [i for i, name in enumerate(names) if name == repeated[0]]
        raise ConfigError(
            f'{where} names labels {", ".join(map(str, labels))} '
            f'{repeated[0]!r} {_order(names)}: one name for two classes; '
            f'{fix}.')
    return names


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


def _is_coco(settings: dict) -> bool:
    return 'Coco' in str(settings.get('type', ''))


def _coco_label_names(path: str, data: dict,
                      classes: Optional[Sequence[str]]) -> List[str]:
    """:func:`~convmlp_mm.datasets.checks.coco_label_names` of a file;
    :class:`ConfigError` when two of its categories share a name the run
    uses (mmdet would give that name two labels)."""
    labels = coco_label_names(data, classes)
    repeated = repeated_names(labels)
    if repeated:
        ids = [c['id'] for c in data['categories']
               if c['name'] == repeated[0]]
        raise ConfigError(
            f'{path} lists {len(ids)} categories named {repeated[0]!r} (ids '
            f'{", ".join(map(str, ids))}): mmdet\'s CocoDataset would give '
            'that one name two labels; give each category a name of its own '
            '(or merge them into one id).')
    return labels


def read_classes(cfg: Config, mode: str = 'train',
                 coco: Optional[CocoFiles] = None) -> Tuple[str, ...]:
    """The class names of the data a run reads first (the training set, or
    the test set), label 0 first: the categories of its COCO annotation
    file in the file's order (mmdet's ``CocoDataset`` numbers them so), or,
    for segmentation, one name a line of ``DATA_ROOT/classes.txt`` (line
    i: training label i). ``coco``: the run's parsed files."""
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
        data = (coco or CocoFiles()).load(source, whole=True)
        names = check_distinct(_coco_label_names(source, data, None),
                               source, 'give each category a name')
        order = 'in the file\'s order, as mmdet\'s CocoDataset numbers them'
    else:
        source = osp.join(dataset.get('data_root') or '.', CLASS_LIST_FILE)
        if not osp.isfile(source):
            raise ConfigError(
                f'--classes auto reads a segmentation folder\'s class names '
                f'from {source}, which does not exist; write one name a line '
                '(line 1: training label 0) into it (docs/own_data.md).')
        names = _class_list(source)
        order = 'line 1 is label 0'
    print_log(f'--classes auto: {len(names)} classes from {source} '
              f'({order}): {examples(names, 10)}', logger='current')
    return names


def _class_list(path: str) -> Tuple[str, ...]:
    return check_distinct(read_class_list(path), path,
                          'write each class on one line, once')


def set_classes(cfg: Config, classes: Sequence[str],
                source: str = '--classes') -> None:
    """Put ``classes`` in every dataset's ``metainfo.classes`` and their
    count in every head's ``num_classes``. Evaluators get the names from
    their dataset (mmengine passes ``dataset.metainfo`` as their
    ``dataset_meta``). ``source`` names them in errors (a name twice)."""
    classes = check_distinct(classes, source)
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
    for loader_name, classes in datasets:
        check_distinct(classes, f'{loader_name}.dataset.metainfo.classes')
    loader_name, classes = datasets[0]
    for other_name, other in datasets[1:]:
        if len(other) != len(classes):
            raise ConfigError(
                f'{loader_name} has {len(classes)} classes but {other_name} '
                f'has {len(other)}; set the same metainfo.classes in both '
                '(or pass --classes auto).')
        if tuple(other) != tuple(classes):
            i = _first_difference(classes, other)
            raise ConfigError(
                f'{loader_name} numbers its classes {_order(classes)} but '
                f'{other_name} {_order(other)}: label {i} is '
                f'{classes[i]!r} in one and {other[i]!r} in the other; set '
                'the same metainfo.classes in both (or pass --classes '
                'auto).')
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
        path = ann_file_path(dataset)
        if not classes or not _is_coco(dataset) or \
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


def _check_class_lists(cfg: Config, mode: str) -> None:
    """A segmentation folder's ``classes.txt`` (line i: label i) against
    its dataset's classes: the same names in the same order (with
    ``classes_subset_ok``, a name both hold must have the same label)."""
    if task_of(cfg) != 'segmentation':
        return
    subset_ok = bool(cfg.get('classes_subset_ok'))
    for loader_name, dataset, classes in _classes_by_dataset(cfg, mode):
        listed = class_list_path(dataset)
        if not classes or not listed or not osp.isfile(listed):
            continue
        names = _class_list(listed)
        if not subset_ok and len(names) != len(classes):
            raise ConfigError(
                f'{listed} names {len(names)} classes but {loader_name} '
                f'trains {len(classes)} ({examples(classes)}); '
                f'{SUBSET_FIX}.')
        conflict = _conflict(names, classes)
        if conflict is None and (subset_ok or names == tuple(classes)):
            continue
        i = conflict[1] if conflict else _first_difference(names, classes)
        raise ConfigError(
            f'{listed} numbers the classes {_order(names)} (line 1: label '
            f'0), but {loader_name}.dataset.metainfo.classes numbers them '
            f'{_order(classes)}: label {i} holds {names[i]!r} pixels but '
            f'would be called {classes[i]!r}; pass --classes auto, or set '
            'metainfo.classes in the file\'s order.')


def _coco_label_orders(cfg: Config, mode: str, coco: CocoFiles
                       ) -> List[Tuple[str, str, tuple, List[str]]]:
    """``(reader, file, classes, label names)`` of every COCO file a run
    reads (datasets and ``CocoMetric``'s ``ann_file``): the names mmdet
    gives labels 0, 1, ... of that file. Files too large to parse before
    the run (:data:`FULL_CHECK_MAX_BYTES`) are skipped unless parsed
    already."""
    found, seen = [], set()

    def add(reader, path, classes):
        if not classes or not path or is_remote(path) or \
                not osp.isfile(path) or (reader, path) in seen:
            return
        seen.add((reader, path))
        data = coco.load(path)
        if data is not None:
            found.append((reader, path, tuple(classes),
                          _coco_label_names(path, data, classes)))

    by_loader = {}
    for loader_name, dataset, classes in _classes_by_dataset(cfg, mode):
        by_loader.setdefault(loader_name, classes)
        if _is_coco(dataset):
            add(loader_name, ann_file_path(dataset), classes)
    for loader_name, classes in by_loader.items():
        evaluator = EVALUATORS.get(loader_name, '')
        for metric in evaluator_metrics(cfg.get(evaluator)):
            if _is_coco(metric):
                add(evaluator, metric.get('ann_file'), classes)
    return found


def _check_coco_orders(cfg: Config, mode: str, coco: CocoFiles) -> None:
    """Every COCO file of a run must number the run's classes as its
    ``metainfo.classes`` does: mmdet's CocoDataset and CocoMetric give label
    i to the i-th named category in each file's own order."""
    orders = _coco_label_orders(cfg, mode, coco)
    fits = [labels == list(classes[:len(labels)])
            for _, _, classes, labels in orders]
    for (reader, path, classes, labels), fit in zip(orders, fits):
        if fit:
            continue
        i = _first_difference(labels, classes)
        if fits[0]:  # the first file (training's) numbers them right
            first_path, first_labels = orders[0][1], orders[0][3]
            raise ConfigError(
                f'{path} ({reader}) lists the categories in the order '
                f'{_order(labels)} but {first_path} in the order '
                f'{_order(first_labels)}; mmdet numbers each file\'s '
                f'categories in its own order, so its label {i} would be '
                f'{labels[i]!r} in one and {first_labels[i]!r} in the '
                f'other: list the categories of {path} in the order of '
                f'{first_path}.')
        raise ConfigError(
            f'{path} ({reader}) lists the categories in the order '
            f'{_order(labels)}, and mmdet\'s CocoDataset numbers labels in '
            f'the file\'s order, but metainfo.classes numbers them '
            f'{_order(classes)}: label {i} holds {labels[i]!r} objects but '
            f'would be called {classes[i]!r}; pass --classes auto, or set '
            'metainfo.classes of every dataset in the file\'s order' +
            (' (its categories first)' if len(labels) < len(classes)
             else '') + '.')


def check_classes_agree(cfg: Config, mode: str = 'train',
                        coco: Optional[CocoFiles] = None) -> None:
    """Raise :class:`ConfigError` when a dataset names a class twice, a
    head's ``num_classes`` differs from its datasets' class count, two
    datasets number the classes differently, a COCO annotation file holds
    fewer of the config's classes than it trains (unless
    ``classes_subset_ok=True``), or an annotation file (a COCO file's
    category order, ``classes.txt``) numbers them otherwise than the
    config. ``coco``: the run's parsed files."""
    coco = coco or CocoFiles()
    _check_heads(cfg, mode)
    _check_subset(cfg, mode, coco)
    _check_class_lists(cfg, mode)
    _check_coco_orders(cfg, mode, coco)


def checkpoint_classes(meta: Optional[Mapping],
                       checkpoint_name: str = 'the checkpoint'
                       ) -> Optional[Tuple[str, ...]]:
    """The class names a checkpoint's ``meta`` records, label 0 first:
    mmengine's ``dataset_meta.classes`` (the training set's
    ``metainfo``), or mmcv 1's ``CLASSES``; ``None`` when it records
    none."""
    if not isinstance(meta, Mapping):
        return None
    found = legacy_dataset_meta(meta).get('classes')
    if found is None and isinstance(meta.get('dataset_meta'), Mapping):
        found = meta['dataset_meta'].get('classes')
    if found is None:
        return None
    return check_distinct(
        [str(name) for name in found], f'{checkpoint_name} (its meta)',
        'pass --classes with one name a label, or train it again with '
        'distinct names')


def check_checkpoint_label_map(meta: Optional[Mapping],
                               classes: Optional[Sequence[str]],
                               checkpoint_name: str = 'the checkpoint',
                               run_name: str = 'this run') -> None:
    """Raise :class:`ConfigError`, naming both orders, unless the classes a
    checkpoint was trained on (:func:`checkpoint_classes`) are ``classes``
    in the same order: ``tools/test.py`` scores label i as the data's
    ``classes[i]``, and a resumed run trains it as that. A checkpoint
    recording none passes."""
    recorded = checkpoint_classes(meta, checkpoint_name)
    if recorded is None or classes is None:
        return
    classes = tuple(classes)
    if recorded == classes:
        return
    i = _first_difference(recorded, classes)
    if sorted(recorded) == sorted(classes):
        raise ConfigError(
            f'{checkpoint_name} numbers its classes {_order(recorded)} but '
            f'{run_name} numbers them {_order(classes)} (the config\'s '
            f'metainfo.classes, in the annotation file\'s order): label {i} '
            f'is {recorded[i]!r} to the model but {classes[i]!r} to the '
            'data; use the config the checkpoint was trained with (its work '
            'dir has it) and data that lists the categories in its order '
            '(or --classes auto, if it was trained with --classes auto).')
    raise ConfigError(
        f'{checkpoint_name} was trained on {len(recorded)} classes '
        f'{_order(recorded)} but {run_name} has {len(classes)} '
        f'{_order(classes)}; use the config the checkpoint was trained '
        'with (its work dir has it), or set the config\'s classes to the '
        'checkpoint\'s.')


def model_classes(recorded: Optional[Sequence[str]],
                  configured: Optional[Sequence[str]],
                  given: Optional[Sequence[str]] = None,
                  num_classes: Optional[int] = None,
                  checkpoint_name: str = 'the checkpoint'
                  ) -> Tuple[str, ...]:
    """The names of a trained model's labels, label 0 first, for inference
    and export (no data is read, so nothing needs the config's order).

    Args:
        recorded: What the checkpoint or ONNX file records
            (:func:`checkpoint_classes`): the order its weights were
            trained in, so it wins over ``configured``, with a warning
            where the two put a name under different labels.
        configured: The config's test classes: used when nothing is
            recorded and their count is the head's ``num_classes``.
        given: ``--classes``: renames the recorded classes, but may not
            put one of their names under another label.
        num_classes: The head's count (``None``: unknown).
        checkpoint_name: How to name the file in messages.

    Returns ``()`` when no source fits (the caller's count error)."""
    if given is not None:
        given = check_distinct(given, '--classes')
        conflict = _conflict(recorded or (), given)
        if conflict:
            name, trained, named = conflict
            raise ConfigError(
                f'--classes {_order(given)} puts {name!r} at label {named} '
                f'but {checkpoint_name} was trained with it at label '
                f'{trained} {_order(recorded)}; leave out --classes to use '
                'the checkpoint\'s names, or give them in its order.')
        if recorded and tuple(recorded) != given:
            print_log(f'--classes renames the classes of {checkpoint_name} '
                      f'{_order(recorded)} as {_order(given)}.',
                      logger='current')
        return given
    if recorded:
        conflict = _conflict(recorded, configured or ())
        if conflict:
            name, trained, named = conflict
            print_log(
                f'{checkpoint_name} was trained with {name!r} at label '
                f'{trained} {_order(recorded)}, the config lists it at '
                f'label {named} {_order(configured)}: labels are named as '
                'the checkpoint records (tools/test.py refuses this pair).',
                logger='current', level=logging.WARNING)
        return tuple(recorded)
    if configured and (num_classes is None or
                       len(configured) == num_classes):
        return check_distinct(configured,
                              'the config\'s test_dataloader classes')
    return ()
