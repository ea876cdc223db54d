"""Export a ConvMLP detector, segmentor or bare backbone to ONNX (torch's
dynamo exporter, dynamic height and width) and check it before saying so:
the ONNX checker, then ONNX Runtime against PyTorch on random inputs at the
traced size and at a second one.

Examples::

    python tools/deploy/export_onnx.py \\
        configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py \\
        work_dirs/demo/retinanet/epoch_12.pth retinanet.onnx
    python tools/deploy/export_onnx.py s none convmlp_s.onnx --shape 224 224

What goes into the graph for each model: docs/deployment.md.
"""
import argparse
from typing import Optional, Sequence

from convmlp_mm_cli import add_model_arguments, command

# convmlp_mm.deploy.DEFAULT_TOLERANCE, written out so that --help answers
# before torch loads (tests/test_tools/test_tool_startup.py compares them).
DEFAULT_TOLERANCE = 1e-4


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_model_arguments(
        parser, 'detector or segmentor config, or a backbone size (s, m, l)',
        'its .pth (from tools/train.py; for a size: an ImageNet checkpoint)',
        cfg_example='model.test_cfg.score_thr=0.1')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512],
                        metavar=('H', 'W'), help='size traced at (the '
                        'graph accepts any height and width)')
    parser.add_argument('--check-shape', type=int, nargs=2,
                        metavar=('H', 'W'), help='second size compared '
                        '(default: H+64, W+96)')
    parser.add_argument('--tolerance', type=float, default=DEFAULT_TOLERANCE,
                        help='largest |ONNX Runtime - PyTorch| allowed, as '
                        'a fraction of the largest |PyTorch output|')
    args = parser.parse_args(argv)
    if not args.out.endswith('.onnx'):
        raise SystemExit(f'error: {args.out}: the output must end in '
                         '.onnx')
    if min(args.shape) < 32:
        raise SystemExit(f'error: --shape {args.shape[0]} {args.shape[1]} '
                         'is too small: give at least 32 32')
    return args


@command
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.checkpoint import save_checkpoint_atomically
    from convmlp_mm.deploy import (
        check_onnx,
        export_onnx,
        load_model,
        model_kind,
        roi_head_path,
    )
    second = tuple(args.check_shape) if args.check_shape else \
        (args.shape[0] + 64, args.shape[1] + 96)
    model, cfg = load_model(args.config, args.checkpoint, args.cfg_options)
    kind = model_kind(model)
    rows = []

    def check(partial: str) -> None:
        # Before the file takes its name: a graph that fails the check
        # never stands under args.out (an earlier file there stays).
        rows.extend(check_onnx(model, partial, [tuple(args.shape), second],
                               args.tolerance, name=args.out))

    names = export_onnx(model, args.out, tuple(args.shape),
                        getattr(model, 'dataset_meta', None), check=check)
    if kind == 'two_stage':
        # The RoI heads run in PyTorch (docs/deployment.md).
        save_checkpoint_atomically(model.roi_head.state_dict(),
                                   roi_head_path(args.out))
    for row in rows:
        print(f'{row["size"][0]}x{row["size"][1]}: ONNX Runtime vs PyTorch '
              f'max abs {row["max_abs"]:.3g}, max rel {row["max_rel"]:.3g} '
              f'(tolerance {args.tolerance:g})')
    extra = f' and {roi_head_path(args.out)}' if kind == 'two_stage' else ''
    print(f'exported {kind} ({len(names)} outputs) to {args.out}{extra}')
    return dict(kind=kind, outputs=names, checks=rows)


if __name__ == '__main__':
    main()
