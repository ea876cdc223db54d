"""The whole preparation of a run from ``tools/train.py``'s and
``tools/test.py``'s parsed arguments: config, flags, task, data checks and
work dir, all before anything is built."""
from mmengine.config import Config

from convmlp_mm.datasets.transforms import use_checked_loading
from convmlp_mm.config.resume import apply_resume
from convmlp_mm.config.classes import check_classes
from convmlp_mm.config.core import (
    add_test_outputs,
    check_task,
    enable_amp,
    enable_auto_scale_lr,
    load_config,
    set_work_dir,
)
from convmlp_mm.config.checks import check_config
from convmlp_mm.config.data_checks import (
    check_annotation_files,
    check_data_paths,
    set_data_root,
)
from convmlp_mm.datasets.dataset_checks import check_dataset_contents
from convmlp_mm.config.options import (
    apply_class_options,
    enable_show,
    enable_tensorboard,
    enable_tta,
    set_backbone_checkpoint,
)


def _load_and_check(args, mode: str) -> Config:
    """What a ``'train'`` and a ``'test'`` run share: the config with
    ``--cfg-options``, the task, config keys, data folder, classes and data
    contents, all checked before anything is built."""
    cfg = load_config(args.config, args.cfg_options, args.launcher)
    if getattr(args, 'task', None):
        check_task(cfg, args.task, args.config)
    check_config(cfg)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    check_data_paths(cfg, mode, args.data_root)
    apply_class_options(cfg, args, mode)
    check_annotation_files(cfg, mode)
    check_dataset_contents(cfg, mode)
    use_checked_loading(cfg)
    check_classes(cfg, mode)
    return cfg


def prepare_train_config(args) -> Config:
    """The config ``tools/train.py`` runs, from its parsed arguments.

    Checks the task (``args.task``) and the data folder before anything is
    built; raises :class:`ConfigError` with what to do.
    """
    cfg = _load_and_check(args, 'train')
    if getattr(args, 'backbone_checkpoint', None):
        set_backbone_checkpoint(cfg, args.backbone_checkpoint)
    if getattr(args, 'tensorboard', False):
        enable_tensorboard(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    # --resume [PATH], --no-resume, or the work dir's last_checkpoint.
    apply_resume(cfg, args.resume, getattr(args, 'no_resume', False))
    return cfg


def prepare_test_config(args) -> Config:
    """The config ``tools/test.py`` runs, from its parsed arguments."""
    cfg = _load_and_check(args, 'test')
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    add_test_outputs(cfg, out=args.out, show_dir=args.show_dir)
    if getattr(args, 'show', False):
        enable_show(cfg, args.wait_time)
    if getattr(args, 'tta', False):
        enable_tta(cfg)
    return cfg
