"""Config handling shared by ``tools/train.py``, ``tools/test.py`` and the
inference API: one config decides the task (mmdet or mmseg), and these
helpers turn command-line flags into config changes before mmengine's
:class:`~mmengine.runner.Runner` is built. The data checks live in
:mod:`convmlp_mm.config.data_checks`, the whole preparation of a run in
:mod:`convmlp_mm.config.prepare`.
"""
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from convmlp_mm.errors import ConfigError  # noqa: F401

# default_scope -> task, as the launchers name them.
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}


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


def evaluator_metrics(evaluator) -> List[dict]:
    """The metric dicts of an evaluator config (one dict or a list)."""
    if isinstance(evaluator, dict):
        return [evaluator]
    return [m for m in evaluator or [] if isinstance(m, dict)]


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
            metrics = evaluator_metrics(cfg.test_evaluator)
            cfg.test_evaluator = metrics + [
                dict(type='DumpDetResults', out_file_path=out)]
        else:
            for metric in evaluator_metrics(cfg.test_evaluator):
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
