"""The whole preparation of a run from ``tools/train.py``'s and
``tools/test.py``'s parsed arguments: config, flags, task, data checks and
work dir, all before anything is built."""
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from convmlp_mm.config import options
from convmlp_mm.config.checks import (
    check_annotation_files,
    check_config,
    check_data_paths,
    check_dataset_contents,
)
from convmlp_mm.config.classes import check_classes_agree
from convmlp_mm.config.resume import apply_resume
from convmlp_mm.config.walk import loader_datasets, task_of
from convmlp_mm.datasets.checks import CocoFiles
from convmlp_mm.datasets.transforms import CheckedLoadImageFromFile
from convmlp_mm.errors import ConfigError

__all__ = ['check_task', 'load_config', 'prepare_test_config',
           'prepare_train_config', 'use_checked_loading']

# The loading transforms use_checked_loading replaces.
REPLACED = ('LoadImageFromFile', 'mmcv.LoadImageFromFile')


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


def use_checked_loading(cfg: Config) -> int:
    """Replace ``LoadImageFromFile`` with
    :class:`~convmlp_mm.datasets.transforms.CheckedLoadImageFromFile` in
    every dataset pipeline of ``cfg``; returns how many were replaced."""
    count = 0
    for _, dataset in loader_datasets(cfg):
        for step in dataset.get('pipeline') or []:
            if isinstance(step, dict) and step.get('type') in REPLACED:
                step['type'] = CheckedLoadImageFromFile.__name__
                count += 1
    return count


def _load_and_check(args, mode: str) -> Config:
    """What a ``'train'`` and a ``'test'`` run share: the config with
    ``--cfg-options``, the task, config keys, data folder, classes and data
    contents, all checked before anything is built. Each COCO file is
    parsed once for all these checks."""
    cfg = load_config(args.config, args.cfg_options, args.launcher)
    if getattr(args, 'task', None):
        check_task(cfg, args.task, args.config)
    check_config(cfg)
    if args.data_root:
        options.set_data_root(cfg, args.data_root)
    check_data_paths(cfg, mode, args.data_root)
    coco = CocoFiles()
    options.apply_class_options(cfg, args, mode, coco)
    check_annotation_files(cfg, mode, coco)
    check_dataset_contents(cfg, mode, coco)
    use_checked_loading(cfg)
    check_classes_agree(cfg, mode, coco)
    return cfg


def prepare_train_config(args) -> Config:
    """The config ``tools/train.py`` runs, from its parsed arguments.

    Checks the task (``args.task``) and the data folder before anything is
    built; raises :class:`ConfigError` with what to do.
    """
    cfg = _load_and_check(args, 'train')
    if getattr(args, 'backbone_checkpoint', None):
        options.set_backbone_checkpoint(cfg, args.backbone_checkpoint)
    if getattr(args, 'tensorboard', False):
        options.enable_tensorboard(cfg)
    options.set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        options.enable_amp(cfg)
    if args.auto_scale_lr:
        options.enable_auto_scale_lr(cfg)
    # --resume [PATH], --no-resume, or the work dir's last_checkpoint.
    apply_resume(cfg, args.resume, getattr(args, 'no_resume', False))
    return cfg


def prepare_test_config(args) -> Config:
    """The config ``tools/test.py`` runs, from its parsed arguments."""
    cfg = _load_and_check(args, 'test')
    options.set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    options.add_test_outputs(cfg, out=args.out, show_dir=args.show_dir)
    if getattr(args, 'show', False):
        options.enable_show(cfg, args.wait_time)
    if getattr(args, 'tta', False):
        options.enable_tta(cfg)
    return cfg
