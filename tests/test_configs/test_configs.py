"""The nine paper configs: they parse, build, land on the parameter counts
of docs/model_zoo.md and carry the paper's schedules; the model index lists
them."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import convmlp_mm  # noqa: F401

from helpers import REPO

URL = ('https://shi-labs.com/projects/convmlp/checkpoints/'
       'convmlp_{}_imagenet.pth')
WIDTHS = {'s': [64, 128, 256, 512], 'm': [64, 128, 256, 512],
          'l': [96, 192, 384, 768]}
# Whole-model parameters (millions) with mmdet 3.3 / mmseg 1.2
# (docs/model_zoo.md).
PARAMS = {
    'detection/retinanet_convmlp_s_fpn_1x_coco.py': 18.74,
    'detection/retinanet_convmlp_m_fpn_1x_coco.py': 27.13,
    'detection/retinanet_convmlp_l_fpn_1x_coco.py': 52.90,
    'detection/maskrcnn_convmlp_s_fpn_1x_coco.py': 28.66,
    'detection/maskrcnn_convmlp_m_fpn_1x_coco.py': 37.05,
    'detection/maskrcnn_convmlp_l_fpn_1x_coco.py': 62.23,
    'segmentation/fpn_convmlp_s_512x512_40k_ade20k.py': 12.76,
    'segmentation/fpn_convmlp_m_512x512_40k_ade20k.py': 21.15,
    'segmentation/fpn_convmlp_l_512x512_40k_ade20k.py': 46.33,
}
DETECTION = [c for c in PARAMS if c.startswith('detection/')]
SEGMENTATION = [c for c in PARAMS if c.startswith('segmentation/')]


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


def size_of(name: str) -> str:
    return osp.basename(name).split('_')[2]


def models_registry(cfg: Config):
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


@pytest.mark.parametrize('name', list(PARAMS))
def test_config_builds_with_facts_parameter_count(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['convmlp_mm'],
                                      allow_failed_imports=False)
    backbone = cfg.model.backbone
    # _delete_ kept none of the base's ResNet arguments.
    assert set(backbone) == {
        'type', 'arch', 'out_indices', 'drop_path_rate', 'frozen_stages',
        'norm_eval', 'norm_cfg', 'init_cfg'}
    assert backbone.type == 'ConvMLP'
    assert backbone.arch == size_of(name)
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=URL.format(size_of(name)))
    widths = WIDTHS[size_of(name)]
    assert cfg.model.neck.in_channels == [
        widths[i] for i in backbone.out_indices]

    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            torch.device('meta'):  # structure only: no memory, no init
        model = models_registry(cfg).build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 2) == PARAMS[name], params
    assert len(model.backbone.out_indices) == len(cfg.model.neck.in_channels)


@pytest.mark.parametrize('name', DETECTION)
def test_detection_schedule(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    # No SGD momentum leaking into AdamW, no clipping.
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4,
                                               weight_decay=1e-4)
    assert cfg.optim_wrapper.get('clip_grad') is None
    warmup, steps = cfg.param_scheduler
    assert warmup == dict(type='LinearLR', start_factor=0.001,
                          by_epoch=False, begin=0, end=500)
    assert steps == dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
                         milestones=[8, 11], gamma=0.1)
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    neck = cfg.model.neck
    assert neck.num_outs == 5
    assert cfg.model.backbone.out_indices == (0, 1, 2, 3)
    if 'retinanet' in name:
        # The release's RetinaNet FPN starts at level 1 (docs/model_zoo.md).
        assert neck.start_level == 1 and neck.add_extra_convs == 'on_input'
    else:
        assert neck.get('start_level', 0) == 0


@pytest.mark.parametrize('name', SEGMENTATION)
def test_segmentation_schedule(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.pretrained is None
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.neck.num_outs == 4
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4,
                                               weight_decay=1e-4)
    assert cfg.optim_wrapper.get('clip_grad') is None
    assert cfg.param_scheduler == [
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000,
             by_epoch=False)
    ]
    assert cfg.train_cfg.type == 'ResumableIterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    crops = [t.crop_size for t in cfg.train_dataloader.dataset.pipeline
             if t.type == 'RandomCrop']
    assert crops == [(512, 512)]
    assert any(t.type == 'RandomResize'
               for t in cfg.train_dataloader.dataset.pipeline)
    assert tuple(cfg.model.data_preprocessor.size) == (512, 512)


def test_retinanet_neck_is_the_releases_start_level_1_fpn():
    """The neck has exactly the release's FPN keys and shapes, and every
    backbone parameter gets a gradient although level 0 is not read."""
    from mmdet.models.necks import FPN
    cfg = load('detection/retinanet_convmlp_s_fpn_1x_coco.py')
    ours = FPN(**{k: v for k, v in cfg.model.neck.items() if k != 'type'})
    release = FPN(in_channels=[64, 128, 256, 512], out_channels=256,
                  start_level=1, add_extra_convs='on_input', num_outs=5)
    release.load_state_dict(ours.state_dict(), strict=True)
    backbone_cfg = {k: v for k, v in cfg.model.backbone.items()
                    if k not in ('type', 'init_cfg')}
    from convmlp_mm import ConvMLP
    backbone = ConvMLP(**backbone_cfg)
    outs = ours(backbone(torch.rand(1, 3, 64, 64)))
    sum(o.sum() for o in outs).backward()
    assert [n for n, p in backbone.named_parameters() if p.grad is None] == []


def test_model_index_lists_the_nine_configs_with_paper_results():
    from modelindex.load_model_index import load as load_index
    index = load_index(osp.join(REPO, 'model-index.yml'))
    index.build_models_with_collections()
    # The stronger heads, beyond the paper, have no checkpoint or result:
    # test_stronger_heads.py checks their entries.
    models = {m.name: m for m in index.models
              if not m.name.startswith(('cascade_', 'upernet_'))}
    assert sorted(models) == sorted(
        osp.splitext(osp.basename(c))[0] for c in PARAMS)
    for name, model in models.items():
        assert osp.isfile(osp.join(REPO, model.config)), model.config
        assert model.weights.endswith('.pth')
        assert model.in_collection
    metrics = {name: {m: v for r in model.results for m, v in
                      r.metrics.items()} for name, model in models.items()}
    # Paper Tables 5-7.
    assert metrics['retinanet_convmlp_m_fpn_1x_coco']['box AP'] == 39.4
    assert metrics['maskrcnn_convmlp_l_fpn_1x_coco']['mask AP'] == 38.2
    assert metrics['maskrcnn_convmlp_s_fpn_1x_coco']['box AP'] == 38.4
    assert metrics['fpn_convmlp_s_512x512_40k_ade20k']['mIoU'] == 35.8
    assert [metrics[f'retinanet_convmlp_{s}_fpn_1x_coco']['box AP']
            for s in 'sml'] == [37.2, 39.4, 40.2]
    assert [metrics[f'fpn_convmlp_{s}_512x512_40k_ade20k']['mIoU']
            for s in 'sml'] == [35.8, 38.6, 40.0]
