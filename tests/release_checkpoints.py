"""Checkpoints in the original release's format (mmdet 2 / mmseg 0.x, saved
by mmcv 1), written from the 2.x sources, not from this project's models.

Every key and shape below is enumerated from the module definitions of
mmdet 2.28.2 and mmsegmentation 0.30.0 (PyPI wheels, ``pip download
--no-deps mmdet==2.28.2 mmsegmentation==0.30.0``; file:line and class in
each comment) and the release's base configs, and the backbone's from the
release's ImageNet checkpoint layout (tests/data/
official_imagenet_checkpoint_layout.json, the release's DetConvMLP /
SegConvMLP being its ConvMLP with ``classifier_head=False``). Nothing is read
from convmlp_mm or from a model built here: a converter or a loader that
drops, adds or misnames a key, or a model whose names drift from the
release's, no longer fits these files.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch

from helpers import official_layout

Shape = Tuple[int, ...]
# Backbone output widths per stage (paper Table 1; the neck's in_channels).
WIDTHS = {'s': [64, 128, 256, 512], 'm': [64, 128, 256, 512],
          'l': [96, 192, 384, 768]}
FPN_OUT = 256  # configs/_base_/models/mask_rcnn_r50_fpn.py:17, fpn_r50.py:20


def _conv(keys: Dict[str, Shape], name: str, out: int, inp: int, k: int,
          bias: bool = True) -> None:
    keys[f'{name}.weight'] = (out, inp, k, k)
    if bias:
        keys[f'{name}.bias'] = (out,)


def _bn(keys: Dict[str, Shape], name: str, channels: int) -> None:
    for p in ('weight', 'bias', 'running_mean', 'running_var'):
        keys[f'{name}.{p}'] = (channels,)
    keys[f'{name}.num_batches_tracked'] = ()


def release_backbone_keys(arch: str) -> Dict[str, Shape]:
    """The release's DetConvMLP keys (classifier_head=False): the ImageNet
    checkpoint's without norm/head, under ``backbone.``."""
    return {f'backbone.{k}': tuple(shape) for k, shape in official_layout(arch)
            if not k.startswith(('norm.', 'head.'))}


def _fpn(keys, in_channels: Sequence[int]) -> None:
    # mmdet/models/necks/fpn.py:111-129 (mmdet 2.28.2, class FPN):
    # lateral_convs[i] = ConvModule(c, out, 1), fpn_convs[i] =
    # ConvModule(out, out, 3); ConvModule's ``conv``, bias='auto' -> a bias
    # without norm. No extra convs (add_extra_convs=False in both bases).
    for i, c in enumerate(in_channels):
        _conv(keys, f'neck.lateral_convs.{i}.conv', FPN_OUT, c, 1)
        _conv(keys, f'neck.fpn_convs.{i}.conv', FPN_OUT, FPN_OUT, 3)


def release_maskrcnn_keys(arch: str, num_classes: int) -> Dict[str, Shape]:
    """Mask R-CNN (mmdet 2 configs/_base_/models/mask_rcnn_r50_fpn.py, the
    release's base) with the ConvMLP backbone."""
    keys: Dict[str, Shape] = OrderedDict(release_backbone_keys(arch))
    _fpn(keys, WIDTHS[arch])
    # mmdet/models/dense_heads/rpn_head.py:54,56,59 (RPNHead, num_convs=1):
    # rpn_conv 3x3, rpn_cls (sigmoid: 1 score per anchor), rpn_reg; 3 anchors
    # (mask_rcnn_r50_fpn.py:25-26, scales=[8], 3 ratios).
    _conv(keys, 'rpn_head.rpn_conv', FPN_OUT, FPN_OUT, 3)
    _conv(keys, 'rpn_head.rpn_cls', 3, FPN_OUT, 1)
    _conv(keys, 'rpn_head.rpn_reg', 3 * 4, FPN_OUT, 1)
    # mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py:58,87,94
    # (Shared2FCBBoxHead): shared_fcs.{0,1} (fc_out_channels=1024 on the 7x7
    # RoI, mask_rcnn_r50_fpn.py:45-46), fc_cls num_classes + 1 (background),
    # fc_reg 4 per class (reg_class_agnostic=False).
    b = 'roi_head.bbox_head'
    keys[f'{b}.shared_fcs.0.weight'] = (1024, FPN_OUT * 7 * 7)
    keys[f'{b}.shared_fcs.0.bias'] = (1024,)
    keys[f'{b}.shared_fcs.1.weight'] = (1024, 1024)
    keys[f'{b}.shared_fcs.1.bias'] = (1024,)
    keys[f'{b}.fc_cls.weight'] = (num_classes + 1, 1024)
    keys[f'{b}.fc_cls.bias'] = (num_classes + 1,)
    keys[f'{b}.fc_reg.weight'] = (num_classes * 4, 1024)
    keys[f'{b}.fc_reg.bias'] = (num_classes * 4,)
    # mmdet/models/roi_heads/mask_heads/fcn_mask_head.py:67-72,84-91,110
    # (FCNMaskHead, num_convs=4): convs.{i}.conv, upsample a 2x2 deconv
    # (ConvTranspose2d weight: in, out, k, k), conv_logits 1 per class.
    m = 'roi_head.mask_head'
    for i in range(4):
        _conv(keys, f'{m}.convs.{i}.conv', FPN_OUT, FPN_OUT, 3)
    _conv(keys, f'{m}.upsample', FPN_OUT, FPN_OUT, 2)
    _conv(keys, f'{m}.conv_logits', num_classes, FPN_OUT, 1)
    return keys


def release_retinanet_keys(arch: str, num_classes: int) -> Dict[str, Shape]:
    """RetinaNet (mmdet 2 configs/_base_/models/retinanet_r50_fpn.py) with
    the release's FPN from level 1 and extra convs on the input."""
    keys: Dict[str, Shape] = OrderedDict(release_backbone_keys(arch))
    widths = WIDTHS[arch]
    # mmdet/models/necks/fpn.py:111-149 (FPN, start_level=1,
    # add_extra_convs='on_input', num_outs=5): lateral/fpn convs for levels
    # 1-3, then 5 - 4 + 1 = 2 extra 3x3 convs, the first on the last input.
    _fpn(keys, widths[1:])
    _conv(keys, 'neck.fpn_convs.3.conv', FPN_OUT, widths[-1], 3)
    _conv(keys, 'neck.fpn_convs.4.conv', FPN_OUT, FPN_OUT, 3)
    # mmdet/models/dense_heads/retina_head.py:64-95 (RetinaHead,
    # stacked_convs=4): cls_convs/reg_convs ConvModules, retina_cls with
    # num_anchors x num_classes (sigmoid), retina_reg 4 per anchor; 9
    # anchors (octave_base_scale 4, scales_per_octave 3, 3 ratios).
    for i in range(4):
        _conv(keys, f'bbox_head.cls_convs.{i}.conv', FPN_OUT, FPN_OUT, 3)
        _conv(keys, f'bbox_head.reg_convs.{i}.conv', FPN_OUT, FPN_OUT, 3)
    _conv(keys, 'bbox_head.retina_cls', 9 * num_classes, FPN_OUT, 3)
    _conv(keys, 'bbox_head.retina_reg', 9 * 4, FPN_OUT, 3)
    return keys


def release_key(key: str, arch: str) -> str:
    """The name the release's file gives to our ``key`` (the same: no module
    of these models was renamed); AssertionError when no 2.x module above
    makes it."""
    names = (set(release_retinanet_keys(arch, 80))
             | set(release_maskrcnn_keys(arch, 80))
             | set(release_semantic_fpn_keys(arch)))
    assert key in names, key
    return key


def release_semantic_fpn_keys(arch: str,
                              num_classes: int = 150) -> Dict[str, Shape]:
    """Semantic FPN (mmseg 0.x configs/_base_/models/fpn_r50.py: FPN with
    num_outs=4, FPNHead channels=128, feature_strides [4, 8, 16, 32],
    SyncBN) with the ConvMLP backbone."""
    keys: Dict[str, Shape] = OrderedDict(release_backbone_keys(arch))
    _fpn(keys, WIDTHS[arch])
    # mmseg/models/decode_heads/fpn_head.py:31-53 (FPNHead): scale_heads[i]
    # a Sequential of max(1, log2(stride_i / 4)) ConvModules (3x3, no bias
    # under a norm: ``conv`` and ``bn``), each followed by an Upsample (no
    # parameters) when stride_i != 4.
    for i, stride in enumerate((4, 8, 16, 32)):
        length = max(1, {4: 0, 8: 1, 16: 2, 32: 3}[stride])
        step = 1 if stride == 4 else 2
        for k in range(length):
            name = f'decode_head.scale_heads.{i}.{k * step}'
            _conv(keys, f'{name}.conv', 128, FPN_OUT if k == 0 else 128, 3,
                  bias=False)
            _bn(keys, f'{name}.bn', 128)
    # mmseg/models/decode_heads/decode_head.py:131 (BaseDecodeHead.conv_seg)
    _conv(keys, 'decode_head.conv_seg', num_classes, 128, 1)
    return keys


def release_meta(library: str, arch: str, classes: Sequence[str],
                 config_text: str,
                 palette: Optional[Sequence] = None) -> dict:
    """The ``meta`` mmcv 1's runner saved for the release's trainings:
    mmdet 2.28.2 .mim/tools/train.py:195-210 (env_info, config, seed,
    exp_name) and :231-233 (``checkpoint_config.meta``: mmdet_version =
    ``__version__ + get_git_hash()[:7]``, no separator, and CLASSES);
    mmsegmentation 0.30.0 .mim/tools/train.py:181-196 and :222-226
    (mmseg_version ``f'{__version__}+{hash}'``, config, CLASSES, PALETTE);
    mmcv 1's ``BaseRunner.save_checkpoint`` adds epoch/iter and
    ``mmcv.runner.save_checkpoint`` mmcv_version and time."""
    meta = dict(env_info='sys.platform: linux\nPyTorch: 1.8.1',
                config=config_text, seed=0,
                exp_name=f'{library}_convmlp_{arch}.py',
                CLASSES=tuple(classes), epoch=12, iter=87960,
                mmcv_version='1.3.13', time='Fri Sep 10 10:00:00 2021')
    if library == 'mmdet':
        meta['mmdet_version'] = '2.16.0' + '1ab4c9e'
    else:
        meta['mmseg_version'] = '0.17.0+4c0d0e5'
        meta['PALETTE'] = [list(c) for c in palette]
    return meta


def make_release_checkpoint(path: str, keys: Dict[str, Shape],
                            meta: dict, seed: int = 0) -> 'OrderedDict':
    """Random tensors of ``keys`` (from the functions above), saved as mmcv 1
    saved them (meta, state_dict, optimizer); returns the state dict."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in keys.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(5)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.02
    torch.save(dict(meta=meta, state_dict=state,
                    optimizer=dict(state={}, param_groups=[dict(lr=1e-6)])),
               path)
    return state
