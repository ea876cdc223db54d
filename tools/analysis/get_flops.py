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
        type=PureMLP
    # whole models, default input 800x1333 (detection) or 512x512 (ADE20K)
    python tools/analysis/get_flops.py \\
        configs/detection/retinanet_convmlp_s_fpn_1x_coco.py
    python tools/analysis/get_flops.py \\
        configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py --shape 512
"""
import argparse
import json
from typing import Dict, List, Optional, Sequence

from convmlp_mm_cli import CfgOptions, add_shape_argument, command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Params and MACs of a ConvMLP backbone (give its size: '
        's, m, l) or of a whole detector/segmentor (give a config).')
    parser.add_argument(
        'target', nargs='+',
        help='backbone sizes (s, m, l, small, medium, large) and/or config '
        'files')
    add_shape_argument(
        parser, 'input height [width]; default 224 for backbones, 800 1333 '
        'for detectors, 512 for segmentors')
    parser.add_argument(
        '--with-head', action='store_true',
        help='backbones only: count the ImageNet classifier (backbone + '
        'LayerNorm + 1000-way linear head), as the paper\'s Tables 1-3 do')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptions, default={},
        help='for configs: override settings (model.backbone.with_cp=True); '
        'for backbone sizes: the backbone\'s keyword arguments '
        '(type=PureMLP dwconv=True)')
    parser.add_argument('--json', help='also write the results to this file')
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.analysis import complexity, report_lines
    from convmlp_mm.cli import shape_of
    results = complexity(args.target, shape_of(args.shape), args.with_head,
                         args.cfg_options)
    print('\n'.join(report_lines(results)))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
