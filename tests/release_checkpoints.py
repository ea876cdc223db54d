"""Checkpoints in the original release's format (mmdet 2 / mmseg 0.x, saved
by mmcv 1), made from a model's key list.

The 2.x names are written here from the 2.x sources (mmdet 2.28.2,
mmsegmentation 0.30.0; file:line in each pattern's comment) rather than taken
from convmlp_mm, so a test that maps our keys onto them checks the mapping.
"""
import re
from collections import OrderedDict
from typing import Optional, Sequence

import torch

from helpers import official_layout

_PARAM = r'\.(weight|bias)'
_BN = r'\.bn\.(weight|bias|running_mean|running_var|num_batches_tracked)'
RELEASE_HEAD_PATTERNS = tuple(re.compile(p + '$') for p in (
    # mmdet/models/necks/fpn.py:106-107, ConvModule's ``conv``
    r'neck\.(lateral|fpn)_convs\.\d+\.conv' + _PARAM,
    # mmdet/models/dense_heads/retina_head.py:64-65,86,91
    r'bbox_head\.(cls|reg)_convs\.\d+\.conv' + _PARAM,
    r'bbox_head\.retina_(cls|reg)' + _PARAM,
    # mmdet/models/dense_heads/rpn_head.py:54,56,59
    r'rpn_head\.rpn_(conv|cls|reg)' + _PARAM,
    # mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py:58,87,94
    r'roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg)' + _PARAM,
    # mmdet/models/roi_heads/mask_heads/fcn_mask_head.py:72,91,110
    r'roi_head\.mask_head\.(convs\.\d+\.conv|upsample|conv_logits)' + _PARAM,
    # mmseg/models/decode_heads/fpn_head.py:31-53, decode_head.py:131
    r'decode_head\.scale_heads\.\d+\.\d+\.conv\.weight',
    r'decode_head\.scale_heads\.\d+\.\d+' + _BN,
    r'decode_head\.conv_seg' + _PARAM,
))


def release_backbone_keys(arch: str) -> dict:
    """The release's DetConvMLP keys (classifier_head=False): the ImageNet
    checkpoint's without norm/head, under ``backbone.``."""
    return {f'backbone.{k}': tuple(shape) for k, shape in official_layout(arch)
            if not k.startswith(('norm.', 'head.'))}


def release_key(key: str, arch: str) -> str:
    """The name the release's file gives to our ``key``; AssertionError when
    no 2.x module makes it."""
    if key.startswith('backbone.'):
        assert key in release_backbone_keys(arch), key
        return key
    assert any(p.match(key) for p in RELEASE_HEAD_PATTERNS), key
    return key


def make_release_checkpoint(path: str, model, arch: str,
                            classes: Sequence[str], config_text: str,
                            library: str = 'mmdet',
                            palette: Optional[Sequence] = None,
                            seed: int = 0) -> 'OrderedDict':
    """Random tensors for every key of ``model`` under the release's names,
    saved with the ``meta`` mmcv 1's runner wrote; returns the state dict."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, value in model.state_dict().items():
        if value.dtype == torch.long:
            new = torch.full_like(value, 5)
        elif key.endswith('running_var'):
            new = torch.rand(value.shape, generator=gen) + 0.5
        else:
            new = torch.randn(value.shape, generator=gen) * 0.02
        state[release_key(key, arch)] = new
    meta = dict(
        env_info='sys.platform: linux\nPyTorch: 1.8.1', config=config_text,
        seed=0, exp_name=f'{library}_convmlp_{arch}.py', CLASSES=tuple(
            classes), epoch=12, iter=87960, time='Fri Sep 10 10:00:00 2021',
        mmcv_version='1.3.13')
    if library == 'mmdet':
        meta['mmdet_version'] = '2.16.0+1ab4c9e'
    else:
        meta['mmseg_version'] = '0.17.0+4c0d0e5'
        meta['PALETTE'] = [list(c) for c in palette]
    torch.save(dict(meta=meta, state_dict=state,
                    optimizer=dict(state={}, param_groups=[dict(lr=1e-6)])),
               path)
    return state
