"""Config checks run before any model is built.

The config itself (:func:`check_config`): mmengine reads the top level of a
config with ``cfg.get`` (a typo such as ``default_hook=`` is ignored) and
passes hook, loop, optimizer and dataloader settings as keyword arguments
when it builds them, which for a ``CheckpointHook`` is only after the first
epoch. Here each setting is checked against the real ``__init__`` of the
class the registry returns, and an unknown one is a :class:`ConfigError`
naming the closest real key; the backbone's widths are checked against the
neck's.

The data it reads (:func:`check_data_paths`, :func:`check_annotation_files`,
:func:`check_dataset_contents`): a missing folder, a truncated download or a
hand-edited JSON otherwise fails minutes later, deep inside a dataset or
pycocotools, after the model was built and the work dir written. These walk
the config; the file-level checks are :mod:`convmlp_mm.datasets.checks`.
"""
import difflib
import inspect
import os.path as osp
from typing import Iterable, Iterator, List, Optional, Set, Tuple

import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from convmlp_mm.config.walk import (
    EVALUATORS,
    dataset_class,
    dataset_classes,
    evaluator_metrics,
    loader_datasets,
    loaders_for,
    scope_registry,
    task_of,
)
from convmlp_mm.datasets.checks import (
    CocoFiles,
    ann_file_path,
    check_category_overlap,
    check_coco_content,
    check_seg_dataset,
    dataset_paths,
    is_remote,
)
from convmlp_mm.errors import ConfigError
from convmlp_mm.models import backbone_class

__all__ = ['CONFIG_VARIABLES', 'LAYOUTS', 'RUNNER_KEYS',
           'check_annotation_files', 'check_config', 'check_config_keys',
           'check_data_paths', 'check_dataset_contents',
           'check_neck_channels', 'coco_annotation_files']

#: What mmengine's ``Runner.from_cfg``/``Runner.__init__`` and the tools
#: read from the top level of a config.
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'runner_type', 'model_wrapper_cfg', 'find_unused_parameters',
    'custom_imports', 'compile', 'strategy', 'cfg',
    # ConvMLPRunner's opt-in (convmlp_mm/models/loading.py)
    'load_from_skip_mismatched_heads'})
#: Variables the mmdet/mmseg base configs and ours define for reuse.
CONFIG_VARIABLES = frozenset({
    'data_root', 'dataset_type', 'backend_args', 'train_pipeline',
    'test_pipeline', 'val_pipeline', 'img_scale', 'img_scales', 'crop_size',
    'tta_model', 'tta_pipeline', 'norm_cfg', 'metainfo', 'classes',
    'num_classes', 'max_epochs', 'max_iters', 'vis_backends', 'dataset',
    'file_client_args', 'image_size', 'batch_augments', 'checkpoint',
    'pretrained', 'base_lr', 'interval'})
# Keys the Runner/optimizer constructor take out before building a class.
LOOP_EXTRA = {'type', 'by_epoch'}
WRAPPER_EXTRA = {'type', 'optimizer', 'paramwise_cfg', 'constructor'}
LOADER_EXTRA = {'dataset', 'sampler', 'batch_sampler', 'collate_fn',
                'worker_init_fn', 'num_batch_per_epoch',
                'disable_subprocess_warning', 'type'}
DEFAULT_LOOPS = {
    'train_cfg': lambda c: 'EpochBasedTrainLoop'
    if c.get('by_epoch', True) else 'IterBasedTrainLoop',
    'val_cfg': lambda c: 'ValLoop',
    'test_cfg': lambda c: 'TestLoop'}


# registry.name -> the attribute of <scope>.registry that holds it
_REGISTRY_NAMES = {'hook': 'HOOKS', 'loop': 'LOOPS',
                   'optim_wrapper': 'OPTIM_WRAPPERS',
                   'optimizer': 'OPTIMIZERS',
                   'parameter scheduler': 'PARAM_SCHEDULERS'}


def _closest(key: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, sorted(choices), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ''


def _init_params(cls) -> Optional[Set[str]]:
    """Keyword names ``cls(...)`` takes, following ``**kwargs`` up the MRO;
    ``None`` when a ``**kwargs`` leads nowhere this can follow."""
    names: Set[str] = set()
    for klass in inspect.getmro(cls):
        if klass is object:
            return None
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {'self'}
    return None


def _names(registry) -> Set[str]:
    names: Set[str] = set()
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    return names


def _lookup(registry, type_name, where: str):
    if not isinstance(type_name, str):
        return type_name if inspect.isclass(type_name) else None
    cls = registry.get(type_name)
    if cls is None:
        raise ConfigError(
            f'{where}.type "{type_name}" is not a registered '
            f'{registry.name}{_closest(type_name, _names(registry))}; '
            'fix the name, or add the package that registers it to '
            'custom_imports.')
    return cls


def _check_keys(settings: dict, allowed: Optional[Set[str]], where: str,
                what: str) -> None:
    if allowed is None or not isinstance(settings, dict):
        return
    # _scope_ is how mmengine marks the registry a base config came from.
    unknown = [k for k in settings if k not in allowed and k != '_scope_']
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f'Config key {where}.{key} is not a setting of {what}'
            f'{_closest(key, allowed)}; fix or remove it (settings: '
            f'{", ".join(sorted(allowed))}).')


def _check_built(settings, registry, where: str, extra: Set[str],
                 default_type: Optional[str] = None) -> None:
    """Check a ``dict(type=..., **kwargs)`` against its class's
    ``__init__``."""
    if not isinstance(settings, dict):
        return
    scope = settings.get('_scope_')
    if scope:
        registry = scope_registry(scope, _REGISTRY_NAMES[registry.name])
    cls = _lookup(registry, settings.get('type', default_type), where)
    if cls is None:
        return
    allowed = _init_params(cls)
    if allowed is None and _is_checkpoint_hook(cls):
        # CheckpointHook hands **kwargs to Runner.save_checkpoint, which
        # only runs after the first epoch: check them here.
        allowed = (_init_params_until(cls, CheckpointHook)
                   | set(inspect.signature(Runner.save_checkpoint)
                         .parameters) - {'self'})
    if allowed is not None:
        _check_keys(settings, allowed | extra, where, cls.__name__)


def _is_checkpoint_hook(cls) -> bool:
    return issubclass(cls, CheckpointHook)


def _init_params_until(cls, last) -> Set[str]:
    names: Set[str] = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        if init is not None:
            names |= set(inspect.signature(init).parameters)
        if klass is last:
            break
    return names - {'self', 'kwargs', 'args'}


def check_config_keys(cfg: Config) -> None:
    """Raise :class:`ConfigError` for a misspelt top-level key or an unknown
    setting of a hook, loop, optimizer, optimizer wrapper, parameter
    scheduler or dataloader, naming the closest real key."""
    known = RUNNER_KEYS | CONFIG_VARIABLES
    for key in cfg.keys():
        if key in known or key.startswith('_'):
            continue
        # Configs may define their own variables (max_epochs = 12), so only
        # a key that reads like a real one is taken for a typo.
        match = difflib.get_close_matches(key, sorted(RUNNER_KEYS), n=1,
                                          cutoff=0.8)
        if match:
            raise ConfigError(
                f'Config key "{key}" is not read by mmengine\'s Runner (did '
                f'you mean "{match[0]}"?); as written it is ignored. Rename '
                'it.')
    scope = cfg.get('default_scope')
    hooks = scope_registry(scope, 'HOOKS')
    for name, hook in (cfg.get('default_hooks') or {}).items():
        _check_built(hook, hooks, f'default_hooks.{name}', {'type',
                                                            'priority'})
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        _check_built(hook, hooks, f'custom_hooks[{index}]', {'type',
                                                             'priority'})
    loops = scope_registry(scope, 'LOOPS')
    for name, default in DEFAULT_LOOPS.items():
        loop = cfg.get(name)
        if isinstance(loop, dict) and loop:
            allowed_extra = LOOP_EXTRA | {'runner', 'dataloader'}
            _check_built(loop, loops, name, allowed_extra, default(loop))
    _check_optimizer(cfg, scope)
    schedulers = cfg.get('param_scheduler') or []
    for index, scheduler in enumerate(
            [schedulers] if isinstance(schedulers, dict) else schedulers):
        _check_built(scheduler, scope_registry(scope, 'PARAM_SCHEDULERS'),
                     f'param_scheduler[{index}]',
                     {'type', 'optimizer', 'convert_to_iter_based'})
    loader_keys = set(inspect.signature(
        torch.utils.data.DataLoader.__init__).parameters) | LOADER_EXTRA
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if isinstance(loader, dict):
            _check_keys(loader, loader_keys - {'self'}, name,
                        'a dataloader (torch DataLoader + mmengine)')


def _check_optimizer(cfg: Config, scope: Optional[str]) -> None:
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict) or wrapper.get('constructor') or \
            'optimizer' not in wrapper:
        return  # a custom constructor or one wrapper per module
    _check_built(wrapper, scope_registry(scope, 'OPTIM_WRAPPERS'),
                 'optim_wrapper', WRAPPER_EXTRA, 'OptimWrapper')
    _check_built(wrapper['optimizer'], scope_registry(scope, 'OPTIMIZERS'),
                 'optim_wrapper.optimizer', {'type'})


def _backbone_widths(backbone: dict) -> Optional[List[int]]:
    cls = backbone_class(backbone.get('type'))
    if cls is None:
        return None
    kwargs = {k: v for k, v in backbone.items() if k != 'type'}
    kwargs['init_cfg'] = None  # building must not load a checkpoint
    try:
        model = cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f'model.backbone: {exc}') from None
    return [model.out_channels[i] for i in model.out_indices]


def check_neck_channels(cfg: Config) -> None:
    """The backbone's arguments (ranges, names) and the neck's
    ``in_channels`` against the widths of the levels the backbone emits."""
    model = cfg.get('model') or {}
    backbone = model.get('backbone')
    if not isinstance(backbone, dict):
        return
    widths = _backbone_widths(backbone)
    neck = model.get('neck')
    necks = neck if isinstance(neck, list) else [neck]
    if widths is None or not isinstance(necks[0], dict):
        return
    in_channels = necks[0].get('in_channels')
    if in_channels is not None and list(in_channels) != widths:
        raise ConfigError(
            f'model.neck.in_channels is {list(in_channels)} but the backbone '
            f'(arch={backbone.get("arch", "s")!r}, out_indices='
            f'{tuple(backbone.get("out_indices", (0, 1, 2, 3)))}) emits '
            f'{widths}; set model.neck.in_channels={widths} or the arch the '
            'neck was made for.')


def check_config(cfg: Config) -> None:
    """All the checks of this module; see :func:`check_config_keys` and
    :func:`check_neck_channels`."""
    check_config_keys(cfg)
    check_neck_channels(cfg)



LAYOUTS = {
    'detection': 'a COCO folder: annotations/instances_train2017.json, '
    'annotations/instances_val2017.json, train2017/, val2017/',
    'segmentation': 'an ADE20K folder: images/training, images/validation, '
    'annotations/training, annotations/validation',
}


def _needed_paths(cfg: Config, loader_names: Iterable[str]
                  ) -> List[Tuple[str, str, str]]:
    """``(loader, what, path)`` for every local path the loaders read."""
    needed = []
    for loader_name in loader_names:
        for _, dataset in loader_datasets(cfg, [loader_name]):
            needed += [(loader_name, what, path)
                       for what, path in dataset_paths(dataset)]
        for metric in evaluator_metrics(
                cfg.get(EVALUATORS.get(loader_name, ''))):
            path = metric.get('ann_file')
            if path and not metric.get('backend_args') and \
                    not is_remote(path):
                needed.append((EVALUATORS[loader_name], 'ann_file', path))
    return needed


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


def _coco_datasets(cfg: Config, mode: str
                   ) -> Iterator[Tuple[str, dict, str]]:
    """``(loader, dataset, local ann_file path)`` for every ``Coco*`` dataset
    a ``'train'`` or ``'test'`` run reads whose file exists."""
    for loader_name, dataset in loader_datasets(cfg, loaders_for(cfg, mode)):
        path = ann_file_path(dataset)
        if 'Coco' in str(dataset.get('type', '')) and path and \
                osp.isfile(path):
            yield loader_name, dataset, path


def coco_annotation_files(cfg: Config, mode: str = 'train') -> List[str]:
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
        if not is_remote(path) and osp.isfile(path) and path not in unique:
            unique.append(path)
    return unique


def check_annotation_files(cfg: Config, mode: str = 'train',
                           coco: Optional[CocoFiles] = None) -> None:
    """Check every COCO annotation file a run reads (see
    :func:`~convmlp_mm.datasets.checks.check_coco_json`) and that its
    categories are ones the config trains on. Missing files are left to the
    path checks, which name all of them at once. ``coco``: the run's parsed
    files."""
    coco = coco or CocoFiles()
    for path in coco_annotation_files(cfg, mode):
        coco.load(path)
    for loader_name, dataset, path in _coco_datasets(cfg, mode):
        data = coco.load(path)
        if data is not None:  # a file too large to parse is not checked
            check_category_overlap(path, data,
                                   dataset_classes(dataset, 'mmdet'),
                                   loader_name)


def _seg_settings(dataset: dict) -> Tuple[str, str, bool, Optional[int]]:
    """img_suffix, seg_map_suffix, reduce_zero_label and the number of
    classes of an mmseg dataset config (the class's defaults filled in)."""
    cls = dataset_class(dataset, 'mmseg')
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
    classes = dataset_classes(dataset, 'mmseg')
    return (settings.get('img_suffix', '.jpg'),
            settings.get('seg_map_suffix', '.png'),
            bool(settings.get('reduce_zero_label', False)),
            len(classes) if classes else None)


def check_dataset_contents(cfg: Config, mode: str = 'train',
                           coco: Optional[CocoFiles] = None) -> None:
    """Check the content of every local dataset a ``'train'`` or ``'test'``
    run reads (COCO annotation files and images, mmseg image/mask
    folders); see :func:`~convmlp_mm.datasets.checks.check_coco_content`
    and :func:`~convmlp_mm.datasets.checks.check_seg_dataset`. ``coco``:
    the run's parsed files."""
    coco = coco or CocoFiles()
    for _, dataset, path in _coco_datasets(cfg, mode):
        data = coco.load(path)
        if data is None:
            continue  # too large to parse: only its ends were checked
        root = dataset.get('data_root') or ''
        img_prefix = (dataset.get('data_prefix') or {}).get('img', '')
        check_coco_content(path, data, img_dir=osp.join(root, img_prefix),
                           data_root=root or None)
    for loader_name, dataset in loader_datasets(cfg, loaders_for(cfg, mode)):
        prefix = dataset.get('data_prefix') or {}
        if 'seg_map_path' not in prefix or dataset.get('backend_args') or \
                dataset.get('ann_file'):
            continue
        root = dataset.get('data_root') or ''
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
