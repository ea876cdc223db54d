"""The ConvMLP backbone: architecture, pyramid, kwargs mmdet users expect."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from convmlp_mm import ConvMLP
from convmlp_mm.models import ARCH_ZOO
from convmlp_mm.models.layers import Mlp, auto_mlp_impl

# Backbone parameters without the classifier's norm and head
# (docs/model_zoo.md).
BACKBONE_PARAMS_M = {'s': 8.509, 'm': 16.896, 'l': 41.958}
CHANNELS = {'s': [64, 128, 256, 512], 'm': [64, 128, 256, 512],
            'l': [96, 192, 384, 768]}


# A ConvMLP of 0.1M parameters with every kind of part (tokenizer, conv
# stage, three Conv-MLP stages): for the plumbing checks (checkpointing,
# freezing, gradients), which ConvMLP-S shows no better. TINY2 has two
# blocks a stage, so the per-stage drop-path rates are not all zero.
TINY = dict(channels=16, conv_blocks=1, blocks=[1, 1, 1], dims=[32, 48, 64],
            mlp_ratio=1)
TINY2 = dict(TINY, conv_blocks=2, blocks=[2, 2, 2])
META = torch.device('meta')


def count_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_parameter_counts(arch):
    with torch.device('meta'):  # shapes only: no memory, no initialisation
        model = ConvMLP(arch=arch)
    assert round(count_params(model) / 1e6, 3) == BACKBONE_PARAMS_M[arch]
    assert model.out_channels == CHANNELS[arch]


@pytest.mark.parametrize('alias,arch', [('small', 's'), ('Medium', 'm'),
                                        ('L', 'l')])
def test_arch_aliases(alias, arch):
    with torch.device('meta'):
        assert ConvMLP(arch=alias).arch_settings == ARCH_ZOO[arch]


def test_arch_dict():
    custom = dict(channels=32, conv_blocks=1, blocks=[1, 1, 1],
                  dims=[64, 96, 128], mlp_ratio=1.5)
    model = ConvMLP(arch=custom)
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64, 96, 128]


@pytest.mark.parametrize('arch,match', [
    ('xl', r'arch "xl" is not one of s, m, l, small, medium, large'),
    (dict(channels=64), r"missing: \['conv_blocks', 'blocks'"),
    (dict(ARCH_ZOO['s'], depth=3), r"unknown: \['depth'\]"),
    (dict(ARCH_ZOO['s'], blocks=[2, 2]), r'three Conv-MLP stages'),
])
def test_bad_arch(arch, match):
    with pytest.raises(ValueError, match=match):
        ConvMLP(arch=arch)


def test_unknown_argument_suggests_the_real_one():
    with pytest.raises(TypeError, match=r'"drop_path" \(did you mean '
                       r'"drop_path_rate"\?\).*"zzz"; it takes arch,'):
        ConvMLP(drop_path=0.2, zzz=1)


@pytest.mark.parametrize('out_indices', [(4,), (-5,), (0, 1.5), ()])
def test_bad_out_indices(out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        ConvMLP(out_indices=out_indices)


@pytest.mark.parametrize('frozen', [-2, 5])
def test_bad_frozen_stages(frozen):
    with pytest.raises(ValueError, match='frozen_stages must be in -1..4'):
        ConvMLP(frozen_stages=frozen)


def test_wrong_input_channels():
    model = ConvMLP(in_channels=3)
    with pytest.raises(ValueError,
                       match='3 channels .*got shape \\(1, 1, 32, 32\\)'):
        model(torch.rand(1, 1, 32, 32))
    assert ConvMLP(in_channels=1)(torch.rand(1, 1, 32, 32))[0].shape[1] == 64


@pytest.mark.parametrize('out_indices', [(0,), (1,), (2,), (3,), (0, 2),
                                         (1, 2, 3), (0, 1, 2, 3), (-1,)])
def test_out_indices_shapes(out_indices):
    with META:  # shapes and layouts only
        model = ConvMLP(arch='s', out_indices=out_indices).eval()
        outs = model(torch.rand(2, 3, 64, 96))
    levels = sorted(i % 4 for i in out_indices)
    assert len(outs) == len(levels)
    for out, level in zip(outs, levels):
        stride = 4 * 2**level
        assert out.shape == (2, CHANNELS['s'][level], 64 // stride,
                             96 // stride)
        assert out.is_contiguous()


@pytest.mark.parametrize('arch', ['s', 'l'])
def test_odd_input_sizes(arch):
    with META:  # shapes only
        model = ConvMLP(arch=arch).eval()
        outs = model(torch.rand(1, 3, 97, 130))
        tiny = model(torch.rand(1, 3, 1, 1))
    assert [tuple(o.shape[2:]) for o in outs] == [(25, 33), (13, 17), (7, 9),
                                                  (4, 5)]
    assert [o.shape[1] for o in outs] == CHANNELS[arch]
    assert all(o.shape[2:] == (1, 1) for o in tiny)


def test_levels_are_the_release_taps():
    """F3 is Conv-MLP stage 1 after its downsample; stage 2 is not tapped."""
    model = ConvMLP(arch='s').eval()
    seen = {}
    model.stages[0].downsample_mlp.register_forward_hook(
        lambda m, i, o: seen.setdefault('stage1', o))
    model.stages[2].blocks[-1].register_forward_hook(
        lambda m, i, o: seen.setdefault('stage3', o))
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    torch.testing.assert_close(outs[2], seen['stage1'].permute(0, 3, 1, 2))
    torch.testing.assert_close(outs[3], seen['stage3'].permute(0, 3, 1, 2))


def stage_modules(model):
    return [model.tokenizer, model.conv_stages, *model.stages]


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen_stages):
    model = ConvMLP(arch=TINY, frozen_stages=frozen_stages)
    model.train()
    for i, stage in enumerate(stage_modules(model)):
        frozen = i <= frozen_stages
        for param in stage.parameters():
            assert param.requires_grad is not frozen
        for m in stage.modules():
            assert m.training is not frozen
    # The frozen tokenizer's BN statistics do not move in a training step.
    if frozen_stages >= 0:
        bn = model.tokenizer.block[1]
        before = bn.running_mean.clone()
        model(torch.rand(2, 3, 32, 32))
        torch.testing.assert_close(bn.running_mean, before)


def test_norm_eval():
    model = ConvMLP(arch=TINY, norm_eval=True)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert all(m.training for m in model.modules()
               if isinstance(m, nn.LayerNorm))
    before = norms[0].running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    torch.testing.assert_close(norms[0].running_mean, before)
    model = ConvMLP(arch=TINY, norm_eval=False).train()
    assert all(m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_with_cp_same_outputs_gradients_and_bn_stats():
    torch.manual_seed(0)
    plain = ConvMLP(arch=TINY2, drop_path_rate=0.1)
    plain.init_weights()
    ckpt = ConvMLP(arch=TINY2, drop_path_rate=0.1, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    results = []
    for model in (plain, ckpt):
        model.train()
        inp = x.clone().requires_grad_(True)
        torch.manual_seed(1)  # same drop-path draws
        outs = model(inp)
        sum(o.float().pow(2).mean() for o in outs).backward()
        results.append((outs, inp.grad,
                        {n: p.grad for n, p in model.named_parameters()},
                        {n: b.clone() for n, b in model.named_buffers()}))
    (o1, g1, p1, b1), (o2, g2, p2, b2) = results
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(g1, g2)
    for name in p1:
        torch.testing.assert_close(p1[name], p2[name], msg=name)
    for name in b1:
        torch.testing.assert_close(b1[name], b2[name], msg=name)


def test_drop_path_schedule():
    def rates(model):
        return [[getattr(b.drop_path, 'drop_prob', 0.0) for b in s.blocks]
                for s in model.stages]

    # The release: 0 -> 0.1 inside each stage.
    per_stage = rates(ConvMLP(arch='s'))
    assert per_stage == [pytest.approx([0.0, 0.1]),
                         pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1]),
                         pytest.approx([0.0, 0.1])]
    flat = sum(rates(ConvMLP(arch='s', drop_path_rate=0.2,
                             drop_path_schedule='global')), [])
    assert flat == pytest.approx(torch.linspace(0, 0.2, 8).tolist())
    assert rates(ConvMLP(arch='s', drop_path_rate=0.0)) == [[0.0] * 2,
                                                            [0.0] * 4,
                                                            [0.0] * 2]
    with pytest.raises(ValueError, match='drop_path_schedule'):
        ConvMLP(drop_path_schedule='linear')


def test_init_weights_changes_weights():
    model = ConvMLP(arch='s')
    fc = model.stages[0].blocks[0].channel_mlp1.fc1
    torch.nn.init.constant_(fc.weight, 0.5)
    torch.nn.init.constant_(fc.bias, 0.5)
    model.init_weights()
    assert fc.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(fc.bias == 0)


def test_deprecated_pretrained_becomes_init_cfg():
    with pytest.warns(DeprecationWarning, match='pretrained'):
        model = ConvMLP(pretrained='some/file.pth')
    assert model.init_cfg == dict(type='Pretrained',
                                  checkpoint='some/file.pth')
    with pytest.raises(ValueError, match='both "pretrained" and "init_cfg"'):
        ConvMLP(pretrained='a.pth', init_cfg=dict(type='Pretrained',
                                                  checkpoint='b.pth'))


def test_features_stay_finite_and_train():
    """One optimiser step moves every parameter that should train."""
    model = ConvMLP(arch=TINY, drop_path_rate=0.0)
    model.init_weights()
    model.train()
    outs = model(torch.rand(2, 3, 64, 64))
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.mean() for o in outs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []


def test_stages_own_their_forward():
    """The backbone is its modules called in order: tokenizer, conv stage,
    Conv-MLP stages (NHWC), each through its own forward."""
    torch.manual_seed(0)
    model = ConvMLP(arch='s', drop_path_rate=0.0).eval()
    x = torch.rand(1, 3, 97, 130)
    with torch.no_grad():
        f1 = model.tokenizer(x)
        f2 = model.conv_stages(f1)
        f3 = model.stages[0](f2.permute(0, 2, 3, 1))
        f4 = model.stages[2](model.stages[1](f3))
        expected = [f1, f2, f3.permute(0, 3, 1, 2), f4.permute(0, 3, 1, 2)]
        for out, ref in zip(model(x), expected):
            torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_with_cp_is_set_on_every_block():
    with META:  # the structure only
        model = ConvMLP(arch='s', with_cp=True)
        plain = ConvMLP(arch='s')
    blocks = [model.tokenizer, *model.conv_stages.conv_blocks,
              *(b for stage in model.stages for b in stage.blocks)]
    assert all(block.with_cp for block in blocks)
    assert not any(getattr(m, 'with_cp', False) for m in plain.modules())


def test_mlp_impl_linear_and_conv1x1_agree_in_values_and_gradients():
    """``mlp_impl`` changes how the channel MLPs are computed, not what:
    the two paths against each other, whatever 'auto' picks here."""
    torch.manual_seed(0)
    linear = ConvMLP(arch='s', drop_path_rate=0.0,
                     mlp_impl='linear').train()
    conv = ConvMLP(arch='s', drop_path_rate=0.0, mlp_impl='conv1x1').train()
    conv.load_state_dict(linear.state_dict())
    x = torch.rand(2, 3, 64, 64)
    outs = [linear(x), conv(x)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    sum(o.sum() for o in outs[0]).backward()
    sum(o.sum() for o in outs[1]).backward()
    for (name, p), q in zip(linear.named_parameters(), conv.parameters()):
        if name.startswith('stages.'):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4,
                                       msg=name)
        else:
            # The BatchNorm-ReLU stem: a ReLU input within float rounding of
            # zero may take the other side (docs/performance.md); the
            # gradient's direction still agrees.
            cos = torch.nn.functional.cosine_similarity(
                p.grad.flatten(), q.grad.flatten(), dim=0)
            assert cos > 0.999, name
    assert all(m.impl == 'conv1x1' for m in conv.modules()
               if isinstance(m, Mlp))


def test_mlp_impl_auto_is_one_of_the_two_exactly():
    """'auto' takes one of the paths (the one :func:`auto_mlp_impl` names
    for this CPU), so its outputs are that path's, bit for bit."""
    torch.manual_seed(0)
    auto = ConvMLP(arch='s', drop_path_rate=0.0).eval()
    x = torch.rand(1, 3, 64, 64)
    path = auto_mlp_impl(x)[0]
    same = ConvMLP(arch='s', drop_path_rate=0.0, mlp_impl=path).eval()
    same.load_state_dict(auto.state_dict())
    with torch.no_grad():
        for a, b in zip(auto(x), same(x)):
            assert torch.equal(a, b)


def test_one_module_tree_whatever_the_arguments():
    """ConvMLP has no ablation switches (the Pure-MLP baseline is its own
    class): the same modules, by name and class, for any arguments."""
    def tree(model):
        return {name.split('.')[0] for name, _ in model.named_children()}, {
            type(m).__name__ for m in model.modules()}

    with torch.device('meta'):  # the structure only
        plain = tree(ConvMLP(arch='s'))
        other = tree(ConvMLP(arch='s', drop_path_rate=0.0,
                             mlp_impl='conv1x1', frozen_stages=2,
                             norm_eval=True, with_cp=True, out_indices=(3, )))
    assert plain[0] == {'tokenizer', 'conv_stages', 'stages'}
    assert 'ChannelMLPBlock' not in plain[1] and \
        'PatchMergingDownsample' not in plain[1]
    assert other == (plain[0], plain[1] - {'DropPath'} | {'Identity'})
    with pytest.raises(TypeError, match='"dwconv" is a switch of the '
                       "paper's Table 2 ablation, which is type='PureMLP'"):
        ConvMLP(arch='s', dwconv=False)


def test_mlp_impl_is_checked():
    with pytest.raises(ValueError, match='mlp_impl must be one of auto, '
                       'linear, conv1x1, got "fast"'):
        ConvMLP(arch='s', mlp_impl='fast')
