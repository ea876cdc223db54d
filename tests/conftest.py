"""Shared fixtures."""
from collections import OrderedDict

import pytest
import torch

from helpers import make_official_state_dict


@pytest.fixture
def official_checkpoint(tmp_path):
    """Factory writing an official-layout checkpoint; returns (path, state)."""

    def make(arch='s', wrap=None, prefix='', seed=0):
        state = make_official_state_dict(arch, seed)
        saved = OrderedDict((prefix + k, v) for k, v in state.items())
        if wrap:
            saved = {wrap: saved}
        path = tmp_path / f'convmlp_{arch}_{wrap or "plain"}_{seed}.pth'
        torch.save(saved, path)
        return str(path), state

    return make
