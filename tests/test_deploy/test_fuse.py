"""BatchNorm folding for the PyTorch path: no BN left where a conv
precedes it, outputs equal to 1e-5 relative."""
import copy

import torch

from convmlp_mm.deploy import count_batchnorms, fuse_conv_bn, load_model


def _randomise_bn(model):
    # Non-trivial running statistics and affine terms, so that folding
    # has something to fold.
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def _max_rel(a, b):
    return max(float((x - y).abs().max() / y.abs().max())
               for x, y in zip(a, b))


def test_backbone_folds_tokenizer_and_conv_stage():
    model, _ = load_model('s')
    _randomise_bn(model)
    # docs/deployment.md ("9 in ConvMLP-S"): 3 tokenizer conv-BN-ReLU + 2
    # conv-stage blocks (paper Table 1, ConvMLP-S) of 3 conv-BN-ReLU each.
    assert count_batchnorms(model) == 3 + 2 * 3
    x = torch.randn(1, 3, 97, 130)
    with torch.no_grad():
        expected = model(x)
        fused = fuse_conv_bn(copy.deepcopy(model))
        got = fused(x)
    assert count_batchnorms(fused) == 0
    assert _max_rel(got, expected) <= 1e-5


def test_semantic_fpn_folds_head_convmodules():
    model, _ = load_model('configs/demo/fpn_convmlp_s_demo_shapes.py')
    _randomise_bn(model)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        expected = model.decode_head(model.extract_feat(x))
        fused = fuse_conv_bn(copy.deepcopy(model))
        got = fused.decode_head(fused.extract_feat(x))
    assert count_batchnorms(fused) == 0
    assert _max_rel([got], [expected]) <= 1e-5
