"""One benchmark run (``tools/analysis/benchmark.py``): the machine's
rates, then the sections asked for, the report printed and the results
written to JSON. Method: :mod:`convmlp_mm.benchmark.harness`."""
import argparse
import json
import os
import os.path as osp

import torch

from convmlp_mm.benchmark.formulation import (
    WHOLE_MODEL_COLUMNS,
    formulation_targets,
    run_formulation,
    run_whole_model_reference,
)
from convmlp_mm.benchmark.harness import (
    Settings,
    environment,
    log,
    matmul_rate,
    onednn_gemm_rate,
    table,
)
from convmlp_mm.benchmark.profiling import run_profile
from convmlp_mm.benchmark.report import report, targets
from convmlp_mm.benchmark.sections import (
    amp_dtypes,
    run_backbones,
    run_complexity,
    run_models,
    run_scaling,
    run_switches,
)
from convmlp_mm.cli import device_of
from convmlp_mm.engine.allocator import keep_freed_cpu_memory

__all__ = ['run_benchmark']


def run_benchmark(args: argparse.Namespace) -> dict:
    """Run the benchmark that ``args`` (the parsed command line of
    ``tools/analysis/benchmark.py``) describes; the number of threads is
    restored afterwards."""
    device = torch.device(device_of(args.device) or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    # As tools/train.py does: freed CPU memory stays in the process, so the
    # steps measured here do not pay page faults that training does not.
    keep_freed_cpu_memory()
    threads_before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    threads = torch.get_num_threads()
    quick = args.quick
    settings = Settings(warmup=1 if quick else 2,
                        min_runs=args.runs or (2 if quick else 3),
                        min_time=0.0 if quick else 3.0,
                        max_runs=5 if quick else 10, threads=threads)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True

    result = dict(environment=environment(device, threads),
                  batch=args.batch, quick=quick)
    log(f'{result["environment"]["device_name"]}, {threads} threads')
    n = 512 if quick else 2048
    result['matmul_n'] = n
    result['matmul'] = {'float32': matmul_rate(device, torch.float32, n,
                                               settings)}
    if device.type == 'cpu':
        result['matmul']['float32 oneDNN'] = onednn_gemm_rate(n, settings)
    for dtype in amp_dtypes(device):
        result['matmul'][str(dtype)[6:]] = matmul_rate(device, dtype, n,
                                                       settings)
    wanted = set(args.sections)
    result['complexity'] = run_complexity(args, device) \
        if 'complexity' in wanted else []
    result['formulation'] = run_formulation(args, device, settings) \
        if 'formulation' in wanted else []
    result['profile'] = run_profile(
        args, device, settings, result['matmul']) \
        if 'profile' in wanted else []
    result['backbones'] = run_backbones(
        args, device, settings, result['matmul']) \
        if 'backbones' in wanted else []
    result['switches'] = run_switches(args, device, settings) \
        if 'switches' in wanted else []
    result['scaling'] = run_scaling(args, device, settings) \
        if 'scaling' in wanted else []
    result['models'] = run_models(args, device, settings) \
        if args.models else []
    result['model_reference'] = run_whole_model_reference(
        args, device, settings) if 'model_reference' in wanted and not (
            args.quick or args.no_models) else []
    result['targets'] = formulation_targets(result['formulation']) + \
        targets(result['switches'], result['scaling'])
    result['environment']['load_average_after'] = list(os.getloadavg())

    text = report(result)
    if result['model_reference']:
        text += ('\n\n**Whole models on the reference and on the default '
                 'backbone** (`train_step`, AdamW, synthetic batch, same '
                 'weights, timed in turns)\n\n' + table(
                     result['model_reference'], WHOLE_MODEL_COLUMNS))
    print(text)
    os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(result, f, indent=1)
    log(f'wrote {args.json}')
    return result
