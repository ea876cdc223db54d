"""The tools' flags for own data, offline weights, logging, test-time
augmentation and showing results: argparse definitions and the config
changes they make, before anything is built."""
import argparse
import copy
import os.path as osp

from mmengine.config import Config, ConfigDict

from convmlp_mm.config.classes import read_classes, set_classes
from convmlp_mm.config.core import ConfigError, task_of

__all__ = [
    'add_class_arguments', 'add_test_view_arguments',
    'add_train_weight_arguments', 'apply_class_options',
    'enable_show', 'enable_tensorboard', 'enable_tta',
    'set_backbone_checkpoint'
]

# mmdet 3.3 configs/retinanet/retinanet_tta.py (and its tools/test.py's
# default): boxes of the flipped and plain image merged by NMS.
DET_TTA_MODEL = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
DET_TTA_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction')


def add_class_arguments(parser: argparse.ArgumentParser) -> None:
    """``--classes`` and ``--classes-subset-ok`` (train.py and test.py)."""
    parser.add_argument(
        '--classes',
        help='"auto": read the class names from the data (the COCO '
        'annotation file\'s categories; for segmentation DATA_ROOT/'
        'classes.txt) and set them in every dataset and head; or the names '
        'themselves, comma-separated (docs/own_data.md)')
    parser.add_argument(
        '--classes-subset-ok',
        action='store_true',
        help='the annotation file holds only some of the config\'s classes '
        'on purpose: do not stop (same as --cfg-options '
        'classes_subset_ok=True)')


def add_train_weight_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backbone-checkpoint`` and ``--tensorboard`` (train.py)."""
    parser.add_argument(
        '--backbone-checkpoint',
        metavar='PATH',
        help='initialise the backbone from this ImageNet checkpoint (local '
        'file or URL), in any config, demo configs included')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (WORK_DIR/TIMESTAMP/vis_data); needs '
        'the tensorboard extra (make install installs it)')


def add_test_view_arguments(parser: argparse.ArgumentParser) -> None:
    """``--show``, ``--wait-time`` and ``--tta`` (test.py), as upstream."""
    parser.add_argument(
        '--show', action='store_true',
        help='show each prediction in a window (needs a display)')
    parser.add_argument(
        '--wait-time', type=float, default=2,
        help='seconds each --show window stays (default 2)')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation: the config\'s tta_model and '
        'tta_pipeline, or upstream\'s (flip, merged by NMS, for RetinaNet)')


def apply_class_options(cfg: Config, args, mode: str) -> None:
    """``--classes`` and ``--classes-subset-ok``: before the annotation
    checks, which then see the classes the run trains. The class checks
    (:func:`check_classes`) run afterwards, with or without the flags."""
    if getattr(args, 'classes_subset_ok', False):
        cfg.classes_subset_ok = True
    option = getattr(args, 'classes', None)
    if option:
        if option == 'auto':
            classes = read_classes(cfg, mode)
        else:
            classes = tuple(c.strip() for c in option.split(',') if c.strip())
        set_classes(cfg, classes)


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
    """``--show``: the visualization hook draws and shows each image."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if not hook:
        raise ConfigError('--show needs default_hooks.visualization (the '
                          'mmdet/mmseg base configs have it).')
    hook['draw'] = True
    hook['show'] = True
    hook['wait_time'] = wait_time
    if task_of(cfg) == 'segmentation':
        hook['interval'] = 1


def _innermost_dataset(dataset: dict) -> dict:
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


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
            pipeline = copy.deepcopy(
                _innermost_dataset(cfg.test_dataloader.dataset).pipeline)
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
