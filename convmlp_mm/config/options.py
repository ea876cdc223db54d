"""Every command-line flag's change to a config, before anything is
built: ``--data-root``, ``--work-dir``, ``--amp``, ``--auto-scale-lr``,
``--classes``, ``--backbone-checkpoint``, ``--tensorboard``, ``--out``,
``--show-dir``, ``--show``, ``--tta``. The flags themselves are defined in
:mod:`convmlp_mm_cli` (parsed before torch loads)."""
import copy
import logging
import os
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from convmlp_mm.config.classes import read_classes, set_classes
from convmlp_mm.config.walk import (
    EVALUATORS,
    LOADERS,
    draw_iou_threshold,
    evaluator_metrics,
    leaf_datasets,
    task_of,
)
from convmlp_mm.datasets.checks import CocoFiles, join_root
from convmlp_mm.errors import ConfigError

__all__ = [
    'add_test_outputs', 'apply_class_options', 'enable_amp',
    'enable_auto_scale_lr', 'enable_show', 'enable_tensorboard',
    'enable_tta', 'set_backbone_checkpoint', 'set_data_root', 'set_work_dir'
]

# mmdet 3.3 configs/retinanet/retinanet_tta.py (and its tools/test.py's
# default): boxes of the flipped and plain image merged by NMS.
DET_TTA_MODEL = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
DET_TTA_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction')


def apply_class_options(cfg: Config, args, mode: str,
                        coco: Optional[CocoFiles] = None) -> None:
    """``--classes`` and ``--classes-subset-ok``: before the annotation
    checks, which then see the classes the run trains. The class checks
    (:func:`~convmlp_mm.config.classes.check_classes_agree`) run
    afterwards, with or without the flags. ``coco``: the run's parsed
    COCO files."""
    if getattr(args, 'classes_subset_ok', False):
        cfg.classes_subset_ok = True
    option = getattr(args, 'classes', None)
    if option:
        if option == 'auto':
            classes = read_classes(cfg, mode, coco)
        else:
            classes = tuple(c.strip() for c in option.split(',') if c.strip())
        set_classes(cfg, classes, f'--classes {option}')


def set_backbone_checkpoint(cfg: Config, path: str) -> None:
    """``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=path)``,
    also where the config sets ``init_cfg=None`` (which ``--cfg-options
    model.backbone.init_cfg.checkpoint=...`` cannot merge into)."""
    if '://' not in path and not osp.isfile(path):
        raise ConfigError(
            f'--backbone-checkpoint {path} is not a file; download it first '
            '(docs/model_zoo.md#official-checkpoints).')
    cfg.model.backbone.init_cfg = ConfigDict(type='Pretrained',
                                             checkpoint=path)
    # mmseg's segmentor-level pretrained would be pushed into the backbone
    # as well.
    if cfg.model.get('pretrained') is not None:
        cfg.model.pretrained = None


def enable_tensorboard(cfg: Config) -> None:
    """Add mmengine's TensorboardVisBackend to the visualizer."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(
            '--tensorboard needs the tensorboard package: run make install '
            '(or pip install -e ".[tensorboard]").') from None
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    cfg.visualizer.vis_backends = backends


def enable_show(cfg: Config, wait_time: float) -> None:
    """``--show``: the visualization hook draws and shows each image.
    Refused where no window can open (Linux without ``DISPLAY`` or
    ``WAYLAND_DISPLAY``): there mmengine's matplotlib falls back to Agg and
    shows nothing, and the run would end 0 having shown and saved
    nothing."""
    if sys.platform.startswith('linux') and not (
            os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        raise ConfigError(
            '--show needs a display to open windows on, and this machine has '
            'none (DISPLAY and WAYLAND_DISPLAY are not set): save the '
            'pictures with --show-dir DIR instead.')
    hook = cfg.get('default_hooks', {}).get('visualization')
    if not hook:
        raise ConfigError('--show needs default_hooks.visualization (the '
                          'mmdet/mmseg base configs have it).')
    hook['draw'] = True
    hook['show'] = True
    hook['wait_time'] = wait_time
    if task_of(cfg) == 'segmentation':
        hook['interval'] = 1
    else:
        draw_without_duplicates(cfg)


def draw_without_duplicates(cfg: Config) -> None:
    """Detection pictures as ``convmlp_mm.apis.inference`` draws them:
    mmdet's visualizer replaced by its subclass
    ``DuplicateFreeDetLocalVisualizer`` (:mod:`convmlp_mm.engine.
    visualization`), which leaves out a weaker box overlapping a better one
    by more than the config's NMS IoU and logs the threshold. A config
    naming another visualizer keeps it."""
    visualizer = cfg.get('visualizer')
    if not visualizer or visualizer.get('type') not in (
            'DetLocalVisualizer', 'mmdet.DetLocalVisualizer'):
        return
    visualizer['type'] = 'DuplicateFreeDetLocalVisualizer'
    visualizer['draw_iou_thr'] = draw_iou_threshold(cfg)


def enable_tta(cfg: Config) -> None:
    """``--tta`` as mmdet's and mmseg's tools/test.py do it: the config's
    ``tta_model``/``tta_pipeline`` (mmseg's ADE20K base has both), else for
    detection mmdet's default (flip, NMS-merged)."""
    model = cfg.model
    if task_of(cfg) == 'detection':
        if 'roi_head' in model and model.roi_head.get('mask_head'):
            raise ConfigError(
                '--tta: mmdet 3.3\'s DetTTAModel does not merge masks '
                '("TTA of instance segmentation does not support now"); test '
                'this Mask R-CNN config without --tta.')
        if 'tta_model' not in cfg:
            cfg.tta_model = copy.deepcopy(DET_TTA_MODEL)
        if 'tta_pipeline' not in cfg:
            dataset = next(leaf_datasets(cfg.test_dataloader.dataset))
            pipeline = copy.deepcopy(dataset.pipeline)
            pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[dict(type='RandomFlip', prob=1.),
                             dict(type='RandomFlip', prob=0.)],
                            [dict(type='PackDetInputs',
                                  meta_keys=DET_TTA_META_KEYS)]])
            cfg.tta_pipeline = pipeline
    elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ConfigError(
            '--tta needs tta_model and tta_pipeline in the config (mmseg\'s '
            'ADE20K base configs have them).')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=model)


def set_data_root(cfg: Config, data_root: str) -> None:
    """``--data-root``: point every dataloader and its evaluator's
    ``ann_file`` at ``data_root``, keeping the config's layout inside it."""
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
                metric['ann_file'] = join_root(data_root, ann_files[0])
            else:
                print_log(
                    f'--data-root: {EVALUATORS[loader_name]} '
                    f'{metric.get("type")} keeps ann_file '
                    f'{metric["ann_file"]}: {loader_name} reads '
                    f'{len(ann_files)} annotation files, so which one it '
                    'scores against is not clear; set it with --cfg-options.',
                    logger='current', level=logging.WARNING)


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """``--work-dir``, then the config's ``work_dir``, then
    ``work_dirs/<config name>``, as upstream."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(config_path))[0])


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
            draw_without_duplicates(cfg)
        else:
            # mmseg's hook draws every 50th image by default: draw them all.
            hook['interval'] = 1
            cfg.visualizer['save_dir'] = show_dir
