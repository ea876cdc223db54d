"""Whole-model checkpoints load strictly (convmlp_mm/models/loading.py):
a file that does not fit stops with counts, examples and a guess of what it
is; another number of classes is an explicit opt-in; non-finite weights are
refused. Real RetinaNet / Semantic FPN ConvMLP-S models from the configs."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from convmlp_mm.errors import (
    CheckpointMismatchError,
    NonFiniteCheckpointError,
)
from convmlp_mm.models.loading import load_model_checkpoint

from helpers import REPO, make_official_state_dict

RETINANET = 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'
SEMFPN = 'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'


def build(config, **head):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    if head:
        cfg.model.bbox_head.update(head)
    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def retinanet():
    torch.manual_seed(0)
    return build(RETINANET)


def save(tmp_path, state, name='ckpt.pth'):
    path = str(tmp_path / name)
    torch.save({'meta': {}, 'state_dict': state}, path)
    return path


def mismatch(model, path):
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_checkpoint(model, path)
    message = str(info.value)
    assert path in message and 'does not fit this model' in message
    return message


def test_fitting_checkpoint_loads_every_tensor(retinanet, tmp_path):
    torch.manual_seed(1)
    other = build(RETINANET)
    load_model_checkpoint(retinanet, save(tmp_path, other.state_dict()))
    for key, value in other.state_dict().items():
        assert torch.equal(retinanet.state_dict()[key], value), key


def test_other_convmlp_size(retinanet, tmp_path):
    state = {k: v for k, v in retinanet.state_dict().items()
             if not k.startswith('backbone.')}
    # ConvMLP-M's backbone under the detector's prefix (paper Table 1).
    state.update(('backbone.' + k, v) for k, v in
                 make_official_state_dict('m').items()
                 if not k.startswith(('norm.', 'head.')))
    message = mismatch(retinanet, save(tmp_path, state))
    assert 'ConvMLP-M' in message and 'ConvMLP-S' in message
    # M has more blocks (3, 6, 3 vs 2, 4, 2) and wider MLPs (ratio 3 vs 2).
    assert 'have no place' in message and 'another shape' in message


def test_checkpoint_of_the_other_task(retinanet, tmp_path):
    init_default_scope('mmseg')
    segmentor = build(SEMFPN)
    message = mismatch(retinanet, save(tmp_path, segmentor.state_dict()))
    assert 'segmentation checkpoint' in message
    assert 'detection model' in message


@pytest.mark.parametrize('classifier', [True, False])
def test_backbone_only_and_imagenet_files(retinanet, tmp_path, classifier):
    state = make_official_state_dict('s')
    if not classifier:
        state = {k: v for k, v in state.items()
                 if not k.startswith(('norm.', 'head.'))}
    message = mismatch(retinanet, save(tmp_path, state))
    assert ('ImageNet classifier' if classifier else 'backbone-only') in \
        message
    assert '--backbone-checkpoint ' in message
    # All of the detector's tensors are missing: it says how many.
    assert f'{len(retinanet.state_dict())} of the model' in message


def test_detector_file_with_the_backbone_only(retinanet, tmp_path):
    state = {k: v for k, v in retinanet.state_dict().items()
             if k.startswith('backbone.')}
    message = mismatch(retinanet, save(tmp_path, state))
    assert 'only ConvMLP-S backbone tensors' in message
    assert '--backbone-checkpoint ' in message


def test_other_number_of_classes_is_an_opt_in(retinanet, tmp_path):
    three = build(RETINANET, num_classes=3)
    path = save(tmp_path, three.state_dict())
    message = mismatch(retinanet, path)
    assert 'another number of classes' in message
    assert 'load_from_skip_mismatched_heads=True' in message
    assert 'bbox_head.retina_cls.weight' in message

    before = retinanet.bbox_head.retina_cls.weight.clone()
    load_model_checkpoint(retinanet, path, skip_mismatched_heads=True)
    # Only the class layer keeps its own values; the rest came from the file.
    assert torch.equal(retinanet.bbox_head.retina_cls.weight, before)
    for key, value in three.state_dict().items():
        if not key.startswith('bbox_head.retina_cls.'):
            assert torch.equal(retinanet.state_dict()[key], value), key


def test_opt_in_does_not_skip_a_backbone_mismatch(retinanet, tmp_path):
    state = dict(retinanet.state_dict())
    key = 'backbone.tokenizer.block.0.weight'
    state[key] = torch.zeros((7, ) + tuple(state[key].shape[1:]))
    with pytest.raises(CheckpointMismatchError, match='skips only class'):
        load_model_checkpoint(retinanet, save(tmp_path, state),
                              skip_mismatched_heads=True)


def test_non_finite_weights_are_refused(retinanet, tmp_path):
    state = {k: v.clone() for k, v in retinanet.state_dict().items()}
    state['neck.fpn_convs.0.conv.weight'][0, 0, 0, 0] = math.nan
    state['bbox_head.retina_reg.bias'][1] = math.inf
    path = save(tmp_path, state)
    with pytest.raises(NonFiniteCheckpointError) as info:
        load_model_checkpoint(retinanet, path)
    message = str(info.value)
    assert path in message
    assert f'2 of {len(state)} tensors hold NaN or inf' in message
