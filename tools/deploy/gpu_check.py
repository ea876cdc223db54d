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
import json
import os
import os.path as osp
import time
from typing import Optional, Sequence

import numpy as np
import torch

import convmlp_mm  # noqa: F401
from convmlp_mm.benchmark.harness import table
from convmlp_mm.deploy import (
    ExportNetwork,
    OrtNetwork,
    export_onnx,
    load_model,
)
from convmlp_mm.cli import command

MODELS = dict(
    retinanet=('configs/detection/retinanet_convmlp_s_fpn_1x_coco.py',
               (800, 1344)),
    semfpn=('configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
            (512, 512)))


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


def _time(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def check(name: str, checkpoint: Optional[str], args) -> dict:
    config, shape = MODELS[name]
    model, _ = load_model(config, checkpoint)
    path = osp.join(args.work_dir, f'{name}.onnx')
    export_onnx(model, path, shape)
    network = ExportNetwork(model).eval().cuda()
    session = OrtNetwork(path, providers=['CUDAExecutionProvider',
                                          'CPUExecutionProvider'])
    if session.session.get_providers()[0] != 'CUDAExecutionProvider':
        raise SystemExit('error: ONNX Runtime has no CUDA provider here: '
                         'pip install onnxruntime-gpu (and uninstall '
                         'onnxruntime)')
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    x_gpu, x_np = x.cuda(), x.numpy()
    with torch.no_grad():
        ref = [t.float().cpu().numpy() for t in network(x_gpu)]
    got = session(x_np)
    diff = max(float(np.abs(a - b).max()) / max(float(np.abs(a).max()),
                                                1e-12)
               for a, b in zip(ref, got))

    def eager():
        with torch.no_grad():
            network(x_gpu)

    sync = torch.cuda.synchronize
    for _ in range(3):  # warm-up: cuDNN autotuning, ORT's arena
        eager()
        session(x_np)
    times = dict(pytorch=[], ort_cuda=[])
    for _ in range(args.runs):
        times['pytorch'].append(_time(eager, sync))
        times['ort_cuda'].append(_time(lambda: session(x_np), sync))
    medians = {k: float(np.median(v)) for k, v in times.items()}
    return dict(model=name, input=f'{shape[0]}x{shape[1]}', diff=diff,
                pytorch_ms=medians['pytorch'] * 1e3,
                ort_ms=medians['ort_cuda'] * 1e3,
                speedup=medians['pytorch'] / medians['ort_cuda'],
                ok=diff <= args.tolerance)


@command
def main(argv: Optional[Sequence[str]] = None) -> list:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit('error: no CUDA device visible to torch; run this '
                         'on a GPU machine with a CUDA build of torch')
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.makedirs(args.work_dir, exist_ok=True)
    rows = [check(name, getattr(args, name), args) for name in MODELS]
    text = table(rows, [('model', 'model', 's'), ('input', 'input', 's'),
                        ('max rel. diff', 'diff', '.1e'),
                        ('PyTorch CUDA ms', 'pytorch_ms', '.2f'),
                        ('ORT CUDA ms', 'ort_ms', '.2f'),
                        ('speed-up', 'speedup', '.2f')])
    print(f'{torch.cuda.get_device_name()}, torch {torch.__version__}, '
          f'input transferred from host each ORT run\n\n{text}')
    with open(osp.join(args.work_dir, 'gpu_check.json'), 'w') as f:
        json.dump(dict(device=torch.cuda.get_device_name(), rows=rows), f,
                  indent=2)
    bad = [r['model'] for r in rows if not r['ok']]
    if bad:
        raise SystemExit(f'error: CUDA provider differs from PyTorch above '
                         f'--tolerance {args.tolerance:g} for '
                         f'{", ".join(bad)}')
    return rows


if __name__ == '__main__':
    main()
