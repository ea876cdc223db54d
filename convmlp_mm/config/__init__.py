"""Configs: walking one (:mod:`~convmlp_mm.config.walk`: task, loaders,
datasets inside wrappers, class names, a scope's registries, the whole
model), checking it before anything is built
(:mod:`~convmlp_mm.config.checks`, :mod:`~convmlp_mm.config.classes`),
applying each command-line flag to it (:mod:`~convmlp_mm.config.options`),
resuming (:mod:`~convmlp_mm.config.resume`) and preparing a training or
test run (:mod:`~convmlp_mm.config.prepare`)."""
from convmlp_mm.config.checks import (
    check_annotation_files,
    check_config,
    check_data_paths,
    check_dataset_contents,
)
from convmlp_mm.config.classes import (
    check_checkpoint_label_map,
    check_classes_agree,
    check_distinct,
    checkpoint_classes,
    head_classes,
    model_classes,
    read_classes,
    set_classes,
)
from convmlp_mm.config.options import (
    add_test_outputs,
    apply_class_options,
    enable_amp,
    enable_auto_scale_lr,
    enable_show,
    enable_tensorboard,
    enable_tta,
    set_backbone_checkpoint,
    set_data_root,
    set_work_dir,
)
from convmlp_mm.config.prepare import (
    check_task,
    load_config,
    prepare_test_config,
    prepare_train_config,
    use_checked_loading,
)
from convmlp_mm.config.resume import apply_resume, completed_run
from convmlp_mm.config.walk import (
    build_model,
    config_classes,
    dataset_classes,
    draw_iou_threshold,
    evaluator_metrics,
    leaf_datasets,
    loader_datasets,
    loaders_for,
    scope_registry,
    task_of,
)
from convmlp_mm.errors import ConfigError

__all__ = [
    'ConfigError', 'add_test_outputs',
    'apply_class_options', 'apply_resume', 'build_model',
    'check_annotation_files', 'check_checkpoint_label_map',
    'check_classes_agree', 'check_config', 'check_distinct',
    'check_data_paths', 'check_dataset_contents', 'check_task',
    'completed_run',
    'checkpoint_classes',
    'config_classes', 'dataset_classes', 'draw_iou_threshold', 'enable_amp',
    'enable_auto_scale_lr',
    'enable_show', 'enable_tensorboard', 'enable_tta', 'evaluator_metrics',
    'head_classes', 'leaf_datasets', 'load_config', 'loader_datasets',
    'loaders_for', 'model_classes', 'prepare_test_config',
    'prepare_train_config',
    'read_classes', 'scope_registry', 'set_backbone_checkpoint',
    'set_classes', 'set_data_root', 'set_work_dir', 'task_of',
    'use_checked_loading'
]
