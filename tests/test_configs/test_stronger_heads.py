"""Cascade Mask R-CNN (3x multi-scale) and UperNet (160k) with ConvMLP-S/M/L:
they build, land on the parameter counts of docs/model_zoo.md, carry the
stated schedules, and the S configs train a few iterations on built-in
data."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from tool_artifacts import demo_upernet, read  # noqa: F401

import convmlp_mm  # noqa: F401
from convmlp_mm.datasets import make_coco_dataset

from helpers import REPO
from tools_run import CLASSES, COCO_SIZE, explain, python_tool, run

URL = ('https://shi-labs.com/projects/convmlp/checkpoints/'
       'convmlp_{}_imagenet.pth')
WIDTHS = {'s': [64, 128, 256, 512], 'm': [64, 128, 256, 512],
          'l': [96, 192, 384, 768]}
# Whole-model parameters (millions, auxiliary head included), mmdet 3.3 /
# mmseg 1.2, measured once: docs/model_zoo.md, "Stronger heads".
PARAMS = {
    'detection/cascade_maskrcnn_convmlp_s_fpn_ms_3x_coco.py': 61.59,
    'detection/cascade_maskrcnn_convmlp_m_fpn_ms_3x_coco.py': 69.98,
    'detection/cascade_maskrcnn_convmlp_l_fpn_ms_3x_coco.py': 95.16,
    'segmentation/upernet_convmlp_s_512x512_160k_ade20k.py': 38.82,
    'segmentation/upernet_convmlp_m_512x512_160k_ade20k.py': 47.20,
    'segmentation/upernet_convmlp_l_512x512_160k_ade20k.py': 74.38,
}
CASCADE = [c for c in PARAMS if 'cascade' in c]
UPERNET = [c for c in PARAMS if 'upernet' in c]


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


def size_of(name: str) -> str:
    return osp.basename(name).split('_convmlp_')[1][0]


@pytest.mark.parametrize('name', list(PARAMS))
def test_config_builds_with_the_documented_parameter_count(name):
    cfg = load(name)
    backbone = cfg.model.backbone
    assert set(backbone) == {
        'type', 'arch', 'out_indices', 'drop_path_rate', 'frozen_stages',
        'norm_eval', 'norm_cfg', 'init_cfg'}
    assert (backbone.type, backbone.arch) == ('ConvMLP', size_of(name))
    assert backbone.out_indices == (0, 1, 2, 3)
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=URL.format(size_of(name)))
    widths = WIDTHS[size_of(name)]
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
        assert cfg.model.neck.in_channels == widths
    else:
        from mmseg.registry import MODELS
        assert cfg.model.decode_head.in_channels == widths
        # The auxiliary FCN head reads level 2 (stride 16).
        assert cfg.model.auxiliary_head.in_index == 2
        assert cfg.model.auxiliary_head.in_channels == widths[2]
    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            torch.device('meta'):  # structure only: no memory, no init
        model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 2) == PARAMS[name], params


@pytest.mark.parametrize('name', CASCADE)
def test_cascade_schedule_is_3x_multiscale_with_the_papers_adamw(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmdet'
    # Paper section 4.5 (docs/model_zoo.md): AdamW lr 1e-4, weight decay
    # 1e-4.
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4,
                                               weight_decay=1e-4)
    assert cfg.optim_wrapper.get('clip_grad') is None
    # mmdet's ms-3x: 12 epochs of the training set repeated 3 times, x0.1
    # at 9 and 11, shorter side 640-800.
    warmup, steps = cfg.param_scheduler
    assert warmup.end == 500 and warmup.start_factor == 0.001
    assert (steps.milestones, steps.end) == ([9, 11], 12)
    assert cfg.train_cfg.max_epochs == 12
    train_set = cfg.train_dataloader.dataset
    assert (train_set.type, train_set.times) == ('RepeatDataset', 3)
    resize = train_set.dataset.pipeline[2]
    assert resize.type == 'RandomResize'
    assert resize.scale == [(1333, 640), (1333, 800)]
    assert cfg.train_dataloader.batch_size == 2
    assert len(cfg.model.roi_head.bbox_head) == 3
    assert cfg.test_evaluator.metric == ['bbox', 'segm']


@pytest.mark.parametrize('name', UPERNET)
def test_upernet_schedule_is_160k_with_the_papers_adamw(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.pretrained is None
    # Paper section 4.6 (docs/model_zoo.md): AdamW lr 2e-4, weight decay
    # 1e-4, poly 0.9 to 0; mmseg's upernet 160k iterations.
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4,
                                               weight_decay=1e-4)
    assert cfg.param_scheduler == [
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=160000,
             by_epoch=False)
    ]
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.auxiliary_head.num_classes == 150
    assert tuple(cfg.model.data_preprocessor.size) == (512, 512)


def cascade_options():
    """--cfg-options for one epoch at 128x96 on 3 synthetic classes."""
    classes = '[' + ','.join(f"'{c}'" for c in CLASSES) + ']'
    w, h = COCO_SIZE
    opts = [
        'model.backbone.init_cfg=None', 'train_cfg.max_epochs=1',
        # One pass over the images: the 3x repeat is the real schedule's.
        'train_dataloader.dataset.times=1',
        f'train_dataloader.dataset.dataset.pipeline.2.scale=[({w},{h - 16}),'
        f'({w},{h})]',
        f'train_dataloader.dataset.dataset.metainfo.classes={classes}',
        f'val_dataloader.dataset.pipeline.1.scale=({w},{h})',
        f'val_dataloader.dataset.metainfo.classes={classes}',
        f'test_dataloader.dataset.metainfo.classes={classes}',
        f'model.roi_head.mask_head.num_classes={len(CLASSES)}',
        'model.train_cfg.rpn_proposal.nms_pre=200',
        'model.train_cfg.rpn_proposal.max_per_img=100',
        'model.test_cfg.rpn.nms_pre=200', 'model.test_cfg.rpn.max_per_img=100',
        'model.test_cfg.rcnn.score_thr=0.0',
        'model.test_cfg.rcnn.max_per_img=20', 'default_hooks.logger.interval=1'
    ]
    for stage in range(3):
        opts += [
            f'model.roi_head.bbox_head.{stage}.num_classes={len(CLASSES)}',
            f'model.train_cfg.rcnn.{stage}.sampler.num=64']
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
    return opts


@pytest.mark.e2e
def test_cascade_s_trains_and_evaluates_on_built_in_data(tmp_path):
    root = make_coco_dataset(str(tmp_path / 'coco'), num_train=2, num_val=2,
                             image_size=COCO_SIZE, classes=CLASSES)
    work_dir = str(tmp_path / 'work')
    proc = run(python_tool(
        'train.py', 'configs/' + CASCADE[0], '--data-root', root,
        '--work-dir', work_dir, '--cfg-options', *cascade_options()),
        tmp_path)
    assert proc.returncode == 0, explain(proc)
    # 2 images, 2 per batch: 1 iteration, then COCO evaluation of boxes and
    # masks; all three stages have a loss.
    assert 'Epoch(train) [1][1/1]' in proc.stdout, explain(proc)
    for loss in ('s0.loss_cls', 's2.loss_bbox', 's2.loss_mask'):
        assert loss in proc.stdout
    assert 'coco/bbox_mAP:' in proc.stdout
    assert 'coco/segm_mAP:' in proc.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.e2e
@pytest.mark.xdist_group('demo_upernet')
def test_upernet_s_trains_and_evaluates_on_built_in_data(
        demo_upernet):  # noqa: F811
    """UperNet-ConvMLP-S trains 2 iterations and is evaluated: the demo's
    smoke run of it (tests/tool_artifacts.py), whose model is this
    config's with 4 classes (test_demo_upernet_model_is_the_160k_configs)."""
    log = read(osp.join(demo_upernet['work_dir'], 'upernet',
                        'train_console.log'))
    assert 'Iter(train) [2/2]' in log, log[-3000:]
    # Both heads train: UperNet's and the auxiliary FCN's losses.
    assert 'decode.loss_ce' in log and 'aux.loss_ce' in log
    assert 'mIoU' in log
    assert osp.isfile(osp.join(demo_upernet['work_dir'], 'upernet',
                               'iter_2.pth'))


def test_demo_upernet_model_is_the_160k_configs():
    """The demo's UperNet (trained by the test above) is
    upernet_convmlp_s_512x512_160k_ade20k.py's model but for the class
    count, the input size and the ImageNet checkpoint."""
    demo = load('demo/upernet_convmlp_s_demo_shapes.py').model.to_dict()
    paper = load(UPERNET[0]).model.to_dict()
    for model in (demo, paper):
        model['decode_head'].pop('num_classes')
        model['auxiliary_head'].pop('num_classes')
        model['data_preprocessor'].pop('size')
        model['backbone'].pop('init_cfg')
    paper.pop('_scope_')  # set by the registry's scope, not a module
    assert demo == paper


def test_model_index_lists_them_without_results():
    from modelindex.load_model_index import load as load_index
    index = load_index(osp.join(REPO, 'model-index.yml'))
    index.build_models_with_collections()
    models = {m.name: m for m in index.models}
    for config, params in PARAMS.items():
        name = osp.splitext(osp.basename(config))[0]
        model = models[name]
        assert model.config == 'configs/' + config
        assert model.in_collection in ('Cascade Mask R-CNN ConvMLP',
                                       'UperNet ConvMLP')
        # No accuracy was measured: no results, no weights.
        assert not model.results and not model.weights
        assert model.metadata.data['Parameters (M)'] == round(params, 1)
