"""Run a ConvMLP detector or segmentor on your own images, folders or videos.

Writes the drawn predictions (``<out-dir>/vis/``), segmentation label maps
(``<out-dir>/pred/``) and one ``<out-dir>/results.json``; see
:func:`convmlp_mm.apis.inference` for the fields.

Examples::

    # the RetinaNet that `make demo` trained on the built-in shapes
    python tools/inference.py \\
        configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py \\
        work_dirs/demo/retinanet/epoch_12.pth data/synthetic_coco/val2017 \\
        --out-dir work_dirs/inference/retinanet
    # a COCO model on a video, on the GPU
    python tools/inference.py \\
        configs/detection/maskrcnn_convmlp_s_fpn_1x_coco.py \\
        maskrcnn_convmlp_s.pth street.mp4 --device cuda --score-thr 0.5
"""
import argparse
import os.path as osp
from typing import Optional, Sequence

from convmlp_mm_cli import add_model_arguments, command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw and save the predictions of a detector or '
        'segmentor config on images, folders of images or videos.')
    add_model_arguments(
        parser, 'detector (mmdet) or segmentor (mmseg) config',
        'checkpoint of that model (e.g. from tools/train.py)',
        cfg_example='model.test_cfg.score_thr=0.1')
    parser.add_argument('inputs', nargs='+',
                        help='image files, folders of images, video files')
    parser.add_argument('--out-dir', default='work_dirs/inference')
    parser.add_argument('--device', help='cpu, cuda, cuda:1 (default: cuda '
                        'if available)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: smallest score drawn (the JSON '
                        'keeps all predictions)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--classes', nargs='+',
                        help='class names, label 0 first: rename the '
                        'checkpoint\'s classes (never reorder them)')
    parser.add_argument(
        '--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
        help='onnxruntime: CHECKPOINT is a .onnx from '
        'tools/deploy/export_onnx.py (docs/deployment.md)')
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.apis import inference
    from convmlp_mm.cli import device_of
    summary = inference(args.config, args.checkpoint, args.inputs,
                        args.out_dir, device=device_of(args.device),
                        score_thr=args.score_thr,
                        batch_size=args.batch_size, classes=args.classes,
                        cfg_options=args.cfg_options, backend=args.backend)
    count = len(summary['results'])
    drawn = ''
    if summary['task'] == 'detection':
        drawn = (f' (boxes scored >= {args.score_thr:g}; of boxes '
                 f'overlapping by IoU > {summary["draw_iou_thr"]:g}, the '
                 'higher-scored one)')
    print(f'{count} {"frame/image" if count == 1 else "frames/images"}: '
          f'drawn predictions in {osp.join(args.out_dir, "vis")}{drawn}, '
          f'results in {summary["json"]}')
    failures = summary.get('failures') or []
    if failures:
        # The others are written; the exit status still says not all were.
        raise SystemExit(
            f'error: {len(failures)} input(s) skipped, listed under '
            f'"failures" in {summary["json"]}; first: '
            f'{failures[0]["error"]}')
    return summary


if __name__ == '__main__':
    main()
