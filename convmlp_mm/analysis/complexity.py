"""Parameters and MACs of a ConvMLP backbone, or of a whole detector or
segmentor built from a config, at a given input size
(``tools/analysis/get_flops.py``).

Counted with :mod:`mmengine.analysis` (``FlopAnalyzer`` traces the model
once; like fvcore it counts one fused multiply-add as one "flop", i.e. the
numbers are MACs, the unit of the paper's GMACs).
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm

from convmlp_mm.config import build_model
from convmlp_mm.errors import ConfigError
from convmlp_mm.models import (
    ARCH_ALIASES,
    ARCH_ZOO,
    BACKBONES,
    ConvMLPBase,
    backbone_class,
)

__all__ = [
    'DEFAULT_SHAPES', 'ImageNetClassifier', 'backbone_complexity',
    'complexity', 'count', 'library_of', 'model_complexity', 'report_lines'
]

# Input sizes (height, width) used when no shape is given.
DEFAULT_SHAPES = {'backbone': (224, 224), 'mmdet': (800, 1333),
                  'mmseg': (512, 512)}


class ImageNetClassifier(nn.Module):
    """The original release's classifier around the backbone: LayerNorm on
    the last level, global average pooling, a linear head. Its parameters
    (``norm``, ``head``) are those of the official checkpoints."""

    def __init__(self, backbone: ConvMLPBase, num_classes: int = 1000):
        super().__init__()
        self.backbone = backbone
        dim = backbone.out_channels[-1]
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = self.backbone(x)[-1].permute(0, 2, 3, 1)
        return self.head(self.norm(last).mean(dim=(1, 2)))


def count(model: nn.Module, inputs: tuple) -> Dict[str, object]:
    """Params and MACs of ``model(*inputs)``, by top-level module too."""
    model.eval()
    analyzer = FlopAnalyzer(model, inputs)
    # Ops without a handle (e.g. im2col in patch merging, max-pool, GELU)
    # move data or are element-wise: listed, not counted, as in fvcore.
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        macs = analyzer.total()
        by_module = analyzer.by_module()
    params = parameter_count(model)
    return dict(
        params=params[''], macs=macs,
        unsupported_ops=dict(analyzer.unsupported_ops()),
        by_module={name: dict(params=params.get(name, 0),
                              macs=by_module.get(name, 0))
                   for name, _ in model.named_children()})


def backbone_complexity(arch: Union[str, dict],
                        shape: Tuple[int, int] = (224, 224),
                        with_head: bool = False,
                        **backbone_kwargs) -> Dict[str, object]:
    """Params and MACs of ``ConvMLP(arch, **backbone_kwargs)`` on one
    ``shape`` image; ``with_head`` adds the ImageNet classifier head.
    ``type='PureMLP'`` among the keyword arguments counts the Pure-MLP
    baseline (its own switches then apply: ``conv_stage``, ``downsample``,
    ``dwconv``)."""
    kwargs = dict(backbone_kwargs)
    name = kwargs.pop('type', 'ConvMLP')
    backbone = backbone_class(name)
    if backbone is None:
        raise ConfigError(f'type={name}: the backbones are '
                          f'{", ".join(BACKBONES)}.')
    torch.manual_seed(0)
    model: nn.Module = backbone(arch=arch, **kwargs)
    if with_head:
        model = ImageNetClassifier(model)
    result = count(model, (torch.rand(1, 3, *shape), ))
    result.update(model=backbone.__name__ +
                  (' classifier' if with_head else ''),
                  arch=arch, input_shape=list(shape),
                  backbone_kwargs=backbone_kwargs)
    return result


def library_of(cfg: Config) -> str:
    """``'mmdet'`` or ``'mmseg'``: the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ConfigError(
            f'The config\'s default_scope is {scope!r}; get_flops.py measures '
            f'mmdet detectors and mmseg segmentors, so it must be "mmdet" or '
            f'"mmseg" (our configs inherit it from their mmdet::/mmseg:: '
            f'base).')
    return scope


def _data_sample(library: str, metainfo: dict):
    if library == 'mmdet':
        from mmdet.structures import DetDataSample as DataSample
    else:
        from mmseg.structures import SegDataSample as DataSample
    return DataSample(metainfo=metainfo)


def model_complexity(cfg: Union[str, Config],
                     shape: Optional[Tuple[int, int]] = None
                     ) -> Dict[str, object]:
    """Params and MACs of the whole detector or segmentor of ``cfg`` and of
    its backbone, on one random ``shape`` image (default: 800x1333 for
    detectors, 512x512 for segmentors) passed through the model's data
    preprocessor (which pads detection inputs to a multiple of 32).

    Detectors run in ``tensor`` mode as in mmdet's own get_flops: raw head
    outputs, no NMS; Mask R-CNN's RoI heads run on the RPN's proposals, so
    their share depends on the image (the seed is fixed)."""
    if isinstance(cfg, str):
        if not osp.isfile(cfg):
            raise FileNotFoundError(f'Config file not found: {cfg}')
        cfg = Config.fromfile(cfg)
    library = library_of(cfg)
    shape = shape or DEFAULT_SHAPES[library]
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_model(cfg, library))
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training-only, as in mmseg's tool
    height, width = shape
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    sample = _data_sample(library, dict(
        img_shape=(height, width), ori_shape=(height, width),
        pad_shape=(height, width), scale_factor=(1., 1.)))
    model.eval()
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False)
    inputs, samples = data['inputs'], data['data_samples']
    forward = model.forward

    def tensor_forward(batch: torch.Tensor):
        return forward(batch, samples, mode='tensor')

    model.forward = tensor_forward
    try:
        result = count(model, (inputs, ))
    finally:
        del model.forward
    result.update(model=type(model).__name__, library=library,
                  input_shape=[height, width],
                  padded_shape=list(inputs.shape[-2:]),
                  backbone=result['by_module'].get('backbone'))
    rpn_cfg = (cfg.model.get('test_cfg') or {}).get('rpn')
    if getattr(model, 'roi_head', None) is not None and rpn_cfg:
        result['note'] = (
            f'RoI heads counted on the RPN\'s proposals (at most '
            f'{rpn_cfg.get("max_per_img")}; set '
            f'model.test_cfg.rpn.max_per_img to change)')
    return result


def complexity(targets: Sequence[str],
               shape: Optional[Tuple[int, int]] = None,
               with_head: bool = False,
               cfg_options: Optional[dict] = None
               ) -> List[Dict[str, object]]:
    """Params and MACs of each target: a backbone size (``s``, ``m``, ``l``,
    ``small``...; ``cfg_options`` are then the backbone's keyword arguments,
    ``type=PureMLP`` for the Pure-MLP baseline) or a
    detector/segmentor config file (``cfg_options`` override the config).
    ``shape`` defaults to :data:`DEFAULT_SHAPES` per kind of target."""
    cfg_options = dict(cfg_options or {})
    arch_names = set(ARCH_ZOO) | set(ARCH_ALIASES)
    results = []
    for target in targets:
        if target.lower() in arch_names:
            results.append(backbone_complexity(
                target.lower(), shape or DEFAULT_SHAPES['backbone'],
                with_head, **cfg_options))
        elif osp.isfile(target):
            if with_head:
                raise ConfigError('--with-head applies to backbone sizes '
                                  '(s, m, l), not to configs.')
            cfg = Config.fromfile(target)
            cfg.merge_from_dict(cfg_options)
            result = model_complexity(
                cfg, shape or DEFAULT_SHAPES[library_of(cfg)])
            result['config'] = target
            results.append(result)
        else:
            raise ConfigError(
                f'{target!r} is neither a backbone size '
                f'({", ".join(sorted(arch_names))}) nor an existing config '
                f'file.')
    return results


def _fmt(value: float, unit: float, suffix: str) -> str:
    return f'{value / unit:.3f}{suffix}'


def report_lines(results: List[Dict[str, object]]) -> List[str]:
    """A small fixed-width table of the results."""
    rows = [('model', 'input', 'params', 'MACs')]
    for r in results:
        shape = 'x'.join(map(str, r['input_shape']))
        if r.get('padded_shape') and r['padded_shape'] != r['input_shape']:
            shape += ' (padded ' + 'x'.join(map(str, r['padded_shape'])) + ')'
        if r.get('config'):
            name = osp.splitext(osp.basename(r['config']))[0]
        else:
            name = r['model'] + (f' ({r["arch"]})' if 'arch' in r else '')
        rows.append((name, shape, _fmt(r['params'], 1e6, 'M'),
                     _fmt(r['macs'], 1e9, 'G')))
        if r.get('backbone'):
            rows.append(('  of which backbone', '',
                         _fmt(r['backbone']['params'], 1e6, 'M'),
                         _fmt(r['backbone']['macs'], 1e9, 'G')))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in rows]
    for r in results:
        if r.get('note'):
            lines.append(f'{r.get("config", r["model"])}: {r["note"]}')
    unsupported = sorted({op for r in results for op in r['unsupported_ops']})
    if unsupported:
        lines.append('Not counted (no multiply-adds, or no handle in '
                     'mmengine.analysis): ' + ', '.join(unsupported))
    return lines
