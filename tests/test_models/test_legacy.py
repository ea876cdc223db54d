"""The release's mmdet 2 / mmseg 0.x checkpoints in mmdet 3 / mmseg 1 models
(convmlp_mm/models/legacy.py)."""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from release_checkpoints import release_backbone_keys, release_key

from convmlp_mm.config.walk import config_classes
from convmlp_mm.errors import LegacyCheckpointError
from convmlp_mm.models import ConvMLP
from convmlp_mm.models.legacy import (
    check_checkpoint_classes,
    is_legacy_meta,
    legacy_dataset_meta,
    upgrade_state_dict,
)

from helpers import REPO

CONFIGS = {
    'retinanet': 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py',
    'maskrcnn': 'configs/detection/maskrcnn_convmlp_s_fpn_1x_coco.py',
    'semfpn': 'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
}
MMCV1_META = dict(mmcv_version='1.3.13', mmdet_version='2.16.0',
                  CLASSES=('circle', 'square', 'triangle'))


def build(name, device='cpu'):
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[name]))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    with torch.device(device):
        return MODELS.build(cfg.model), cfg


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_release_backbone_keys_are_the_imagenet_names(arch):
    # convmlp_mm/models/legacy.py's docstring (the release's
    # src/detection/__init__.py): its DetConvMLP subclasses the ImageNet
    # ConvMLP with classifier_head=False, so its keys are the ImageNet
    # file's (tests/data layout) without norm/head; ours must be those,
    # shapes too.
    ours = {f'backbone.{k}': tuple(v.shape)
            for k, v in ConvMLP(arch=arch).state_dict().items()}
    assert ours == release_backbone_keys(arch)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_every_key_of_the_nine_models_is_a_release_name(name):
    model, _ = build(name, 'meta')  # the names only
    keys = list(model.state_dict())
    # release_key asserts that a 2.x module (mmdet 2.28.2 / mmseg 0.30.0
    # source) makes the name.
    assert [release_key(k, 's') for k in keys] == keys
    assert not any(k.startswith('data_preprocessor') for k in keys)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_release_state_dict_loads_strictly_after_upgrade(name):
    model, _ = build(name)
    gen = torch.Generator().manual_seed(1)
    release = OrderedDict(
        (release_key(k, 's'), torch.randn(v.shape, generator=gen)
         if v.is_floating_point() else v.clone())
        for k, v in model.state_dict().items())
    upgraded = upgrade_state_dict(release, MMCV1_META, model)
    fresh, _ = build(name)
    fresh.load_state_dict(upgraded, strict=True)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, release[key]), key


def test_upgrade_is_the_identity_for_mmengine_checkpoints():
    model = torch.nn.Conv2d(1, 1, 1)
    state = model.state_dict()
    meta = dict(mmengine_version='0.10.7', dataset_meta=dict(classes=('a', )))
    out = upgrade_state_dict(state, meta, model)
    assert list(out) == list(state)
    assert all(out[k] is state[k] for k in state)


def test_upgrade_strips_the_ddp_prefix():
    model = torch.nn.Conv2d(1, 1, 1)
    state = OrderedDict((f'module.{k}', v)
                        for k, v in model.state_dict().items())
    assert list(upgrade_state_dict(state, MMCV1_META, model)) == [
        'weight', 'bias']


def test_upgrade_refuses_classes_other_than_the_models():
    model = torch.nn.Conv2d(1, 1, 1)
    model.dataset_meta = dict(classes=('cat', 'dog', 'bird'))
    with pytest.raises(LegacyCheckpointError,
                       match=r"3 classes \('circle'.*names 3 \('cat'"):
        upgrade_state_dict(model.state_dict(), MMCV1_META, model)


@pytest.mark.parametrize('meta, legacy', [
    (dict(mmcv_version='1.7.1'), True),
    (dict(mmseg_version='0.30.0'), True),
    (dict(mmdet_version='2.28.2'), True),
    (dict(CLASSES=('a', )), True),
    (dict(mmengine_version='0.10.7', dataset_meta={}), False),
    (dict(mmdet_version='3.3.0'), False),
    (None, False),
])
def test_is_legacy_meta(meta, legacy):
    assert is_legacy_meta(meta) is legacy


def test_legacy_dataset_meta_reads_classes_and_palette():
    meta = dict(CLASSES=['wall', 'sky'], PALETTE=[[1, 2, 3], [4, 5, 6]])
    assert legacy_dataset_meta(meta) == dict(
        classes=('wall', 'sky'), palette=[(1, 2, 3), (4, 5, 6)])


def test_check_classes_names_both_lists_and_the_difference():
    with pytest.raises(LegacyCheckpointError) as info:
        check_checkpoint_classes(dict(CLASSES=('person', 'bicycle')),
                                 ('person', 'car'), 'checkpoint x.pth',
                                 'config y.py')
    message = str(info.value)
    assert 'checkpoint x.pth' in message and 'config y.py' in message
    assert "1: 'bicycle' vs 'car'" in message
    assert '\n' not in message
    check_checkpoint_classes(dict(CLASSES=('a', 'b')), ['a', 'b'])  # lists
    check_checkpoint_classes(dict(mmcv_version='1.3'), ('a', ))  # none


def test_config_classes_are_the_datasets():
    # The release trained on COCO's 80 classes (mmdet 2 CocoDataset.CLASSES,
    # 'person' first, 'toothbrush' last) and ADE20K's 150 (mmseg 0.x
    # ADE20KDataset.CLASSES, 'wall' first, 'flag' last).
    _, det = build('maskrcnn', 'meta')
    coco = config_classes(det)
    assert (len(coco), coco[0], coco[-1]) == (80, 'person', 'toothbrush')
    _, seg = build('semfpn', 'meta')
    ade = config_classes(seg)
    assert (len(ade), ade[0], ade[-1]) == (150, 'wall', 'flag')
    det.test_dataloader.dataset.metainfo = dict(classes=('a', 'b'))
    assert config_classes(det) == ('a', 'b')
