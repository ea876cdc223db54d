"""The benchmark's ``profile`` section: where a training step of the
default backbone spends its time (``torch.profiler`` per-op self time), in
fp32 and under bf16 autocast, and its achieved FLOP rate against the
machine's own GEMM rates measured in the same run."""
from typing import Dict, List

import torch

from convmlp_mm.benchmark.harness import (
    best_fp32_rate,
    bf16_supported,
    log,
    measure,
    train_fn,
)
from convmlp_mm.benchmark.sections import (
    build_backbone,
    complexity,
    display_name,
    fmt_shape,
)

# Ops shown per profile; the rest is summed into one row.
TOP_OPS = 8

# Ops that run the convolutions and matrix products (forward and backward):
# the arithmetic the FLOP count measures. Everything else (norms,
# activations, adds, copies, pooling) is memory-bound.
MATRIX_OPS = ('mm', 'addmm', 'bmm', 'linear', 'matmul')


def is_compute(op: str) -> bool:
    """Whether a profiler op name is a convolution or a matrix product."""
    name = op.split('::')[-1]
    return 'conv' in name or name in MATRIX_OPS


def profile_step(fn, steps: int = 2) -> Dict[str, float]:
    """Self CPU time (s per step) of each op over ``steps`` calls of
    ``fn`` (after one warm-up call)."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
    return {e.key: e.self_cpu_time_total / 1e6 / steps
            for e in prof.key_averages() if e.self_cpu_time_total > 0}


def run_profile(args, device, settings, rates: Dict[str, float]
                ) -> List[dict]:
    """Rows: per (size, precision) the step time, achieved GFLOP/s and its
    share of the machine's GEMM rate, and the top ops' shares."""
    rows = []
    arch = args.archs[0]
    model = build_backbone(arch, device).train()
    precisions = [('fp32', None)]
    if bf16_supported(device) and device.type == 'cpu':
        precisions.append(('bf16', torch.bfloat16))
    for shape in args.formulation_sizes:
        _, macs = complexity(model, shape, device)
        model.train()
        x = torch.randn(args.batch, 3, *shape, device=device)
        for name, amp in precisions:
            fn = train_fn(model, x, amp)
            step = measure(fn, settings).median
            # backward costs about twice the forward
            gflops = 3 * 2 * macs * args.batch / step / 1e9
            gemm = rates['bfloat16'] if amp else best_fp32_rate(rates)
            ops = profile_step(fn)
            total = sum(ops.values())
            top = sorted(ops.items(), key=lambda kv: -kv[1])[:TOP_OPS]
            compute = sum(v for k, v in ops.items() if is_compute(k)) / total
            rows.append(dict(
                model=display_name(arch), size=fmt_shape(shape),
                precision=name, batch=args.batch, step_ms=step * 1e3,
                gflop_per_s=gflops, pct_of_gemm=100 * gflops / gemm,
                ops=[dict(op=k, ms=v * 1e3, pct=100 * v / total)
                     for k, v in top],
                other_pct=100 * (1 - sum(v for _, v in top) / total),
                compute_pct=100 * compute,
                # the rate of the convolutions and products themselves, and
                # the step's speed-up if everything else took no time
                compute_gflop_per_s=gflops / compute,
                compute_pct_of_gemm=100 * gflops / compute / gemm,
                bound_if_rest_free=1 / compute))
            log(f'profile {fmt_shape(shape)} {name}: {step * 1e3:.0f} ms, '
                f'{gflops:.0f} GFLOP/s')
        model.zero_grad(set_to_none=True)
    return rows


def profile_report(rows: List[dict]) -> List[str]:
    """Markdown lines: one line per profile, ops with their share."""
    out = ['', '**Profile of the default training step** (per-op self CPU '
           'time, share of the step under the profiler; FLOP = 3 forwards '
           'of 2 MACs each)', '']
    for row in rows:
        ops = '; '.join(f'`{o["op"]}` {o["pct"]:.0f}%' for o in row['ops'])
        out.append(
            f'- {row["model"]} {row["size"]} {row["precision"]}: '
            f'{row["step_ms"]:.0f} ms, {row["gflop_per_s"]:.0f} GFLOP/s '
            f'({row["pct_of_gemm"]:.0f}% of the GEMM rate); convolutions '
            f'and matrix products {row["compute_pct"]:.0f}% of the time, '
            f'at {row["compute_gflop_per_s"]:.0f} GFLOP/s '
            f'({row["compute_pct_of_gemm"]:.0f}% of the GEMM rate; the '
            f'rest taking no time would make the step '
            f'{row["bound_if_rest_free"]:.2f}x faster); {ops}; other '
            f'{row["other_pct"]:.0f}%')
    return out
