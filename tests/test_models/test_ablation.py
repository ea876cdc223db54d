"""The Pure-MLP baseline (paper Table 2's first row, the backbones of
Tables 5-7) and the switches that put ConvMLP's convolutions back for Table
2's other rows: parameter counts, shapes, names, training behaviour, and
the module trees of both classes."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

from convmlp_mm import (
    CheckpointMismatchError,
    ConvMLP,
    load_backbone_checkpoint,
)
from convmlp_mm.models import PureMLP

from helpers import REPO

# PureMLP's switches set to ConvMLP's choices.
CONVMLP_SWITCHES = dict(conv_stage=True, downsample='conv', dwconv=True)


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def classifier_params(backbone: nn.Module) -> int:
    """Backbone + the release's classifier (LayerNorm + 1000-way head)."""
    dim = backbone.out_channels[-1]
    return num_params(backbone) + 2 * dim + dim * 1000 + 1000


# The parameter counts below build on the meta device: shapes only.
META = torch.device('meta')


def test_table2_pure_mlp_baseline_is_7_88m():
    with META:
        # Table 2, first row: no conv stage, no conv downsampling, no dwconv.
        assert round(classifier_params(PureMLP('s')) / 1e6, 2) == 7.88
        # Last row: ConvMLP-S itself.
        assert round(classifier_params(ConvMLP('s')) / 1e6, 2) == 9.02


def test_table2_switch_costs():
    with META:
        base = num_params(ConvMLP('s'))
        # All three switches on: ConvMLP's modules, names and parameters.
        full = PureMLP('s', **CONVMLP_SWITCHES)
        assert num_params(full) == base
        assert set(full.state_dict()) == set(ConvMLP('s').state_dict())
        # The depthwise 3x3 convs (2x128 + 4x256 + 2x512 channels, no bias)
        # and their LayerNorms: "only brings few parameters" (Table 2:
        # 0.02M).
        widths = 2 * 128 + 4 * 256 + 2 * 512
        assert base - num_params(PureMLP('s', **dict(CONVMLP_SWITCHES,
                                                     dwconv=False))) == \
            9 * widths + 2 * widths
        # Conv vs. patch merging between the Conv-MLP stages: Table 2 rows 2
        # and 3 differ by 0.82M (8.71 - 7.89).
        saved = base - num_params(PureMLP('s', **dict(
            CONVMLP_SWITCHES, downsample='patch_merging')))
        assert round(saved / 1e6, 2) == 0.82


@pytest.mark.parametrize('arch,switches', [
    ('s', {}),
    ('s', dict(CONVMLP_SWITCHES, conv_stage=False)),
    ('s', dict(CONVMLP_SWITCHES, downsample='patch_merging')),
    ('s', dict(CONVMLP_SWITCHES, dwconv=False)),
    ('s', dict(conv_stage=True)),
    ('l', {}),
])
def test_switches_keep_levels_for_odd_sizes(arch, switches):
    with META:  # shapes only
        model = PureMLP(arch, **switches).eval()
        widths = ConvMLP(arch).out_channels
        outs = model(torch.rand(1, 3, 97, 130))
    assert [tuple(o.shape) for o in outs] == [
        (1, widths[0], 25, 33), (1, widths[1], 13, 17),
        (1, widths[2], 7, 9), (1, widths[3], 4, 5)]


def test_pure_mlp_module_names():
    pure = set(PureMLP('s').state_dict())
    assert not any(k.startswith('conv_stages.') for k in pure)
    assert 'mlp_stage.blocks.1.channel_mlp2.fc2.weight' in pure
    assert not any('.connect' in k for k in pure)
    # mmcv's PatchMerging: LayerNorm over 2x2x C, bias-free Linear.
    assert 'stages.0.downsample_mlp.downsample.reduction.weight' in pure
    assert 'stages.0.downsample_mlp.downsample.reduction.bias' not in pure


def test_official_checkpoint_refuses_pure_mlp(official_checkpoint):
    path, _ = official_checkpoint('s')
    with pytest.raises(CheckpointMismatchError):
        load_backbone_checkpoint(PureMLP('s'), path)


def test_bad_downsample_names_the_choices():
    with pytest.raises(ValueError, match='conv, patch_merging'):
        PureMLP('s', downsample='pool')


def test_pure_mlp_trains_freezes_and_checkpoints():
    torch.manual_seed(0)
    # A PureMLP of 0.1M parameters: the plumbing is that of any size.
    tiny = dict(channels=16, conv_blocks=2, blocks=[1, 1, 1],
                dims=[32, 48, 64], mlp_ratio=1)
    model = PureMLP(tiny, frozen_stages=1, with_cp=True,
                    drop_path_schedule='global')
    model.train()
    assert not any(p.requires_grad for p in model.mlp_stage.parameters())
    # Stochastic depth covers the MLP stage that replaces the conv stage.
    rates = [getattr(b.drop_path, 'drop_prob', 0.)
             for b in model.mlp_stage.blocks]
    assert rates[0] == 0 and rates[-1] > 0
    image = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = sum(o.float().pow(2).mean() for o in model(image))
    loss.backward()
    grads = model.stages[0].downsample_mlp.downsample.reduction.weight.grad
    assert grads is not None and grads.abs().sum() > 0
    assert model.mlp_stage.blocks[0].channel_mlp1.fc1.weight.grad is None


PAPER_PURE_MLP_PARAMS = {  # paper Tables 5-7, millions
    'retinanet_puremlp_s_fpn_1x_coco.py': 17.6,
    'retinanet_puremlp_m_fpn_1x_coco.py': 25.9,
    'retinanet_puremlp_l_fpn_1x_coco.py': 50.1,
    'maskrcnn_puremlp_s_fpn_1x_coco.py': 27.5,
    'maskrcnn_puremlp_m_fpn_1x_coco.py': 35.8,
    'maskrcnn_puremlp_l_fpn_1x_coco.py': 59.5,
    'fpn_puremlp_s_512x512_40k_ade20k.py': 11.6,
    'fpn_puremlp_m_512x512_40k_ade20k.py': 19.9,
    'fpn_puremlp_l_512x512_40k_ade20k.py': 43.6,
}


def test_every_pure_mlp_config_is_checked():
    found = {osp.basename(p)
             for p in glob.glob(osp.join(REPO, 'configs/pure_mlp/*.py'))}
    assert found == set(PAPER_PURE_MLP_PARAMS)


@pytest.mark.parametrize('name', sorted(PAPER_PURE_MLP_PARAMS))
def test_pure_mlp_config_params_match_paper(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs/pure_mlp', name))
    backbone = cfg.model.backbone
    assert backbone.type == 'PureMLP'
    assert not {'conv_stage', 'downsample', 'dwconv'} & set(backbone)
    # Nothing to download, and the ConvMLP weights would not fit.
    assert backbone.init_cfg is None
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope), META:
        if scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        model = MODELS.build(cfg.model)
    assert round(num_params(model) / 1e6, 1) == PAPER_PURE_MLP_PARAMS[name]


def test_registered_and_built_like_convmlp():
    from mmdet.registry import MODELS as MMDET
    from mmseg.registry import MODELS as MMSEG
    assert MMDET.get('PureMLP') is PureMLP is MMSEG.get('PureMLP')
    with META:
        assert not isinstance(PureMLP('s'), ConvMLP)


def test_one_forward_for_every_switch():
    """The switches pick the class of a part when the model is built; the
    forward pass is the one ConvMLP runs, so all three on compute ConvMLP's
    outputs bit for bit from the same weights."""
    assert PureMLP.forward is ConvMLP.forward
    torch.manual_seed(0)
    convmlp = ConvMLP('s', drop_path_rate=0.0).eval()
    full = PureMLP('s', drop_path_rate=0.0, **CONVMLP_SWITCHES).eval()
    full.load_state_dict(convmlp.state_dict())
    x = torch.rand(1, 3, 97, 130)
    with torch.no_grad():
        for a, b in zip(convmlp(x), full(x)):
            assert torch.equal(a, b)
