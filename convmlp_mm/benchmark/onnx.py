"""PyTorch eager against ONNX Runtime fp32 and int8 (and PyTorch with
BatchNorm folded), batch 1 (``tools/deploy/benchmark_onnx.py``), each
variant timed in turns with the others (``measure_interleaved``): the
network alone and the whole pipeline (pipeline, data preprocessor, network,
post-processing), each variant's output difference from PyTorch, and its
bbox mAP / mIoU on the built-in validation data at the config's own test
scale. When a goal is missed, also the per-op-type profile of ONNX Runtime
that explains it.
"""
import copy
import json
import os
import os.path as osp
from collections import defaultdict
from types import SimpleNamespace
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope

from convmlp_mm.benchmark.harness import (
    Settings,
    columns,
    environment,
    measure_interleaved,
    table,
)
from convmlp_mm.benchmark.reference import max_relative_difference
from convmlp_mm.benchmark.sections import config_path
from convmlp_mm.datasets.image_files import list_images
from convmlp_mm.deploy import (
    ExportNetwork,
    OrtNetwork,
    attach_onnxruntime,
    count_batchnorms,
    export_onnx,
    fuse_conv_bn,
    load_model,
)
from convmlp_mm.deploy.evaluate import evaluate
from convmlp_mm.deploy.quantize import calibration_inputs, quantize_int8
from convmlp_mm.engine.allocator import keep_freed_cpu_memory
from convmlp_mm.errors import ConfigError

__all__ = ['GOALS', 'MODELS', 'bench_model', 'benchmark_onnx', 'report']

MODELS = dict(
    retinanet=dict(config='configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py',
                   data='synthetic_coco', train='train2017', val='val2017',
                   shape=(800, 1333), metric='coco/bbox_mAP'),
    semfpn=dict(config='configs/demo/fpn_convmlp_s_demo_shapes.py',
                data='synthetic_ade20k', train='images/training',
                val='images/validation', shape=(512, 512), metric='mIoU'))
GOALS = dict(ort_fp32=1.3, ort_int8=2.5)


def _network_input(cfg, model, image: str, shape) -> torch.Tensor:
    # A real image, normalised as the model does, at exactly ``shape``
    # padded to the detectors' multiple of 32.
    x = torch.from_numpy(calibration_inputs(model, cfg, [image])[0])
    size = [int(np.ceil(s / 32) * 32) for s in shape]
    return torch.nn.functional.interpolate(x, size=size, mode='bilinear')


def _pipeline_fn(cfg, model, image: str):
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if not str(t.get('type', '')).endswith('LoadAnnotations')]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        pipeline = Compose(steps)

    def run():
        with torch.no_grad():
            return model.test_step(
                pseudo_collate([pipeline(dict(img_path=image, img_id=0))]))

    return run


def _profile(path: str, x: np.ndarray, threads: int, prefix: str) -> list:
    """Time per op type from ONNX Runtime's profiler over three runs."""
    session = OrtNetwork(path, threads=threads, profile_prefix=prefix)
    for _ in range(3):
        session(x)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    per_op = defaultdict(float)
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith(
                '_kernel_time'):
            per_op[event['args'].get('op_name', '?')] += event['dur'] / 3e3
    total = sum(per_op.values())
    return [dict(op=op, ms=ms, share=ms / total)
            for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:8]]


def bench_model(name: str, checkpoint: Optional[str], args) -> dict:
    spec = MODELS[name]
    data_root = osp.join(args.data_dir, spec['data'])
    if not osp.isdir(data_root):
        raise ConfigError(f'{data_root} not found: make the built-in '
                          'data with tools/make_dataset.py (or `make demo`) '
                          'or pass --data-dir')
    model, cfg = load_model(config_path(spec['config']), checkpoint)
    work = osp.join(args.work_dir, name)
    os.makedirs(work, exist_ok=True)
    fp32, int8 = osp.join(work, 'fp32.onnx'), osp.join(work, 'int8.onnx')
    export_onnx(model, fp32, spec['shape'], model.dataset_meta)
    calib = list_images(osp.join(data_root, spec['train']))
    quantize_int8(fp32, int8, calibration_inputs(
        model, cfg, calib[:args.calibration_images]))

    val_images = list_images(osp.join(data_root, spec['val']))
    x = _network_input(cfg, model, val_images[0], spec['shape'])
    network = ExportNetwork(model).eval()
    folded = fuse_conv_bn(copy.deepcopy(model))
    folded_net = ExportNetwork(folded).eval()
    sessions = {k: OrtNetwork(p, threads=args.threads)
                for k, p in (('ort_fp32', fp32), ('ort_int8', int8))}
    x_np = x.numpy()
    with torch.no_grad():
        ref = network(x)
        diffs = dict(pytorch=0.0, pytorch_folded=max_relative_difference(
            folded_net(x), ref))
    for key, session in sessions.items():
        diffs[key] = max_relative_difference(session(x_np), ref)

    def eager(net):
        def run():
            with torch.no_grad():
                return net(x)
        return run

    settings = Settings(warmup=1, min_runs=args.runs, min_time=0,
                        max_runs=args.runs, threads=args.threads)
    net_times = measure_interleaved(dict(
        pytorch=eager(network), pytorch_folded=eager(folded_net),
        ort_fp32=lambda: sessions['ort_fp32'](x_np),
        ort_int8=lambda: sessions['ort_int8'](x_np)), settings)

    # Whole pipeline on an image of exactly the benchmark size.
    image = osp.join(work, 'bench_image.jpg')
    h, w = spec['shape']
    cv2.imwrite(image, cv2.resize(cv2.imread(val_images[0]), (w, h)))
    big = copy.deepcopy(cfg)
    big.test_dataloader.dataset.pipeline[1]['scale'] = (w, h)
    variants = dict(pytorch=model, pytorch_folded=folded)
    for key, path in (('ort_fp32', fp32), ('ort_int8', int8)):
        built = load_model(config_path(spec['config']), None)[0]
        variants[key] = attach_onnxruntime(built, OrtNetwork(
            path, threads=args.threads))
    pipe_times = measure_interleaved(
        {k: _pipeline_fn(big, m, image) for k, m in variants.items()},
        settings)
    # CocoMetric returns no keys when no image has a detection.
    metrics = {k: evaluate(m, cfg, data_root).get(spec['metric'])
               for k, m in variants.items()}

    base_net = net_times['pytorch'].median
    base_pipe = pipe_times['pytorch'].median
    rows = []
    for key in variants:
        rows.append(dict(
            variant=key, net_ms=net_times[key].median * 1e3,
            net_speedup=base_net / net_times[key].median,
            pipe_ms=pipe_times[key].median * 1e3,
            pipe_speedup=base_pipe / pipe_times[key].median,
            diff=diffs[key], metric=metrics[key],
            goal=GOALS.get(key)))
    result = dict(model=name, shape=list(spec['shape']),
                  input=list(x.shape), metric=spec['metric'],
                  checkpoint=checkpoint, rows=rows,
                  batchnorms_left_after_folding=count_batchnorms(folded))
    missed = [r for r in rows if r['goal'] and r['net_speedup'] < r['goal']]
    if missed:
        result['profiles'] = {
            key: _profile(path, x_np, args.threads,
                          osp.join(work, f'profile_{key}'))
            for key, path in (('ort_fp32', fp32), ('ort_int8', int8))}
    return result


COLUMNS = columns(
    'variant:s; network ms=net_ms:.0f; speed-up=net_speedup:.2f; '
    'goal:.1f; pipeline ms=pipe_ms:.0f; '
    'pipeline speed-up=pipe_speedup:.2f; max rel. diff=diff:.1e; '
    'metric:.3f')


def report(results: List[dict], env: dict) -> str:
    lines = [f'{env["date"]}, {env["device_name"]}, torch {env["torch"]}, '
             f'{env["threads"]} threads, load average before '
             f'{env["load_average_before"]}, after '
             f'{[round(v, 2) for v in os.getloadavg()]}', '']
    for result in results:
        lines += [f'### {result["model"]}: network input '
                  f'{result["input"][2]}x{result["input"][3]}, metric '
                  f'{result["metric"]}', '',
                  table(result['rows'], COLUMNS), '']
        for key, ops in result.get('profiles', {}).items():
            lines += [f'{key} profile (top op types, ms per run):', '',
                      table(ops, columns('op:s; ms:.1f; share:.0%')), '']
    return '\n'.join(lines)


def benchmark_onnx(work_dir: str, checkpoints: Dict[str, Optional[str]],
                   data_dir: str = 'data', threads: int = 2, runs: int = 5,
                   calibration_images: int = 16) -> Dict:
    """Benchmark each model of :data:`MODELS` named in ``checkpoints``
    (its checkpoint, ``None`` or ``'none'`` for random weights); write
    ``results.json`` and ``results.md`` into ``work_dir`` and print the
    tables."""
    keep_freed_cpu_memory()
    torch.set_num_threads(threads)
    env = environment(torch.device('cpu'), threads)
    options = SimpleNamespace(work_dir=work_dir, data_dir=data_dir,
                              threads=threads, runs=runs,
                              calibration_images=calibration_images)
    results = []
    for name in MODELS:
        if name not in checkpoints:
            continue
        checkpoint = checkpoints[name]
        if checkpoint is not None and checkpoint.lower() == 'none':
            checkpoint = None
        results.append(bench_model(name, checkpoint, options))
    if not results:
        raise ConfigError('pass --retinanet and/or --semfpn checkpoints '
                          '("none" for random weights)')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        # Metrics come back as numpy scalars.
        json.dump(dict(environment=env, results=results), f, indent=2,
                  default=float)
    text = report(results, env)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    return dict(environment=env, results=results)
