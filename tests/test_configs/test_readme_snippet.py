"""The README's "Use" snippet, pasted under each of the three upstream bases
our configs use, builds; under the mmseg base without its commented line the
error names the segmentor-level pretrained and the fix."""
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import convmlp_mm  # noqa: F401  (registers ConvMLP)

from helpers import REPO

BASES = {
    'retinanet': ('mmdet', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'),
    'mask_rcnn': ('mmdet', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    'sem_fpn': ('mmseg', 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'),
}
PRETRAINED_LINE = '# pretrained=None,'


def readme_snippet() -> str:
    with open(f'{REPO}/README.md', encoding='utf-8') as f:
        text = f.read()
    use = text.split('\n## Use\n', 1)[1]
    return re.search(r'```python\n(.*?)```', use, re.S).group(1)


def build(tmp_path, base: str, scope: str, snippet: str):
    path = tmp_path / 'snippet_config.py'
    path.write_text(f'_base_ = {base!r}\n' + snippet)
    cfg = Config.fromfile(str(path))
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('name', sorted(BASES))
def test_readme_snippet_builds_under_each_upstream_base(tmp_path, name):
    scope, base = BASES[name]
    snippet = readme_snippet()
    assert PRETRAINED_LINE in snippet
    if scope == 'mmseg':
        # What the snippet's comment tells an mmseg user to do.
        snippet = snippet.replace(PRETRAINED_LINE, 'pretrained=None,')
    model = build(tmp_path, base, scope, snippet)
    assert type(model.backbone).__name__ == 'ConvMLP'
    # Paper Table 1: ConvMLP-S emits 64/128/256/512 channels.
    assert model.backbone.arch_settings['channels'] == 64


def test_mmseg_pretrained_error_names_its_source_and_fix(tmp_path):
    scope, base = BASES['sem_fpn']
    with pytest.raises(ValueError) as info:
        build(tmp_path, base, scope, readme_snippet())
    message = str(info.value)
    # mmseg's base sets model.pretrained='open-mmlab://resnet50_v1c'.
    assert 'open-mmlab://resnet50_v1c' in message
    assert 'segmentor-level model.pretrained' in message
    assert 'model.pretrained=None' in message
