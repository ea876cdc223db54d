"""Parameters and MACs of a ConvMLP backbone, or of a whole detector or
segmentor built from one of our configs, at a given input size.

Counted with :mod:`mmengine.analysis` (``FlopAnalyzer`` traces the model
once; like fvcore it counts one fused multiply-add as one "flop", i.e. the
numbers are MACs, the unit of the paper's GMACs).

Examples::

    # backbone alone (paper Table 3: 2.4G / 3.9G / 9.9G at 224x224)
    python tools/analysis/get_flops.py s
    python tools/analysis/get_flops.py l --shape 1024
    # the ImageNet classifier of Table 2 (backbone + LayerNorm + 1000-way
    # head), here the Pure-MLP baseline (7.88M params)
    python tools/analysis/get_flops.py s --with-head --cfg-options \\
        conv_stage=False downsample=patch_merging dwconv=False
    # whole models, default input 800x1333 (detection) or 512x512 (ADE20K)
    python tools/analysis/get_flops.py \\
        configs/detection/retinanet_convmlp_s_fpn_1x_coco.py
    python tools/analysis/get_flops.py \\
        configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py --shape 512
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config, DictAction

from convmlp_mm.models import ARCH_ALIASES, ARCH_ZOO, ConvMLP
from convmlp_mm.datasets.image_files import parse_shape
from convmlp_mm.cli import command

# Input sizes (height, width) used when --shape is not given.
DEFAULT_SHAPES = {'backbone': (224, 224), 'mmdet': (800, 1333),
                  'mmseg': (512, 512)}


class ImageNetClassifier(nn.Module):
    """The original release's classifier around the backbone: LayerNorm on
    the last level, global average pooling, a linear head. Its parameters
    (``norm``, ``head``) are those of the official checkpoints."""

    def __init__(self, backbone: ConvMLP, num_classes: int = 1000):
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
    ``shape`` image; ``with_head`` adds the ImageNet classifier head."""
    torch.manual_seed(0)
    model: nn.Module = ConvMLP(arch=arch, **backbone_kwargs)
    if with_head:
        model = ImageNetClassifier(model)
    result = count(model, (torch.rand(1, 3, *shape), ))
    result.update(model='ConvMLP' + (' classifier' if with_head else ''),
                  arch=arch, input_shape=list(shape),
                  backbone_kwargs=backbone_kwargs)
    return result


def _library(cfg: Config) -> str:
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(
            f'The config\'s default_scope is {scope!r}; get_flops.py measures '
            f'mmdet detectors and mmseg segmentors, so it must be "mmdet" or '
            f'"mmseg" (our configs inherit it from their mmdet::/mmseg:: '
            f'base).')
    return scope


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
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope

    if isinstance(cfg, str):
        if not osp.isfile(cfg):
            raise FileNotFoundError(f'Config file not found: {cfg}')
        cfg = Config.fromfile(cfg)
    library = _library(cfg)
    shape = shape or DEFAULT_SHAPES[library]
    scope_name = f'get_flops-{library}-{id(cfg)}'
    with DefaultScope.overwrite_default_scope(library):
        if DefaultScope.get_current_instance() is None:
            DefaultScope.get_instance(scope_name, scope_name=library)
        if library == 'mmdet':
            from mmdet.registry import MODELS
            from mmdet.structures import DetDataSample as DataSample
        else:
            from mmseg.registry import MODELS
            from mmseg.structures import SegDataSample as DataSample
        torch.manual_seed(0)
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training-only, as in mmseg's tool
    height, width = shape
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    sample = DataSample(metainfo=dict(
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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Params and MACs of a ConvMLP backbone (give its size: '
        's, m, l) or of a whole detector/segmentor (give a config).')
    parser.add_argument(
        'target', nargs='+',
        help='backbone sizes (s, m, l, small, medium, large) and/or config '
        'files')
    parser.add_argument(
        '--shape', type=int, nargs='+',
        help='input height [width]; default 224 for backbones, 800 1333 for '
        'detectors, 512 for segmentors')
    parser.add_argument(
        '--with-head', action='store_true',
        help='backbones only: count the ImageNet classifier (backbone + '
        'LayerNorm + 1000-way linear head), as the paper\'s Tables 1-3 do')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='for configs: override settings (model.backbone.dwconv=False); '
        'for backbone sizes: ConvMLP keyword arguments (dwconv=False)')
    parser.add_argument('--json', help='also write the results to this file')
    return parser.parse_args(argv)


def _shape(shape: Optional[Sequence[int]],
           default: Tuple[int, int]) -> Tuple[int, int]:
    if not shape:
        return default
    try:
        return parse_shape(shape)
    except ValueError as exc:
        raise SystemExit(f'error: --shape: {exc}')


@command
def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    args = parse_args(argv)
    arch_names = set(ARCH_ZOO) | set(ARCH_ALIASES)
    results = []
    for target in args.target:
        if target.lower() in arch_names:
            results.append(backbone_complexity(
                target.lower(), _shape(args.shape, (224, 224)),
                args.with_head, **args.cfg_options))
        elif osp.isfile(target):
            if args.with_head:
                raise SystemExit('--with-head applies to backbone sizes '
                                 '(s, m, l), not to configs.')
            cfg = Config.fromfile(target)
            cfg.merge_from_dict(args.cfg_options)
            result = model_complexity(
                cfg, _shape(args.shape, DEFAULT_SHAPES[_library(cfg)]))
            result['config'] = target
            results.append(result)
        else:
            raise SystemExit(
                f'{target!r} is neither a backbone size '
                f'({", ".join(sorted(arch_names))}) nor an existing config '
                f'file.')
    print('\n'.join(report_lines(results)))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
