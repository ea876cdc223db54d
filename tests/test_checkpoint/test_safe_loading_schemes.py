"""Every scheme of mmengine's CheckpointLoader loads with weights_only=True,
offline: a hostile pickle placed in a private $TORCH_HOME/hub/checkpoints
under the file name a zoo scheme resolves to must not run.

File names from mmengine 0.10.7's hub lists (mmengine/hub/openmmlab.json:
open-mmlab://resnet50_v1c is resnet50_v1c-2cccc1ad.pth)."""
import ast
import os
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

import convmlp_mm  # noqa: F401  (routes CheckpointLoader)
from convmlp_mm.errors import CheckpointError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _RunsCode:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    home = tmp_path / 'torch_home'
    checkpoints = home / 'hub' / 'checkpoints'
    checkpoints.mkdir(parents=True)
    monkeypatch.setenv('TORCH_HOME', str(home))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))
    marker = tmp_path / 'MARKER'

    def place(file_name):
        path = checkpoints / file_name
        torch.save({'state_dict': {'w': torch.zeros(1)},
                    'payload': _RunsCode(marker)}, str(path))
        return str(path)

    return place, marker


ZOO = [
    ('open-mmlab://resnet50_v1c', 'resnet50_v1c-2cccc1ad.pth'),
    ('openmmlab://resnet50_v1c', 'resnet50_v1c-2cccc1ad.pth'),
    ('mmcls://vgg11', 'vgg11_batch256_imagenet_20210208-4271cd6c.pth'),
    ('https://example.invalid/ckpt/hostile.pth', 'hostile.pth'),
    ('http://example.invalid/ckpt/hostile.pth', 'hostile.pth'),
]


@pytest.mark.parametrize('name,file_name', ZOO)
def test_zoo_scheme_refuses_hostile_cached_file(hub, name, file_name):
    place, marker = hub
    path = place(file_name)
    with pytest.raises(CheckpointError, match='Refusing to load') as info:
        CheckpointLoader.load_checkpoint(name, map_location='cpu')
    assert not marker.exists(), f'{name}: the pickle ran its code'
    assert path in str(info.value) and name in str(info.value)


@pytest.mark.parametrize('name', ['torchvision://resnet50',
                                  'modelzoo://resnet50', 'pavi://x/y.pth'])
def test_scheme_without_its_package_is_a_clear_error(hub, name):
    # torchvision and pavi are not installed (docs/deployment.md,
    # docs/reliability.md): the scheme cannot resolve; it must fail
    # cleanly, not run the cached files torchvision's zoo names
    # (resnet50-19c8e357.pth).
    place, marker = hub
    place('resnet50-19c8e357.pth')
    place('resnet50-0676ba61.pth')
    with pytest.raises(CheckpointError, match='not installed') as info:
        CheckpointLoader.load_checkpoint(name, map_location='cpu')
    assert name in str(info.value)
    assert not marker.exists()


def test_scheme_registered_later_is_safe_too(hub, tmp_path):
    """A third-party scheme that asks torch for weights_only=False."""
    place, marker = hub
    path = place('third_party.pth')

    def load_from_thirdparty(filename, map_location=None):
        return torch.load(path, map_location=map_location, weights_only=False)

    CheckpointLoader.register_scheme('thirdparty://')(load_from_thirdparty)
    try:
        with pytest.raises(CheckpointError, match='Refusing') as info:
            CheckpointLoader.load_checkpoint('thirdparty://x')
        assert path in str(info.value)
        # Put into the table by hand, bypassing register_scheme: the one
        # entry point still forces weights_only.
        CheckpointLoader._schemes['thirdparty://'] = load_from_thirdparty
        with pytest.raises(CheckpointError, match='Refusing'):
            CheckpointLoader.load_checkpoint('thirdparty://x')
    finally:
        CheckpointLoader._schemes.pop('thirdparty://', None)
    assert not marker.exists()
    assert torch.load is torch.serialization.load  # never replaced
    # torch's switch is on only during a load.
    assert 'TORCH_FORCE_WEIGHTS_ONLY_LOAD' not in os.environ


def test_the_entry_point_is_guarded_and_nothing_private_is_patched():
    from mmengine.runner import checkpoint as mmengine_checkpoint
    loader = CheckpointLoader.load_checkpoint
    assert getattr(loader, '_convmlp_weights_only', False)
    # mmengine's own lookups and its zoo loaders are untouched.
    assert not hasattr(CheckpointLoader._get_checkpoint_loader,
                       '_convmlp_weights_only')
    assert CheckpointLoader._schemes['open-mmlab://'] is \
        mmengine_checkpoint.load_from_openmmlab


def test_a_switch_set_by_the_user_is_restored(hub, monkeypatch):
    place, marker = hub
    place('resnet50_v1c-2cccc1ad.pth')
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(CheckpointError, match='Refusing'):
        CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c')
    assert not marker.exists()
    assert os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] == '1'


def test_safe_scheme_still_loads_plain_weights(hub, tmp_path, monkeypatch):
    home = os.environ['TORCH_HOME']
    path = osp.join(home, 'hub', 'checkpoints', 'resnet50_v1c-2cccc1ad.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, path)
    ckpt = CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c')
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


def _unsafe_calls(path):
    """Calls in ``path`` that unpickle without ``weights_only=True``."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in ('pickle.load', 'pickle.loads'):
            found.append(f'{path}:{node.lineno}: {name}')
        elif name.endswith(('torch.load', 'serialization.load',
                            'load_state_dict_from_url', 'load_url')):
            safe = any(k.arg == 'weights_only' and isinstance(
                k.value, ast.Constant) and k.value.value is True
                for k in node.keywords)
            if not safe:
                found.append(f'{path}:{node.lineno}: {name}')
    return found


def test_no_unsafe_unpickling_in_the_project():
    """Every torch.load / torch.hub load in the package and the tools
    passes weights_only=True, and nothing calls pickle.load (read from the
    source, so a new call fails here)."""
    offenders = []
    for top in ('convmlp_mm', 'tools'):
        for root, _, files in os.walk(osp.join(REPO, top)):
            offenders += [c for name in files if name.endswith('.py')
                          for c in _unsafe_calls(osp.join(root, name))]
    assert not offenders, '\n'.join(offenders)
