"""Config checks run before any model is built: misspelt keys and the
backbone's widths against the neck's.

mmengine reads the top level of a config with ``cfg.get`` (a typo such as
``default_hook=`` is ignored) and passes hook, loop, optimizer and
dataloader settings as keyword arguments when it builds them, which for a
``CheckpointHook`` is only after the first epoch. Here each setting is
checked against the real ``__init__`` of the class the registry returns, and
an unknown one is a :class:`ConfigError` naming the closest real key.
"""
import difflib
import importlib
import inspect
from typing import Iterable, List, Optional, Set

import torch
from mmengine.config import Config

from convmlp_mm.config.core import ConfigError

__all__ = ['check_config', 'check_config_keys', 'check_neck_channels',
           'RUNNER_KEYS', 'CONFIG_VARIABLES']

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


def _registry(scope: Optional[str], name: str):
    try:
        module = importlib.import_module(f'{scope}.registry')
        return getattr(module, name)
    except (ImportError, AttributeError, TypeError):
        return getattr(importlib.import_module('mmengine.registry'), name)


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
        registry = _registry(scope, _REGISTRY_NAMES[registry.name])
    cls = _lookup(registry, settings.get('type', default_type), where)
    if cls is None:
        return
    allowed = _init_params(cls)
    if allowed is None and _is_checkpoint_hook(cls):
        # CheckpointHook hands **kwargs to Runner.save_checkpoint, which
        # only runs after the first epoch: check them here.
        from mmengine.hooks import CheckpointHook
        from mmengine.runner import Runner
        allowed = (_init_params_until(cls, CheckpointHook)
                   | set(inspect.signature(Runner.save_checkpoint)
                         .parameters) - {'self'})
    if allowed is not None:
        _check_keys(settings, allowed | extra, where, cls.__name__)


def _is_checkpoint_hook(cls) -> bool:
    from mmengine.hooks import CheckpointHook
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
    hooks = _registry(scope, 'HOOKS')
    for name, hook in (cfg.get('default_hooks') or {}).items():
        _check_built(hook, hooks, f'default_hooks.{name}', {'type',
                                                            'priority'})
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        _check_built(hook, hooks, f'custom_hooks[{index}]', {'type',
                                                             'priority'})
    loops = _registry(scope, 'LOOPS')
    for name, default in DEFAULT_LOOPS.items():
        loop = cfg.get(name)
        if isinstance(loop, dict) and loop:
            allowed_extra = LOOP_EXTRA | {'runner', 'dataloader'}
            _check_built(loop, loops, name, allowed_extra, default(loop))
    _check_optimizer(cfg, scope)
    schedulers = cfg.get('param_scheduler') or []
    for index, scheduler in enumerate(
            [schedulers] if isinstance(schedulers, dict) else schedulers):
        _check_built(scheduler, _registry(scope, 'PARAM_SCHEDULERS'),
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
    _check_built(wrapper, _registry(scope, 'OPTIM_WRAPPERS'),
                 'optim_wrapper', WRAPPER_EXTRA, 'OptimWrapper')
    _check_built(wrapper['optimizer'], _registry(scope, 'OPTIMIZERS'),
                 'optim_wrapper.optimizer', {'type'})


def _backbone_widths(backbone: dict) -> Optional[List[int]]:
    from convmlp_mm.models import ConvMLP
    if backbone.get('type') not in ('ConvMLP', ConvMLP,
                                    'mmdet.ConvMLP', 'mmseg.ConvMLP'):
        return None
    kwargs = {k: v for k, v in backbone.items() if k != 'type'}
    kwargs['init_cfg'] = None  # building must not load a checkpoint
    try:
        model = ConvMLP(**kwargs)
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

