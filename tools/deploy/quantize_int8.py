"""int8 for CPUs: quantize an exported .onnx (ONNX Runtime's static
quantization, QDQ, calibrated on images through the config's own test
pipeline), then compare it with the fp32 file (or, with --checkpoint, with
PyTorch) on a few test images.

Examples::

    # calibrated on 16 images spread over the config's training set
    python tools/deploy/quantize_int8.py \\
        configs/demo/fpn_convmlp_s_demo_shapes.py semfpn.onnx \\
        semfpn_int8.onnx --data-root data/synthetic_ade20k
    # on 32 images of a folder, quantizing the convolutions only
    python tools/deploy/quantize_int8.py CONFIG model.onnx model_int8.onnx \\
        --calibration-dir my_images --calibration-images 32 --ops Conv

It prints the file sizes and the parity against fp32: the largest raw
output difference (relative to the largest fp32 output) and, through the
model's own post-processing, the detections of fp32 (score >= 0.3) that
int8 finds too (same class, IoU >= 0.5) or the share of equal pixels.
"""
import argparse
import copy
import os.path as osp
from typing import Optional, Sequence

from convmlp_mm_cli import add_cfg_options, command

# convmlp_mm.deploy.QUANTIZED_OPS, written out so that --help answers before
# torch loads (tests/test_tools/test_tool_startup.py compares them).
QUANTIZED_OPS = ['Conv', 'MatMul', 'Gemm', 'Relu', 'Add', 'MaxPool',
                 'Resize']


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the config the .onnx was exported '
                        'from')
    parser.add_argument('onnx', help='the fp32 .onnx from '
                        'tools/deploy/export_onnx.py')
    parser.add_argument('out', help='the int8 .onnx to write')
    parser.add_argument('--data-root', help='the dataset folder (as '
                        'tools/train.py --data-root)')
    parser.add_argument('--calibration-dir', help='calibrate on the images '
                        'of this folder (default: the config\'s training '
                        'set)')
    parser.add_argument('--calibration-images', type=int, default=16,
                        metavar='N', help='images calibrated on, spread '
                        'over the set (default: 16)')
    parser.add_argument('--ops', nargs='+', default=QUANTIZED_OPS,
                        metavar='OP', help='op types quantized (default: '
                        f'{" ".join(QUANTIZED_OPS)})')
    parser.add_argument('--parity-images', type=int, default=4, metavar='N',
                        help='test-set images compared with fp32 '
                        '(default: 4; 0: no comparison)')
    parser.add_argument('--checkpoint', metavar='PTH',
                        help='compare int8 with PyTorch running this '
                        'checkpoint (the one the .onnx was exported from) '
                        'instead of with the fp32 .onnx')
    add_cfg_options(parser, 'model.test_cfg.score_thr=0.1')
    return parser.parse_args(argv)


def _mb(path: str) -> str:
    return f'{osp.getsize(path) / 2**20:.2f} MB'


@command
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.config import load_config, set_data_root
    from convmlp_mm.deploy import (
        calibration_inputs,
        check_ops,
        compare_int8,
        model_from_config,
        pick_images,
        quantize_int8,
        read_onnx,
    )
    from convmlp_mm.errors import ConfigError
    if not args.out.endswith('.onnx'):
        raise ConfigError(f'{args.out}: the output must end in .onnx')
    if osp.abspath(args.out) == osp.abspath(args.onnx):
        raise ConfigError(f'{args.out}: write the int8 file beside the '
                          'fp32 one, not over it')
    read_onnx(args.onnx)  # a damaged or foreign file stops here, at once
    check_ops(args.ops)
    cfg = load_config(args.config, args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    images = pick_images(cfg, args.calibration_images, args.calibration_dir)
    where = args.calibration_dir or 'the training set'
    print(f'calibrating on {len(images)} images of {where}; quantizing '
          f'{" ".join(args.ops)}')
    model = model_from_config(copy.deepcopy(cfg), args.config)
    quantize_int8(args.onnx, args.out, calibration_inputs(model, cfg, images),
                  op_types=args.ops)
    print(f'wrote {args.out}: {_mb(args.out)} (fp32 {args.onnx}: '
          f'{_mb(args.onnx)})')
    report = dict(out=args.out, calibration=images,
                  size_fp32=osp.getsize(args.onnx),
                  size_int8=osp.getsize(args.out))
    if args.parity_images > 0:
        test = pick_images(cfg, args.parity_images,
                           loader='test_dataloader')
        parity = compare_int8(cfg, args.onnx, args.out, test,
                              checkpoint=args.checkpoint)
        reference = 'PyTorch' if args.checkpoint else 'fp32'
        line = (f'int8 vs {reference} on {parity["images"]} test images: '
                f'max rel. diff of raw outputs {parity["max_rel"]:.3g}; ')
        if 'pixel_agreement' in parity:
            line += (f'{100 * parity["pixel_agreement"]:.2f}% of pixels '
                     'labelled the same')
        else:
            det = parity['detections']
            line += (f'{det["matched"]} of {det["reference"]} {reference} '
                     f'detections (score >= {det["score_thr"]:g}) found by '
                     f'int8 (same class, IoU >= 0.5); int8 has '
                     f'{det["other"]}')
        print(line)
        report['parity'] = parity
    return report


if __name__ == '__main__':
    main()
