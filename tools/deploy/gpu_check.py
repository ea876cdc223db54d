"""On a machine with a CUDA GPU: ONNX Runtime's CUDA execution provider
against PyTorch on CUDA, parity and speed, in one go (CI has no GPU).

Needs ``onnxruntime-gpu`` in place of ``onnxruntime`` (same version range)
and a CUDA build of torch (``TORCH_INDEX_URL=... make install``)::

    python tools/deploy/gpu_check.py --work-dir work_dirs/gpu_check \\
        [--retinanet CKPT] [--semfpn CKPT]

For RetinaNet-S at 800x1344 and Semantic FPN-S at 512x512 (random weights
unless a checkpoint is given), batch 1: the largest difference of each
network output from PyTorch (CUDA, fp32, TF32 off), and the median time of
PyTorch eager and ONNX Runtime CUDA over ``--runs`` runs taken in turns.
Prints one Markdown table and writes it with the raw numbers to
``<work-dir>/gpu_check.json``. Exits non-zero when the CUDA provider is
missing or a difference is above ``--tolerance``.
"""
import argparse
from typing import Optional, Sequence

from convmlp_mm_cli import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/gpu_check')
    parser.add_argument('--retinanet', default=None)
    parser.add_argument('--semfpn', default=None)
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest |difference| over the largest '
                        '|PyTorch output| (cuDNN and ORT pick different '
                        'convolution algorithms)')
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> list:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.benchmark import gpu_check
    return gpu_check(args.work_dir, dict(retinanet=args.retinanet,
                                         semfpn=args.semfpn),
                     args.runs, args.tolerance)


if __name__ == '__main__':
    main()
