"""Test helpers: official-layout checkpoints made from the key list of the
release's ImageNet checkpoints (tests/data, copied from FACTS.md's JSON)."""
import json
import os.path as osp
from collections import OrderedDict

import torch

DATA = osp.join(osp.dirname(__file__), 'data')
LAYOUT_JSON = osp.join(DATA, 'official_imagenet_checkpoint_layout.json')


def official_layout(arch: str):
    with open(LAYOUT_JSON) as f:
        return json.load(f)[arch]


def make_official_state_dict(arch: str, seed: int = 0) -> 'OrderedDict':
    """Random tensors with the official checkpoint's keys and shapes."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in official_layout(arch):
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state
