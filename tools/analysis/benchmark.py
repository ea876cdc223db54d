"""Speed, memory and cost of the ConvMLP backbone and of the paper's models.

Prints Markdown tables and writes the same numbers to JSON:

1. parameters and MACs (``mmengine.analysis``) of ConvMLP-S/M/L and mmdet's
   ResNet-50 at 224x224 (paper Table 3: 2.40G / 3.95G / 9.90G);
2. the machine's own matrix-multiply rate (fp32, and bf16 where supported),
   measured in the same run;
3. the release's formulation (the reference every speed-up is measured
   against), the default and bf16 autocast, ConvMLP-S/M/L at 224x224 and
   512x512, training step and inference, with ratios and output differences;
   then a per-op profile of the default's fp32 and bf16 training step, and
   RetinaNet's and Semantic FPN's training step on the reference backbone
   and on the default (``model_reference``);
4. backbone inference and training-step throughput, peak memory and achieved
   FLOP rate at 224x224, 512x512 and 800x1333, batch 2;
5. switches on ConvMLP-S: the release's formulation, the default, mixed
   precision, ``with_cp`` and ``torch.compile``, with the largest output
   difference from the default fp32 outputs;
6. how cost grows with pixels (1024x1024 over 512x512);
7. whole-model training iterations per second of RetinaNet, Mask R-CNN and
   Semantic FPN with ConvMLP-S against the same models with ResNet-50;
8. the performance targets of the project, measured.

The measuring code lives in :mod:`convmlp_mm.benchmark`: the reference
formulation (``reference``), timing and memory (``harness``), the sections
(``sections``), the report (``report``) and the run (``run``); this script
only parses the command line. Method: see ``convmlp_mm/benchmark/harness.py``.

Examples::

    python tools/analysis/benchmark.py           # everything (CPU: an hour)
    python tools/analysis/benchmark.py --quick          # the test suite's run
    python tools/analysis/benchmark.py --sections formulation  # S/M/L table
    python tools/analysis/benchmark.py --archs s --sizes 224 512 --no-models
    python tools/analysis/benchmark.py --device cuda --json work_dirs/gpu.json
"""

import argparse
import os.path as osp

from convmlp_mm_cli import command, shape_type

# convmlp_mm.benchmark.SECTIONS, written out so that --help answers before
# torch loads (tests/test_tools/test_tool_startup.py compares them).
SECTIONS = ('complexity', 'formulation', 'profile', 'backbones',
            'switches', 'scaling', 'models', 'model_reference')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark ConvMLP backbones and models (see the '
        'module docstring).')
    parser.add_argument('--quick', action='store_true',
                        help='small, fast run for the test suite: S only, '
                        'small sizes, no torch.compile, no whole models')
    parser.add_argument('--archs', nargs='+', choices=['s', 'm', 'l'])
    parser.add_argument('--sizes', nargs='+', type=shape_type,
                        help='backbone input sizes, N or HxW')
    parser.add_argument('--switch-sizes', nargs='+', type=shape_type)
    parser.add_argument('--formulation-sizes', nargs='+', type=shape_type,
                        help='sizes of the reference/default/bf16 table '
                        '(default: 224 512)')
    parser.add_argument('--scaling-sizes', nargs=2, type=shape_type)
    parser.add_argument('--model-shape', type=shape_type,
                        help='input of the whole-model runs (default: '
                        '800x1333 detection, 512x512 segmentation)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--device', default=None,
                        help='cpu or cuda[:i] (default: cuda if available)')
    parser.add_argument('--threads', type=int, default=None,
                        help='intra-op threads (default: torch\'s)')
    parser.add_argument('--runs', type=int, default=None,
                        help='timed runs per measurement (at least)')
    parser.add_argument('--compile', dest='compile', action='store_true',
                        default=None, help='also time torch.compile')
    parser.add_argument('--no-compile', dest='compile', action='store_false')
    parser.add_argument('--no-models', action='store_true',
                        help='skip the whole-model runs')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS,
                        default=list(SECTIONS),
                        help='run only these parts (default: all)')
    parser.add_argument('--json', default=None,
                        help='where to write the results (default: '
                        'work_dirs/benchmark[_quick].json)')
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error('--batch must be at least 1')
    quick = args.quick
    args.archs = args.archs or (['s'] if quick else ['s', 'm', 'l'])
    args.sizes = args.sizes or (
        [(128, 128)] if quick else [(224, 224), (512, 512), (800, 1333)])
    args.switch_sizes = args.switch_sizes or (
        [(128, 128)] if quick else [(224, 224), (512, 512)])
    args.formulation_sizes = args.formulation_sizes or (
        [(128, 128)] if quick else [(224, 224), (512, 512)])
    args.scaling_sizes = args.scaling_sizes or (
        [(64, 64), (128, 128)] if quick else [(512, 512), (1024, 1024)])
    if args.compile is None:
        args.compile = not quick
    args.models = 'models' in args.sections and not (quick or
                                                     args.no_models)
    args.json = args.json or osp.join(
        'work_dirs', 'benchmark_quick.json' if quick else 'benchmark.json')
    return args


@command
def main(argv=None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.benchmark import run_benchmark
    return run_benchmark(args)


if __name__ == '__main__':
    main()
