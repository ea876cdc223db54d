"""ConvMLP checkpoint keys: pure conversion functions and strict loading.

The original release loaded its ImageNet weights with ``strict=False`` and
never called ``init_weights``, so a wrong file was silently ignored. Here
every backbone tensor must be found with its shape; only the classifier's
``norm.*`` and ``head.*`` are dropped, with a log line. The conversion
functions are pure, so they are tested on their own and reused by
``tools/model_converters/convmlp2mmdet.py``.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.models.arch_zoo import ARCH_ZOO
from convmlp_mm.errors import CheckpointMismatchError  # noqa: F401

# The classifier's final LayerNorm and linear head: not part of the backbone.
CLASSIFIER_PREFIXES = ('norm.', 'head.')
# Containers that training frameworks wrap a state dict in.
WRAPPER_KEYS = ('state_dict', 'model')


def extract_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """Unwrap ``{'state_dict': ...}`` / ``{'model': ...}`` containers."""
    for _ in range(3):  # an mmengine checkpoint of a wrapped model nests once
        if isinstance(checkpoint, Mapping):
            inner = next((checkpoint[k] for k in WRAPPER_KEYS
                          if isinstance(checkpoint.get(k), Mapping)), None)
            if inner is not None:
                checkpoint = inner
                continue
        break
    keys = list(checkpoint)[:5] if isinstance(checkpoint, Mapping) else []
    if not isinstance(checkpoint, Mapping) or not checkpoint or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointMismatchError(
            'Checkpoint is not a state dict of tensors (nor one wrapped in '
            f'{" or ".join(WRAPPER_KEYS)}); got '
            f'{type(checkpoint).__name__} with keys {keys}.')
    return OrderedDict(checkpoint)


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


def check_state_dict_fits(model: nn.Module,
                          state_dict: Mapping[str, torch.Tensor],
                          name: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` listing every key that is
    missing, unexpected or of the wrong shape."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    if not (missing or unexpected or wrong_shape):
        return

    def listing(title, items, limit=10):
        more = f' ... and {len(items) - limit} more' if len(items) > limit \
            else ''
        return (f'\n  {title} ({len(items)}): ' +
                ', '.join(items[:limit]) + more)

    arch_hint = ''
    found = guess_arch(state_dict)
    model_arch = getattr(model, 'arch_settings', None)
    if found is not None and model_arch is not None and \
            ARCH_ZOO[found] != model_arch:
        arch_hint = (f'\n  The checkpoint looks like ConvMLP-{found.upper()}:'
                     f' build the backbone with arch="{found}", or use the '
                     'checkpoint of the size you built.')
    raise CheckpointMismatchError(
        f'{name} does not fit this ConvMLP backbone.' +
        (listing('missing keys', missing) if missing else '') +
        (listing('unexpected keys', unexpected) if unexpected else '') +
        (listing('shape mismatches', wrong_shape) if wrong_shape else '') +
        arch_hint)


def load_backbone_checkpoint(model: nn.Module,
                             filename: str,
                             prefix: Optional[str] = None) -> None:
    """Load an official ImageNet checkpoint (or a backbone/detector one)
    into ``model`` strictly. See the module docstring for the rules."""
    checkpoint = CheckpointLoader.load_checkpoint(filename,
                                                  map_location='cpu')
    state_dict, dropped = convert_official_keys(
        extract_state_dict(checkpoint), prefix)
    check_state_dict_fits(model, state_dict, f'Checkpoint "{filename}"')
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
