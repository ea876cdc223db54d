"""ConvMLP checkpoint keys: pure conversion functions and strict loading.

The original release loaded its ImageNet weights with ``strict=False`` and
never called ``init_weights``, so a wrong file was silently ignored. Here
every backbone tensor must be found with its shape (the fit report of
:mod:`convmlp_mm.checkpoint.fit`); only the classifier's ``norm.*`` and
``head.*`` are dropped, with a log line. The conversion functions are
pure, so they are tested on their own and reused by
``tools/model_converters/convmlp2mmdet.py``.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.checkpoint import compare_state_dict, extract_state_dict
from convmlp_mm.models.arch_zoo import ARCH_ZOO

# The classifier's final LayerNorm and linear head: not part of the backbone.
CLASSIFIER_PREFIXES = ('norm.', 'head.')


def convert_official_keys(
        state_dict: Mapping[str, torch.Tensor],
        prefix: Optional[str] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', Dict[str, List[str]]]:
    """Turn an official ImageNet (or downstream) state dict into backbone keys.

    Strips ``module.``; with ``prefix`` keeps only the keys under it (e.g.
    ``'backbone.'`` of a detector); without, keeps the ``backbone.`` keys when
    there are any. Classifier keys (``norm.*``, ``head.*``) are dropped.

    Returns:
        The backbone state dict and the dropped keys, grouped by reason.
    """
    dropped: Dict[str, List[str]] = {'classifier': [], 'outside prefix': []}
    keys = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    if prefix is None and any(k.startswith('backbone.') for k in keys):
        prefix = 'backbone.'
    result = OrderedDict()
    for key, value in keys.items():
        if prefix:
            if not key.startswith(prefix):
                dropped['outside prefix'].append(key)
                continue
            key = key[len(prefix):]
        if key.startswith(CLASSIFIER_PREFIXES):
            dropped['classifier'].append(key)
            continue
        result[key] = value
    return result, dropped


def guess_arch(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name the zoo size a backbone state dict was made for, if any."""
    try:
        channels = state_dict['tokenizer.block.6.weight'].shape[0]
    except (KeyError, AttributeError, IndexError):
        return None
    conv_blocks = len({k.split('.')[2] for k in state_dict
                       if k.startswith('conv_stages.conv_blocks.')})
    blocks = [
        len({k.split('.')[3] for k in state_dict
             if k.startswith(f'stages.{i}.blocks.')}) for i in range(3)
    ]
    for name, arch in ARCH_ZOO.items():
        if (arch['channels'], arch['conv_blocks'], arch['blocks']) == \
                (channels, conv_blocks, blocks):
            return name
    return None


def arch_advice(model: nn.Module,
                state_dict: Mapping[str, torch.Tensor]) -> str:
    """When ``state_dict`` is a zoo size other than ``model``'s, say which
    and what to do; else ``''``."""
    found = guess_arch(state_dict)
    model_arch = getattr(model, 'arch_settings', None)
    if found is None or model_arch is None or ARCH_ZOO[found] == model_arch:
        return ''
    return (f'The checkpoint looks like ConvMLP-{found.upper()}: build the '
            f'backbone with arch="{found}", or use the checkpoint of the size '
            'you built.')


def load_backbone_checkpoint(model: nn.Module,
                             filename: str,
                             prefix: Optional[str] = None) -> None:
    """Load an official ImageNet checkpoint (or a backbone/detector one)
    into ``model`` strictly. See the module docstring for the rules."""
    checkpoint = CheckpointLoader.load_checkpoint(filename,
                                                  map_location='cpu')
    state_dict, dropped = convert_official_keys(
        extract_state_dict(checkpoint, filename), prefix)
    fit = compare_state_dict(model, state_dict)
    if not fit.fits:
        raise fit.error(
            f'Checkpoint "{filename}" does not fit this ConvMLP backbone',
            arch_advice(model, state_dict))
    model.load_state_dict(state_dict, strict=True)
    print_log(f'ConvMLP: loaded {len(state_dict)} backbone tensors from '
              f'{filename}', logger='current')
    if dropped['classifier']:
        print_log(f'ConvMLP: dropped the ImageNet classifier\'s '
                  f'{len(dropped["classifier"])} tensors (norm.*, head.*), '
                  'which the backbone does not use', logger='current')
    if dropped['outside prefix']:
        print_log(f'ConvMLP: ignored {len(dropped["outside prefix"])} tensors '
                  f'outside "{prefix or "backbone."}" (e.g. '
                  f'{dropped["outside prefix"][0]})', logger='current')
