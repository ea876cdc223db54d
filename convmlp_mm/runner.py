"""What ``tools/train.py`` and ``tools/test.py`` share: one config decides
the task (mmdet or mmseg), and these helpers turn command-line flags into
config changes before mmengine's :class:`~mmengine.runner.Runner` is built.

* :func:`set_data_root` points every dataloader and evaluator at one dataset
  folder; :func:`check_data_paths` names what that folder lacks before any
  model is built.
* :func:`check_task` refuses a detection config given to the segmentation
  launcher and the reverse.
* :func:`setup_cpu_distributed` makes ``--launcher pytorch`` work without
  CUDA: mmengine 0.10.7's launcher calls ``torch.cuda.set_device`` and its
  Runner wraps DDP with ``device_ids=[LOCAL_RANK]``, both CUDA-only. Here the
  gloo process group is initialised first (the Runner then skips its own) and
  the model is wrapped by :class:`CPUDistributedDataParallel`.
* :class:`CPUAmpOptimWrapper` is ``--amp`` on CPU: bfloat16 autocast
  (mmengine's ``AmpOptimWrapper`` asserts a GPU).
"""
import datetime
import logging
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS, RUNNERS
from mmengine.runner import Runner

from .allocator import ENV_SWITCH as ALLOCATOR_SWITCH
from .allocator import keep_freed_cpu_memory
from .data_checks import leaf_datasets, check_annotation_files

# default_scope -> task, as the launchers name them.
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}
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


class ConfigError(ValueError):
    """A config, flag or data folder that cannot work; the message says why
    and what to do."""


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


def check_task(cfg: Config, expected: str, config_path: str = 'config'
               ) -> None:
    """Raise :class:`ConfigError` unless the config is for ``expected``."""
    task = task_of(cfg)
    if task != expected:
        launcher = f'dist_{task}.sh'
        raise ConfigError(
            f'{config_path} is a {task} config (default_scope '
            f'"{cfg.default_scope}"), but this is the {expected} launcher. '
            f'Use ./{launcher} {config_path} GPUS DATA_ROOT instead.')


def _is_remote(path: str) -> bool:
    return '://' in str(path)


def _join(root: Optional[str], path: str) -> str:
    # BaseDataset's rule: a relative path is relative to data_root.
    if not root or osp.isabs(path) or _is_remote(path):
        return path
    return osp.join(root, path)


def _evaluator_metrics(evaluator) -> List[dict]:
    if isinstance(evaluator, dict):
        return [evaluator]
    return [m for m in evaluator or [] if isinstance(m, dict)]


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
        for metric in _evaluator_metrics(evaluator):
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
        for metric in _evaluator_metrics(
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


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` for processes without a GPU.

    The Runner passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for a
    CPU module: it is dropped. torch's SyncBatchNorm has no CPU kernel, so
    SyncBN layers become plain BN (per-process statistics), as mmengine
    does for non-distributed runs.
    """

    def __init__(self, module: nn.Module, device_ids=None, **kwargs):
        num_sync = sum(isinstance(m, nn.SyncBatchNorm) or
                       type(m).__name__ == 'SyncBatchNorm'
                       for m in module.modules())
        if num_sync:
            print_log(f'CPU distributed run: {num_sync} SyncBN layers become '
                      'BN (torch has no CPU SyncBN)', logger='current')
            module = revert_sync_batchnorm(module)
        super().__init__(module=module, device_ids=None, **kwargs)


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on CPU: bfloat16 autocast around the forward pass.

    No loss scaling: bfloat16 has float32's exponent range, and torch's CPU
    autocast supports no other low-precision type.
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Initialise gloo and pick the CPU DDP wrapper for a run without CUDA.

    Returns ``True`` when this process runs distributed on CPU. With CUDA,
    or ``launcher='none'``, nothing changes and mmengine does its own setup.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ConfigError(
            f'--launcher {launcher} needs CUDA (mmengine sets a CUDA device '
            'per process). On a machine without GPUs use torchrun: '
            './dist_detection.sh / ./dist_segmentation.sh, or --launcher '
            'pytorch.')
    missing = [v for v in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                           'MASTER_PORT') if v not in os.environ]
    if missing:
        raise ConfigError(
            f'--launcher pytorch expects torchrun\'s environment; '
            f'{", ".join(missing)} not set. Start it with torchrun (or '
            './dist_detection.sh / ./dist_segmentation.sh).')
    if not torch_dist.is_initialized():
        dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg') or {})
        dist_cfg.pop('backend', None)  # nccl in the bases: GPU only
        if isinstance(dist_cfg.get('timeout'), (int, float)):
            # Seconds, as mmengine's init_dist takes it. It bounds a wait on
            # a peer that hangs; a peer that dies is torchrun's to catch.
            dist_cfg['timeout'] = datetime.timedelta(
                seconds=dist_cfg['timeout'])
        torch_dist.init_process_group(backend='gloo', **dist_cfg)
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None or wrapper.get('type', 'MMDistributedDataParallel') \
            == 'MMDistributedDataParallel':
        wrapper = dict(wrapper or {}, type='CPUDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return True


def enable_amp(cfg: Config) -> None:
    """``--amp``: mmengine's AmpOptimWrapper (float16 + loss scaling) on a
    GPU, :class:`CPUAmpOptimWrapper` (bfloat16) without one."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        print_log('AMP is already enabled in the config.', logger='current')
        return
    if wrapper_type != 'OptimWrapper':
        raise ConfigError(
            f'--amp replaces optim_wrapper type "OptimWrapper", but the '
            f'config uses "{wrapper_type}"; set an AMP wrapper in the config '
            'instead.')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        model = cfg.get('model', {})
        if 'rpn_head' in model or 'roi_head' in model:
            # The RPN's proposals go through mmcv's nms during training.
            raise ConfigError(
                '--amp without a GPU means bfloat16 autocast, and mmcv 2.1.0 '
                'has no bfloat16 CPU kernels for nms and RoIAlign, which '
                'two-stage detectors (Mask R-CNN) run while training. Train '
                'this config on CPU without --amp (RetinaNet and Semantic '
                'FPN configs do support it).')
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'


def enable_auto_scale_lr(cfg: Config) -> None:
    """``--auto-scale-lr``: scale the lr by (real batch) / base_batch_size."""
    scale = cfg.get('auto_scale_lr')
    if not scale or 'base_batch_size' not in scale:
        raise ConfigError(
            '--auto-scale-lr needs auto_scale_lr=dict(enable=False, '
            'base_batch_size=N) in the config (N: the batch the lr was set '
            'for).')
    scale.enable = True


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """CLI, then the config's ``work_dir``, then ``work_dirs/<config name>``,
    as upstream."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(config_path))[0])


def load_config(path: str, cfg_options: Optional[Dict] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options`` and the launcher."""
    if not osp.isfile(path):
        raise ConfigError(f'Config file {path} does not exist.')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg``, or the registered ``runner_type``, as
    upstream. Freed CPU memory is kept for the next step first (see
    :mod:`convmlp_mm.allocator`)."""
    if keep_freed_cpu_memory():
        print_log(f'glibc malloc keeps freed memory for reuse (convmlp_mm.'
                  f'allocator; {ALLOCATOR_SWITCH}=0 turns this off)',
                  logger='current')
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def add_test_outputs(cfg: Config, out: Optional[str] = None,
                     show_dir: Optional[str] = None) -> None:
    """``tools/test.py``'s ``--out`` and ``--show-dir``, as mmdet and mmseg
    each define them for their task."""
    task = task_of(cfg)
    if out is not None:
        if task == 'detection':
            if not out.endswith(('.pkl', '.pickle')):
                raise ConfigError(
                    f'--out {out}: detection predictions are dumped to a '
                    '.pkl file; give a path ending in .pkl.')
            metrics = _evaluator_metrics(cfg.test_evaluator)
            cfg.test_evaluator = metrics + [
                dict(type='DumpDetResults', out_file_path=out)]
        else:
            for metric in _evaluator_metrics(cfg.test_evaluator):
                metric['output_dir'] = out
                metric['keep_results'] = True
    if show_dir is not None:
        hook = cfg.get('default_hooks', {}).get('visualization')
        if not hook:
            raise ConfigError(
                '--show-dir needs default_hooks.visualization (the mmdet/'
                'mmseg base configs have it).')
        hook['draw'] = True
        if task == 'detection':
            hook['test_out_dir'] = show_dir
        else:
            # mmseg's hook draws every 50th image by default: draw them all.
            hook['interval'] = 1
            cfg.visualizer['save_dir'] = show_dir


def prepare_train_config(args) -> Config:
    """The config ``tools/train.py`` runs, from its parsed arguments.

    Checks the task (``args.task``) and the data folder before anything is
    built; raises :class:`ConfigError` with what to do.
    """
    cfg = load_config(args.config, args.cfg_options, args.launcher)
    if getattr(args, 'task', None):
        check_task(cfg, args.task, args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    check_data_paths(cfg, 'train', args.data_root)
    check_annotation_files(cfg, 'train')
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    # As upstream: a path resumes from it, no path from the work dir's latest.
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def prepare_test_config(args) -> Config:
    """The config ``tools/test.py`` runs, from its parsed arguments."""
    cfg = load_config(args.config, args.cfg_options, args.launcher)
    if getattr(args, 'task', None):
        check_task(cfg, args.task, args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    check_data_paths(cfg, 'test', args.data_root)
    check_annotation_files(cfg, 'test')
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    add_test_outputs(cfg, out=args.out, show_dir=args.show_dir)
    return cfg
