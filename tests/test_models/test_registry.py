"""The ConvMLP and PureMLP classes, each registered in both mmdet's and
mmseg's MODELS."""
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

import convmlp_mm
from convmlp_mm import ConvMLP
from convmlp_mm.models import BACKBONES, PureMLP, backbone_class


@pytest.mark.parametrize('cls', [ConvMLP, PureMLP])
@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_from_registry(scope, cls):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    assert registry.get(cls.__name__) is cls
    # DefaultScope is process-wide: set it for this test only.
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(
            dict(type=cls.__name__, arch='s', out_indices=(3, )))
    assert type(model) is cls
    assert model(torch.rand(1, 3, 32, 32))[0].shape == (1, 512, 1, 1)


def test_backbone_class_of_a_config_type():
    assert BACKBONES == {'ConvMLP': ConvMLP, 'PureMLP': PureMLP}
    for type_ in ('PureMLP', 'mmdet.PureMLP', 'mmseg.PureMLP', PureMLP):
        assert backbone_class(type_) is PureMLP
    for type_ in ('ResNet', None, 3, torch.nn.Linear):
        assert backbone_class(type_) is None


def test_registered_in_both():
    assert convmlp_mm.REGISTERED_IN == ('mmdet.registry', 'mmseg.registry')


def test_config_typo_in_backbone_argument():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    with pytest.raises(TypeError, match='"drop_path" \\(did you mean '
                       '"drop_path_rate"\\?\\)'):
        MODELS.build(dict(type='ConvMLP', arch='s', drop_path=0.1))


def test_custom_imports_is_all_a_config_needs(tmp_path):
    """A fresh interpreter that never imports convmlp_mm itself."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['convmlp_mm'], "
                   "allow_failed_imports=False)\n"
                   "backbone = dict(type='ConvMLP', arch='m')\n")
    code = (
        'from mmengine.config import Config\n'
        f'cfg = Config.fromfile({str(cfg)!r})\n'
        'from mmseg.registry import MODELS\n'
        'from mmengine.registry import init_default_scope\n'
        "init_default_scope('mmseg')\n"
        'm = MODELS.build(cfg.backbone)\n'
        'print(type(m).__module__, m.out_channels)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'convmlp_mm.models.backbones.convmlp [64, 128, 256, 512]' in \
        out.stdout
