"""Test helpers: official-layout checkpoints made from the key list of the
release's ImageNet checkpoints
(tests/data/official_imagenet_checkpoint_layout.json)."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
from collections import OrderedDict

import torch

TESTS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TESTS)
DATA = osp.join(TESTS, 'data')


def load_tool(relative_path: str):
    """A script under tools/ as a module (the tools are scripts, not a
    package), e.g. ``load_tool('tools/train.py').main(argv)``."""
    path = osp.join(REPO, relative_path)
    name = 'tool_' + relative_path.replace('/', '_')[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
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


def tree_digest(root: str) -> dict:
    """SHA-1 of every file under ``root``, by relative path: two folders
    with equal digests hold the same bytes."""
    digest = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digest[osp.relpath(path, root)] = hashlib.sha1(
                    f.read()).hexdigest()
    return digest
