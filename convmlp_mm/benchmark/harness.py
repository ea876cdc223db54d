"""Timing, peak memory, copy counting and the machine's own rates.

Timing uses :class:`torch.utils.benchmark.Timer` (CUDA-synchronised on a
GPU): after warm-up, one timed call per run, runs merged into one
``Measurement``; tables give its median and interquartile range (IQR).
Peak memory is what the step allocates on top of what existed before it:
on CUDA ``torch.cuda.max_memory_allocated``; on CPU the running total of
c10's CPU allocator as reported to ``torch.profiler`` (``profile_memory``),
i.e. every tensor byte allocated and not yet freed, including oneDNN
buffers that go through the allocator, but not the Python heap.
"""
import contextlib
import datetime
import json
import os
import os.path as osp
import platform
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.benchmark import Measurement, Timer

from convmlp_mm.engine.allocator import keep_freed_cpu_memory
from convmlp_mm.models import cpu_info


class Settings:
    """Repetitions shared by every measurement of a run."""

    def __init__(self, warmup: int, min_runs: int, min_time: float,
                 max_runs: int, threads: int):
        self.warmup, self.min_runs = warmup, min_runs
        self.min_time, self.max_runs = min_time, max_runs
        self.threads = threads


def measure(fn: Callable[[], object], settings: Settings,
            label: str = '') -> Measurement:
    """Time ``fn`` after warm-up: runs of one call each, merged into one
    torch ``Measurement`` (its median and IQR are what the tables show)."""
    for _ in range(settings.warmup):
        fn()
    timer = Timer(stmt='fn()', globals={'fn': fn}, label=label,
                  num_threads=settings.threads)
    runs, total = [], 0.0
    while len(runs) < settings.min_runs or (
            total < settings.min_time and len(runs) < settings.max_runs):
        run = timer.timeit(number=1)
        runs.append(run)
        total += run.median
    return Measurement.merge(runs)[0]


def measure_interleaved(fns: Dict[str, Callable[[], object]],
                        settings: Settings) -> Dict[str, Measurement]:
    """Like :func:`measure` for several functions compared with each other:
    the runs take turns (A, B, C, A, B, C, ...), so a change in the
    machine's load during the measurement hits all of them alike."""
    timers = {}
    for name, fn in fns.items():
        for _ in range(settings.warmup):
            fn()
        timers[name] = Timer(stmt='fn()', globals={'fn': fn}, label=name,
                             num_threads=settings.threads)
    runs = {name: [] for name in fns}
    total, rounds = 0.0, 0
    while rounds < settings.min_runs or (
            total < settings.min_time and rounds < settings.max_runs):
        rounds += 1
        for name, timer in timers.items():
            run = timer.timeit(number=1)
            runs[name].append(run)
            total += run.median / len(fns)
    return {name: Measurement.merge(r)[0] for name, r in runs.items()}


def peak_memory_mib(fn: Callable[[], object], device: torch.device,
                    reset: Optional[Callable[[], object]] = None) -> float:
    """MiB that one call of ``fn`` allocates at its peak, beyond what was
    allocated before it (see the module docstring for the method).
    ``reset`` runs first, outside the measurement (e.g. dropping the
    gradients of the previous step, which ``fn`` would otherwise free)."""
    if reset is not None:
        reset()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        # The allocator's running total is process-wide and only kept while
        # a profiler records memory, so it carries blocks from earlier
        # sessions: this first allocation marks where this call starts.
        marker = torch.empty(1024, dtype=torch.uint8)
        del marker
        fn()
    # The '[memory]' events carry that running total; the key-averages
    # table only has per-op sums.
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)['traceEvents']
    events = sorted((e for e in events if e.get('name') == '[memory]'),
                    key=lambda e: e['ts'])
    if not events:
        return 0.0
    start = events[0]['args']['Total Allocated'] - events[0]['args']['Bytes']
    peak = max(e['args']['Total Allocated'] for e in events)
    return max(peak - start, 0) / 2**20


COPY_OPS = ('aten::contiguous', 'aten::clone', 'aten::copy_', 'aten::to',
            'aten::_to_copy', 'aten::reshape')


def count_forward_copies(model: nn.Module, x: torch.Tensor) -> dict:
    """Tensor copies the forward code itself asks for (``contiguous``,
    ``clone``, ``to``, a ``reshape`` that copies) in one inference forward:
    the copy ops called from Python, not those inside torch's kernels (the
    bias that ``addmm`` copies into its output, the conv weight reorder),
    which are counted separately as ``in_kernels``."""
    from torch.profiler import ProfilerActivity, profile
    model.eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU],
                                  record_shapes=True) as prof:
        model(x)
    count, nbytes, in_kernels = 0, 0, 0
    for event in prof.events():
        if event.name not in COPY_OPS:
            continue
        # Called from Python: at the top, or inside a Python autograd
        # Function (recorded under its class name, not an aten:: op).
        parent = event.cpu_parent
        if parent is not None and parent.name.startswith('aten::'):
            in_kernels += event.name == 'aten::copy_'
            continue
        # a reshape or contiguous that needs no copy calls no copy_
        if not any(child.name == 'aten::copy_' or child.name in COPY_OPS
                   for child in event.cpu_children):
            continue
        count += 1
        shape = event.input_shapes[0] if event.input_shapes else []
        numel = 1
        for dim in shape:
            numel *= dim
        nbytes += x.element_size() * numel
    return dict(count=count, mib=nbytes / 2**20, in_kernels=in_kernels)


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def infer_fn(model: nn.Module, x: torch.Tensor,
             amp: Optional[torch.dtype] = None) -> Callable[[], object]:
    def fn():
        with torch.no_grad(), autocast(x.device, amp):
            return model(x)
    return fn


def train_fn(model: nn.Module, x: torch.Tensor,
             amp: Optional[torch.dtype] = None) -> Callable[[], object]:
    """Forward and backward of a backbone (the optimizer step is left out:
    it costs the same for every variant)."""
    def fn():
        model.zero_grad(set_to_none=True)
        with autocast(x.device, amp):
            outs = model(x)
        loss = sum(o.float().mean() for o in outs)
        loss.backward()
    return fn


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int,
                settings: Settings) -> float:
    """The machine's dense matrix-multiply rate in GFLOP/s (n x n x n)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    m = measure(lambda: a @ b, settings, 'matmul')
    return 2 * n**3 / m.median / 1e9


def onednn_gemm_rate(n: int, settings: Settings) -> float:
    """The same n x n x n product in fp32 written as a 1x1 convolution over a
    channels-last tensor, which oneDNN computes on CPU: the path the
    backbone's channel MLPs take (``convmlp_mm.backbone.channel_linear``)."""
    x = torch.randn(1, n, 1, n).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1)
    m = measure(lambda: torch.nn.functional.conv2d(x, w), settings, 'gemm')
    return 2 * n**3 / m.median / 1e9


def best_fp32_rate(rates: Dict[str, float]) -> float:
    """The best of the machine's fp32 GEMM rates measured in a run (BLAS or
    oneDNN: which one wins depends on the CPU's vendor)."""
    return max(v for k, v in rates.items() if k.startswith('float32'))


def bf16_supported(device: torch.device) -> bool:
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available())


def log(msg: str) -> None:
    print(f'[benchmark] {msg}', file=sys.stderr, flush=True)


def columns(spec: str) -> List[Tuple[str, str, str]]:
    """``'header=key:format; key:format; ...'`` (the header defaults to the
    key) as the (header, key, format) triples :func:`table` takes."""
    out = []
    for item in filter(None, (part.strip() for part in spec.split(';'))):
        named, fmt = item.rsplit(':', 1)
        header, _, key = named.rpartition('=')
        out.append((header or key, key, fmt))
    return out


def table(rows: List[dict], columns: Sequence[Tuple[str, str, str]]) -> str:
    """Markdown table; ``columns`` are (header, key, format)."""
    lines = ['| ' + ' | '.join(c[0] for c in columns) + ' |',
             '|' + '|'.join('---' for _ in columns) + '|']
    for row in rows:
        cells = []
        for _, key, spec in columns:
            value = row.get(key)
            cells.append('-' if value is None else format(value, spec))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def environment(device: torch.device, threads: int) -> dict:
    env = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        torch=torch.__version__, python=platform.python_version(),
        device=device.type, threads=threads,
        keep_freed_cpu_memory=keep_freed_cpu_memory(),
        load_average_before=list(os.getloadavg()))
    if device.type == 'cuda':
        env['device_name'] = torch.cuda.get_device_name(device)
    else:
        env['device_name'] = _cpu_name()
    return env


def _cpu_name() -> str:
    info = cpu_info()
    name = info.get('model name')
    if not name:
        return platform.processor() or 'unknown CPU'
    if 'avx512_bf16' in info.get('flags', '').split():
        name += ' (avx512_bf16)'
    return f'{name}, {os.cpu_count()} logical CPUs'
