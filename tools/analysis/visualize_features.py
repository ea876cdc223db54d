"""Feature maps of the four ConvMLP levels (the paper's Figure 4): one PNG
per image, the input and levels F1-F4, each reduced by ``--mode`` (what each
mode draws: :mod:`convmlp_mm.analysis.features`).

Examples::

    # ConvMLP-M at the paper's 1024x1024 with the official ImageNet weights
    python tools/analysis/visualize_features.py m demo.jpg --shape 1024 \\
        --checkpoint convmlp_m_imagenet.pth
    # the backbone of a trained detector, from its config and checkpoint
    python tools/analysis/visualize_features.py \\
        configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py images/ \\
        --checkpoint work_dirs/demo/retinanet/epoch_12.pth --mode pca
"""
import argparse
from typing import Dict, List, Optional, Sequence

from convmlp_mm_cli import CfgOptions, add_shape_argument, command

# convmlp_mm.analysis.MODES, written out so that --help answers before torch
# loads (tests/test_tools/test_tool_startup.py compares them).
MODES = ('mean', 'max', 'topk', 'pca')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw the four ConvMLP feature levels of some images.')
    parser.add_argument(
        'target', help='backbone size (s, m, l) or a detector/segmentor '
        'config with a ConvMLP backbone')
    parser.add_argument('images', nargs='+', help='image files or folders')
    parser.add_argument(
        '--checkpoint', help='official ImageNet, backbone-only, or '
        'detector/segmentor checkpoint (its backbone.* tensors); without '
        'it the weights are random and the picture says so')
    add_shape_argument(
        parser, 'resize images to height [width] first (the paper: 1024); '
        'default: keep their size')
    parser.add_argument('--mode', choices=MODES, default='mean')
    parser.add_argument('--topk', type=int, default=4,
                        help='channels per level in --mode topk')
    parser.add_argument('--panel-width', type=int, default=256)
    parser.add_argument('--out-dir', default='work_dirs/feature_maps')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptions, default={},
        help='config overrides, or ConvMLP keyword arguments for a size '
        '(e.g. conv_stage=False downsample=patch_merging dwconv=False)')
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.analysis import visualize_features
    from convmlp_mm.cli import shape_of
    results = visualize_features(args.target, args.images, args.out_dir,
                                 args.checkpoint, shape_of(args.shape),
                                 args.mode, args.topk, args.panel_width,
                                 args.cfg_options)
    for result in results:
        print(f'{result["png"]}  levels {result["levels"]}')
    return results


if __name__ == '__main__':
    main()
