"""On a machine with a CUDA GPU: ONNX Runtime's CUDA execution provider
against PyTorch on CUDA, parity and speed (``tools/deploy/gpu_check.py``).

For RetinaNet-S at 800x1344 and Semantic FPN-S at 512x512 (random weights
unless a checkpoint is given), batch 1: the largest difference of each
network output from PyTorch (CUDA, fp32, TF32 off), and the median time of
PyTorch eager and ONNX Runtime CUDA over ``runs`` runs taken in turns.
"""
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional

import numpy as np
import torch

from convmlp_mm.benchmark.harness import columns, table
from convmlp_mm.benchmark.reference import max_relative_difference
from convmlp_mm.benchmark.sections import config_path
from convmlp_mm.deploy import (
    ExportNetwork,
    OrtNetwork,
    export_onnx,
    load_model,
)
from convmlp_mm.errors import ConfigError

__all__ = ['GPU_MODELS', 'gpu_check', 'gpu_check_model']

GPU_MODELS = dict(
    retinanet=('configs/detection/retinanet_convmlp_s_fpn_1x_coco.py',
               (800, 1344)),
    semfpn=('configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
            (512, 512)))


def _time(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def gpu_check_model(name: str, checkpoint: Optional[str], work_dir: str,
                    runs: int = 20, tolerance: float = 1e-3) -> dict:
    """One row of the table: export ``name`` of :data:`GPU_MODELS`, compare
    ONNX Runtime CUDA with PyTorch CUDA and time both."""
    config, shape = GPU_MODELS[name]
    model, _ = load_model(config_path(config), checkpoint)
    path = osp.join(work_dir, f'{name}.onnx')
    export_onnx(model, path, shape)
    network = ExportNetwork(model).eval().cuda()
    session = OrtNetwork(path, providers=['CUDAExecutionProvider',
                                          'CPUExecutionProvider'])
    if session.session.get_providers()[0] != 'CUDAExecutionProvider':
        raise ConfigError('ONNX Runtime has no CUDA provider here: '
                          'pip install onnxruntime-gpu (and uninstall '
                          'onnxruntime)')
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    x_gpu, x_np = x.cuda(), x.numpy()
    with torch.no_grad():
        ref = network(x_gpu)
    diff = max_relative_difference(session(x_np), ref)

    def eager():
        with torch.no_grad():
            network(x_gpu)

    sync = torch.cuda.synchronize
    for _ in range(3):  # warm-up: cuDNN autotuning, ORT's arena
        eager()
        session(x_np)
    times = dict(pytorch=[], ort_cuda=[])
    for _ in range(runs):
        times['pytorch'].append(_time(eager, sync))
        times['ort_cuda'].append(_time(lambda: session(x_np), sync))
    medians = {k: float(np.median(v)) for k, v in times.items()}
    return dict(model=name, input=f'{shape[0]}x{shape[1]}', diff=diff,
                pytorch_ms=medians['pytorch'] * 1e3,
                ort_ms=medians['ort_cuda'] * 1e3,
                speedup=medians['pytorch'] / medians['ort_cuda'],
                ok=diff <= tolerance)


def gpu_check(work_dir: str, checkpoints: Dict[str, Optional[str]],
              runs: int = 20, tolerance: float = 1e-3) -> List[dict]:
    """Every model of :data:`GPU_MODELS` (``checkpoints`` by name, random
    weights where missing): print the table, write it with the raw numbers
    to ``<work_dir>/gpu_check.json``; a missing CUDA device or provider, or
    a difference above ``tolerance``, is an error."""
    if not torch.cuda.is_available():
        raise ConfigError('no CUDA device visible to torch; run this on a '
                          'GPU machine with a CUDA build of torch')
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.makedirs(work_dir, exist_ok=True)
    rows = [gpu_check_model(name, checkpoints.get(name), work_dir, runs,
                            tolerance) for name in GPU_MODELS]
    text = table(rows, columns(
        'model:s; input:s; max rel. diff=diff:.1e; '
        'PyTorch CUDA ms=pytorch_ms:.2f; ORT CUDA ms=ort_ms:.2f; '
        'speed-up=speedup:.2f'))
    print(f'{torch.cuda.get_device_name()}, torch {torch.__version__}, '
          f'input transferred from host each ORT run\n\n{text}')
    with open(osp.join(work_dir, 'gpu_check.json'), 'w') as f:
        json.dump(dict(device=torch.cuda.get_device_name(), rows=rows), f,
                  indent=2)
    bad = [r['model'] for r in rows if not r['ok']]
    if bad:
        raise ConfigError(f'CUDA provider differs from PyTorch above '
                          f'--tolerance {tolerance:g} for {", ".join(bad)}')
    return rows
