"""PyTorch eager against ONNX Runtime fp32 and int8 (and PyTorch with
BatchNorm folded), batch 1, each variant timed in turns with the others
(``measure_interleaved``): the network alone and the whole pipeline
(pipeline, data preprocessor, network, post-processing), each variant's
output difference from PyTorch, and its bbox mAP / mIoU on the built-in
validation data at the config's own test scale.

Example (the models ``tools/demo.py`` trains on the built-in data)::

    python tools/deploy/benchmark_onnx.py --work-dir work_dirs/deploy_bench \\
        --retinanet work_dirs/demo/retinanet/epoch_12.pth \\
        --semfpn work_dirs/demo/semfpn/iter_100.pth --data-dir data

Writes ``results.json`` and ``results.md`` (the tables of
docs/deployment.md) into ``--work-dir``; when a goal is missed, also the
per-op-type profile of ONNX Runtime that explains it.
"""
import argparse
from typing import Dict, Optional, Sequence

from convmlp_mm_cli import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/deploy_bench')
    parser.add_argument('--data-dir', default='data', help='holds '
                        'synthetic_coco/ and synthetic_ade20k/ (tools/'
                        'make_dataset.py, `make demo`)')
    parser.add_argument('--retinanet', help='RetinaNet demo checkpoint '
                        '("none": random weights)')
    parser.add_argument('--semfpn', help='Semantic FPN demo checkpoint')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, default=5,
                        help='timed runs per variant (after one warm-up)')
    parser.add_argument('--calibration-images', type=int, default=16)
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.benchmark import benchmark_onnx
    checkpoints = {name: getattr(args, name) for name in ('retinanet',
                                                          'semfpn')
                   if getattr(args, name) is not None}
    return benchmark_onnx(args.work_dir, checkpoints, args.data_dir,
                          args.threads, args.runs, args.calibration_images)


if __name__ == '__main__':
    main()
