"""Speed, memory and cost of the ConvMLP backbone and of the paper's models.

Prints Markdown tables and writes the same numbers to JSON:

1. parameters and MACs (``mmengine.analysis``) of ConvMLP-S/M/L and mmdet's
   ResNet-50 at 224x224 (paper Table 3: 2.40G / 3.95G / 9.90G);
2. the machine's own matrix-multiply rate (fp32, and bf16 where supported),
   measured in the same run;
3. backbone inference and training-step throughput, peak memory and achieved
   FLOP rate at 224x224, 512x512 and 800x1333, batch 2;
4. switches on ConvMLP-S: the plain formulation of the original release (NCHW
   convolutions, NHWC<->NCHW permutes and copies around every depthwise
   conv), the same with channels-last memory, the default, mixed precision,
   ``with_cp`` and ``torch.compile``, with the largest output difference
   from the default fp32 outputs;
5. how cost grows with pixels (1024x1024 over 512x512);
6. whole-model training iterations per second of RetinaNet, Mask R-CNN and
   Semantic FPN with ConvMLP-S against the same models with ResNet-50;
7. the performance targets of the project, measured.

Timing uses :class:`torch.utils.benchmark.Timer` (CUDA-synchronised on a
GPU): after warm-up, one timed call per run, runs merged into one
``Measurement``; tables give its median and interquartile range (IQR).
Peak memory is what the step allocates on top of what existed before it:
on CUDA ``torch.cuda.max_memory_allocated``; on CPU the running total of
c10's CPU allocator as reported to ``torch.profiler`` (``profile_memory``),
i.e. every tensor byte allocated and not yet freed, including oneDNN
buffers that go through the allocator, but not the Python heap.

Examples::

    python tools/analysis/benchmark.py                  # everything (CPU: an hour)
    python tools/analysis/benchmark.py --quick          # the test suite's run
    python tools/analysis/benchmark.py --archs s --sizes 224 512 --no-models
    python tools/analysis/benchmark.py --device cuda --json work_dirs/gpu.json
"""
import argparse
import contextlib
import datetime
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.benchmark import Measurement, Timer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a checkout without installing

from convmlp_mm import ConvMLP  # noqa: E402
from convmlp_mm.allocator import keep_freed_cpu_memory  # noqa: E402

# Paper Table 3, GMACs at 224x224, as the README states them.
PAPER_GMACS = {'s': 2.40, 'm': 3.95, 'l': 9.90}

SECTIONS = ('complexity', 'backbones', 'switches', 'scaling', 'models')

# Whole models: (name, config, counterpart name, counterpart config, shape).
MODEL_PAIRS = [
    ('RetinaNet', 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py',
     'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'mmdet', (800, 1333)),
    ('Mask R-CNN', 'configs/detection/maskrcnn_convmlp_s_fpn_1x_coco.py',
     'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'mmdet', (800, 1333)),
    ('Semantic FPN',
     'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
     'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', 'mmseg',
     (512, 512)),
]


# --------------------------------------------------------------------------
# The plain formulation (reference)
# --------------------------------------------------------------------------
class PlainConvMLP(ConvMLP):
    """ConvMLP as the original release computes it, for comparison only.

    Same modules and parameter names as :class:`ConvMLP` (it loads the same
    state dict); the forward keeps the tokenizer and conv stage in whatever
    layout the input has (NCHW normally) and, in the Conv-MLP stages, makes a
    contiguous NCHW copy before and a contiguous NHWC copy after every
    depthwise and downsampling conv, as the release's ``permute`` calls
    followed by contiguous kernels do. Its convolution weights are contiguous
    NCHW and its channel MLPs are ``nn.Linear`` calls, as in the release.
    Not registered: not a backbone to use.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not (self.conv_stage and self.stages[0].blocks[0].dwconv):
            raise ValueError('PlainConvMLP reproduces the default ConvMLP '
                             'only; turn the ablation switches off.')
        self.to(memory_format=torch.contiguous_format)

    def forward(self, x: torch.Tensor) -> tuple:
        outs = [self.tokenizer(x)]
        x = outs[0]
        for block in self.conv_stages.conv_blocks:
            x = x + block(x)
        x = self.conv_stages.downsample(x)
        outs.append(x)
        x = x.permute(0, 2, 3, 1).contiguous()
        for i, stage in enumerate(self.stages):
            for blk in stage.blocks:
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp1,
                                                 blk.norm1(x)))
                y = blk.connect_norm(x).permute(0, 3, 1, 2).contiguous()
                x = blk.connect(y).permute(0, 2, 3, 1).contiguous()
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp2,
                                                 blk.norm2(x)))
            if not isinstance(stage.downsample_mlp, nn.Identity):
                y = x.permute(0, 3, 1, 2).contiguous()
                x = stage.downsample_mlp.downsample(y)
                x = x.permute(0, 2, 3, 1).contiguous()
            if i == 0 or i == len(self.stages) - 1:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs[i].contiguous() for i in self.out_indices)


def linear_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The release's channel MLP: ``nn.Linear`` calls (the BLAS on CPU)."""
    return mlp.fc2(mlp.act(mlp.fc1(x)))


def make_plain(model: ConvMLP, **kwargs) -> PlainConvMLP:
    """A :class:`PlainConvMLP` of the same size holding ``model``'s weights
    (``kwargs``, e.g. ``drop_path_rate``, go to its constructor)."""
    plain = PlainConvMLP(arch=model.arch_settings,
                         in_channels=model.in_channels,
                         out_indices=model.out_indices, **kwargs)
    plain.load_state_dict(model.state_dict())
    return plain.to(next(model.parameters()).device)


def max_relative_difference(outs: Sequence[torch.Tensor],
                            refs: Sequence[torch.Tensor]) -> float:
    """Largest ``max|a - b| / max|b|`` over the pyramid levels."""
    return max(float((a.float() - b.float()).abs().max() /
                     b.float().abs().max().clamp_min(1e-12))
               for a, b in zip(outs, refs))


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
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


def bf16_supported(device: torch.device) -> bool:
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available())


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------
def build_backbone(name: str, device: torch.device, **kwargs) -> nn.Module:
    """``'s'``/``'m'``/``'l'`` (ConvMLP) or ``'r50'`` (mmdet's ResNet-50,
    everything trainable, as the ConvMLP configs train theirs)."""
    torch.manual_seed(0)
    if name == 'r50':
        from mmdet.models.backbones import ResNet
        model = ResNet(depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                       norm_eval=False, norm_cfg=dict(type='BN'))
    else:
        # drop_path off: the variants are compared on identical outputs.
        model = ConvMLP(arch=name, drop_path_rate=0.0, **kwargs)
    return model.to(device)


def display_name(name: str) -> str:
    return 'ResNet-50' if name == 'r50' else f'ConvMLP-{name.upper()}'


def complexity(model: nn.Module, shape: Tuple[int, int],
               device: torch.device) -> Tuple[int, int]:
    """(parameters, MACs) of one image, by ``mmengine.analysis``."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    model.eval()
    x = torch.randn(1, 3, *shape, device=device)
    flops = FlopAnalyzer(model, (x, ))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return parameter_count(model)[''], flops.total()


def parse_shape(text: str) -> Tuple[int, int]:
    parts = text.lower().split('x')
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size "{text}" is not N or HxW (e.g. 224 or 800x1333)')
    return h, w


def fmt_shape(shape: Tuple[int, int]) -> str:
    return f'{shape[0]}x{shape[1]}'


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------
def run_complexity(args, device) -> List[dict]:
    rows = []
    for name in list(args.archs) + ['r50']:
        params, macs = complexity(build_backbone(name, device), (224, 224),
                                  device)
        rows.append(dict(model=display_name(name), params_m=params / 1e6,
                         gmacs_224=macs / 1e9,
                         paper_gmacs=PAPER_GMACS.get(name)))
    return rows


def run_backbones(args, device, settings, rates) -> List[dict]:
    rows = []
    for name in list(args.archs) + ['r50']:
        model = build_backbone(name, device)
        for shape in args.sizes:
            _, macs = complexity(model, shape, device)
            x = torch.randn(args.batch, 3, *shape, device=device)
            for mode in ('inference', 'train'):
                if mode == 'inference':
                    model.eval()
                    fn = infer_fn(model, x)
                    flop = 2 * macs * args.batch
                else:
                    model.train()
                    fn = train_fn(model, x)
                    # backward costs about twice the forward
                    flop = 3 * 2 * macs * args.batch
                m = measure(fn, settings)
                mem = peak_memory_mib(
                    fn, device, lambda: model.zero_grad(set_to_none=True))
                rate = flop / m.median / 1e9
                rows.append(dict(
                    model=display_name(name), size=fmt_shape(shape),
                    mode=mode, batch=args.batch, median_ms=m.median * 1e3,
                    iqr_ms=m.iqr * 1e3, runs=len(m.times),
                    images_per_s=args.batch / m.median, peak_mib=mem,
                    gflop_per_s=rate,
                    pct_of_matmul=100 * rate / max(
                        v for k, v in rates.items() if 'float32' in k)))
                log(f'{display_name(name)} {fmt_shape(shape)} {mode}: '
                    f'{m.median * 1e3:.0f} ms')
            model.zero_grad(set_to_none=True)
    return rows


def amp_dtypes(device) -> List[torch.dtype]:
    if device.type == 'cuda':
        dtypes = [torch.float16]
        if torch.cuda.is_bf16_supported():
            dtypes.append(torch.bfloat16)
        return dtypes
    return [torch.bfloat16] if bf16_supported(device) else []


def run_switches(args, device, settings) -> List[dict]:
    """ConvMLP-S variants on the same weights and input."""
    rows = []
    for shape in args.switch_sizes:
        default = build_backbone('s', device)
        x = torch.randn(args.batch, 3, *shape, device=device)
        default.eval()
        with torch.no_grad():
            refs = [o.clone() for o in default(x)]
        plain = make_plain(default)
        plain_cl = make_plain(default).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        with_cp = build_backbone('s', device, with_cp=True)
        with_cp.load_state_dict(default.state_dict())
        variants = [
            ('plain formulation (NCHW, copies around dwconv)', plain, x, None),
            ('plain formulation + channels-last', plain_cl, x_cl, None),
            ('default (channels-last inside)', default, x, None),
        ]
        for dtype in amp_dtypes(device):
            variants.append((f'default + {str(dtype)[6:]} autocast', default,
                             x, dtype))
        variants.append(('default + with_cp', with_cp, x, None))
        if args.compile:
            # One static graph per size: dynamo otherwise recompiles the
            # second size with symbolic shapes, which inductor (torch 2.13)
            # failed to lower for this network ("Invalid ranges [0:-1]").
            torch._dynamo.reset()
            compiled = torch.compile(default, dynamic=False)
            variants.append(('default + torch.compile', compiled, x, None))
        # Outputs first: training steps move the BatchNorm statistics.
        rows_here = []
        for label, model, inp, amp in variants:
            t0 = time.perf_counter()
            model.eval()
            with torch.no_grad(), autocast(device, amp):
                outs = model(inp)
            rows_here.append(dict(
                variant=label, size=fmt_shape(shape), batch=args.batch,
                max_rel_diff=max_relative_difference(outs, refs),
                first_call_s=time.perf_counter() - t0))
        for mode in ('inference', 'train'):
            fns = {}
            for label, model, inp, amp in variants:
                model.train(mode == 'train')
                fns[label] = (infer_fn if mode == 'inference' else train_fn)(
                    model, inp, amp)
            timings = measure_interleaved(fns, settings)
            for (label, model, _, _), row in zip(variants, rows_here):
                m = timings[label]
                row[f'{mode}_ms'] = m.median * 1e3
                row[f'{mode}_iqr_ms'] = m.iqr * 1e3
                if mode == 'train':
                    row['train_peak_mib'] = peak_memory_mib(
                        fns[label], device,
                        lambda: model.zero_grad(set_to_none=True))
                    model.zero_grad(set_to_none=True)
                log(f'{label} {fmt_shape(shape)} {mode}: '
                    f'{m.median * 1e3:.0f} ms')
        rows.extend(rows_here)
        base = next(r for r in rows if r['variant'].startswith('default (')
                    and r['size'] == fmt_shape(shape))
        for row in rows:
            if row['size'] == fmt_shape(shape):
                row['train_speedup_vs_default'] = \
                    base['train_ms'] / row['train_ms']
                row['train_mem_vs_default'] = \
                    row['train_peak_mib'] / base['train_peak_mib']
        plain_copies = count_forward_copies(plain, x)
        default_copies = count_forward_copies(default, x)
        for row in rows:
            if row['size'] != fmt_shape(shape):
                continue
            if row['variant'].startswith('plain formulation ('):
                row['forward_copies'] = plain_copies
            elif row['variant'].startswith('default ('):
                row['forward_copies'] = default_copies
    return rows


def run_scaling(args, device, settings) -> List[dict]:
    rows = []
    small, large = args.scaling_sizes
    model = build_backbone('s', device)
    for mode in ('inference', 'train'):
        model.train(mode == 'train')
        fns = {shape: (infer_fn if mode == 'inference' else train_fn)(
            model, torch.randn(args.batch, 3, *shape, device=device))
            for shape in (small, large)}
        times = measure_interleaved(fns, settings)
        for shape in (small, large):
            log(f'scaling {fmt_shape(shape)} {mode}: '
                f'{times[shape].median * 1e3:.0f} ms')
        model.zero_grad(set_to_none=True)
        pixels = (large[0] * large[1]) / (small[0] * small[1])
        rows.append(dict(model='ConvMLP-S', mode=mode, batch=args.batch,
                         small=fmt_shape(small), large=fmt_shape(large),
                         small_ms=times[small].median * 1e3,
                         large_ms=times[large].median * 1e3,
                         pixel_ratio=pixels,
                         time_ratio=times[large].median /
                         times[small].median))
    return rows


def _strip_pretrained(cfg) -> None:
    """No downloads and no SyncBN: every model starts from its own init."""
    from mmengine.config import ConfigDict

    def walk(node):
        if isinstance(node, dict):
            if node.get('type') == 'SyncBN':
                node['type'] = 'BN'
            if node.get('init_cfg', None) is not None and \
                    'Pretrained' in str(node['init_cfg']):
                node['init_cfg'] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)
    cfg.model.pop('pretrained', None)
    walk(cfg.model)
    assert isinstance(cfg.model, (dict, ConfigDict))


def build_whole_model(config: str, scope: str, device: torch.device):
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope
    if config.startswith(scope + '::'):
        cfg = get_config(config)
    else:
        path = config if osp.isabs(config) else osp.join(ROOT, config)
        if not osp.exists(path):
            raise FileNotFoundError(
                f'config {config} does not exist; run from a full checkout '
                'or pass --no-models.')
        cfg = Config.fromfile(path)
    _strip_pretrained(cfg)
    if scope == 'mmdet':
        import mmdet.models  # noqa: F401  (fills mmdet's registries)
        from mmdet.registry import MODELS
    else:
        import mmseg.models  # noqa: F401
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    # Default torch init: speed does not depend on the weights' values.
    return model.to(device)


def synthetic_batch(scope: str, shape: Tuple[int, int], batch: int,
                    device: torch.device) -> dict:
    h, w = shape
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        data = demo_mm_inputs(batch_size=batch,
                              image_shapes=[(3, h, w)] * batch,
                              num_items=[5] * batch, num_classes=80,
                              with_mask=True, device=device.type)
        return data
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen,
                                    dtype=torch.uint8).to(device))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w),
                                             ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, 150, (1, h, w), generator=gen).to(device))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def run_models(args, device, settings) -> List[dict]:
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    rows = []
    for title, ours, theirs, scope, shape in MODEL_PAIRS:
        shape = args.model_shape or shape
        steps, params = {}, {}
        for backbone, config in (('ConvMLP-S', ours), ('ResNet-50', theirs)):
            model = build_whole_model(config, scope, device)
            model.train()
            optim = OptimWrapper(optimizer=torch.optim.AdamW(
                model.parameters(), lr=1e-4, weight_decay=1e-4))
            data = synthetic_batch(scope, shape, args.batch, device)

            def step(model=model, optim=optim, data=data):
                with DefaultScope.overwrite_default_scope(scope):
                    return model.train_step(data, optim)

            steps[backbone] = step
            params[backbone] = sum(
                p.numel() for p in model.parameters()) / 1e6
        # the two models take turns, so load changes hit both alike
        timings = measure_interleaved(steps, settings)
        for backbone, config in (('ConvMLP-S', ours), ('ResNet-50', theirs)):
            m = timings[backbone]
            rows.append(dict(
                model=title, backbone=backbone, config=config,
                size=fmt_shape(shape), batch=args.batch,
                params_m=params[backbone], iter_s=m.median, iqr_s=m.iqr,
                iters_per_s=1 / m.median, runs=len(m.times)))
            log(f'{title} {backbone} {fmt_shape(shape)}: {m.median:.2f} s/it')
        rows[-2]['speed_vs_r50'] = \
            timings['ResNet-50'].median / timings['ConvMLP-S'].median
        del steps
    return rows


def targets(switches, scaling) -> List[dict]:
    """The project's performance targets with the measured values."""
    out = []
    for size in sorted({r['size'] for r in switches}):
        rows = {r['variant']: r for r in switches if r['size'] == size}
        default = rows['default (channels-last inside)']
        plain = rows['plain formulation (NCHW, copies around dwconv)']
        plain_cl = rows['plain formulation + channels-last']
        ratio = plain['train_ms'] / default['train_ms']
        out.append(dict(target=f'default fp32 train step vs plain ({size})',
                        goal='>= 1.3x', value=f'{ratio:.2f}x',
                        met=ratio >= 1.3))
        ratio = plain_cl['train_ms'] / default['train_ms']
        out.append(dict(
            target=f'default vs plain + channels-last ({size})',
            goal='>= 1.0x', value=f'{ratio:.2f}x', met=ratio >= 1.0))
        diff = plain['max_rel_diff']
        out.append(dict(target=f'plain vs default outputs ({size})',
                        goal='<= 1e-5', value=f'{diff:.1e}',
                        met=diff <= 1e-5))
        bf16 = rows.get('default + bfloat16 autocast')
        if bf16 is not None:
            ratio = default['train_ms'] / bf16['train_ms']
            out.append(dict(target=f'bf16 autocast train step vs fp32 '
                            f'({size})', goal='>= 3x',
                            value=f'{ratio:.2f}x', met=ratio >= 3))
            out.append(dict(target=f'bf16 outputs vs fp32 ({size})',
                            goal='<= 2e-2',
                            value=f'{bf16["max_rel_diff"]:.1e}',
                            met=bf16['max_rel_diff'] <= 2e-2))
        cp = rows['default + with_cp']
        mem = cp['train_peak_mib'] / default['train_peak_mib']
        slow = cp['train_ms'] / default['train_ms']
        out.append(dict(target=f'with_cp train peak memory ({size})',
                        goal='<= 0.5x', value=f'{mem:.2f}x',
                        met=mem <= 0.5))
        out.append(dict(target=f'with_cp train time ({size})',
                        goal='<= 1.35x', value=f'{slow:.2f}x',
                        met=slow <= 1.35))
        copies = default['forward_copies']
        out.append(dict(
            target=f'copies the default forward makes ({size})',
            goal='<= 5: input to channels-last, one per NCHW output',
            value=f'{copies["count"]} ({copies["mib"]:.1f} MiB); plain: '
            f'{plain["forward_copies"]["count"]} '
            f'({plain["forward_copies"]["mib"]:.1f} MiB)',
            met=copies['count'] <= 5))
    for row in scaling:
        out.append(dict(
            target=f'time {row["large"]} / {row["small"]} ({row["mode"]})',
            goal=f'<= {4.2 * row["pixel_ratio"] / 4:.2f}',
            value=f'{row["time_ratio"]:.2f}',
            met=row['time_ratio'] <= 4.2 * row['pixel_ratio'] / 4))
    return out


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f'[benchmark] {msg}', file=sys.stderr, flush=True)


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
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    flags = next((ln for ln in open('/proc/cpuinfo')
                                  if ln.startswith('flags')), '')
                    if 'avx512_bf16' in flags:
                        name += ' (avx512_bf16)'
                    return f'{name}, {os.cpu_count()} logical CPUs'
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def report(result: dict) -> str:
    env = result['environment']
    parts = [
        f'Device: {env["device_name"]}; torch {env["torch"]}, '
        f'{env["threads"]} threads; batch {result["batch"]}; '
        f'load average {env["load_average_before"][0]:.2f} before, '
        f'{env["load_average_after"][0]:.2f} after; {env["date"]}.',
        '', 'Matrix multiply (n=%d; torch.matmul, "oneDNN" = the same '
        'product as a 1x1 convolution): ' % result['matmul_n'] + ', '.join(
            f'{k} {v:.0f} GFLOP/s' for k, v in result['matmul'].items()),
    ]
    if result['complexity']:
        parts += [
            '', '**Parameters and MACs at 224x224** (`mmengine.analysis`)',
            '', table(result['complexity'], [
                ('model', 'model', 's'), ('params (M)', 'params_m', '.2f'),
                ('GMACs', 'gmacs_224', '.2f'),
                ('paper GMACs', 'paper_gmacs', '.2f')])]
    if result['backbones']:
        parts += ['', '**Backbones** (median of runs, IQR; FLOP = 2 MACs, '
                  'a training step counted as 3 forwards)', '',
                  table(result['backbones'], [
                      ('model', 'model', 's'), ('size', 'size', 's'),
                      ('mode', 'mode', 's'), ('ms', 'median_ms', '.0f'),
                      ('IQR ms', 'iqr_ms', '.0f'),
                      ('img/s', 'images_per_s', '.2f'),
                      ('peak MiB', 'peak_mib', '.0f'),
                      ('GFLOP/s', 'gflop_per_s', '.0f'),
                      ('% of best fp32 GEMM', 'pct_of_matmul', '.0f')])]
    if result['switches']:
        parts += ['', '**Switches on ConvMLP-S** (same weights and input; '
                  'difference = max|out - default fp32| / max|default fp32|)',
                  '', table(result['switches'], [
                      ('variant', 'variant', 's'), ('size', 'size', 's'),
                      ('infer ms', 'inference_ms', '.0f'),
                      ('train ms', 'train_ms', '.0f'),
                      ('train IQR ms', 'train_iqr_ms', '.0f'),
                      ('train speed vs default', 'train_speedup_vs_default',
                       '.2f'),
                      ('train peak MiB', 'train_peak_mib', '.0f'),
                      ('memory vs default', 'train_mem_vs_default', '.2f'),
                      ('difference', 'max_rel_diff', '.1e'),
                      ('first call s', 'first_call_s', '.1f')])]
    if result['scaling']:
        parts += ['', '**Cost against pixels** (ConvMLP-S)', '',
                  table(result['scaling'], [
                      ('mode', 'mode', 's'), ('small', 'small', 's'),
                      ('ms', 'small_ms', '.0f'), ('large', 'large', 's'),
                      ('ms', 'large_ms', '.0f'),
                      ('pixels x', 'pixel_ratio', '.1f'),
                      ('time x', 'time_ratio', '.2f')])]
    if result['models']:
        parts += ['', '**Whole models, training iterations** (`train_step` '
                  'with AdamW on a synthetic batch, no pretrained weights)',
                  '', table(result['models'], [
                      ('model', 'model', 's'), ('backbone', 'backbone', 's'),
                      ('size', 'size', 's'), ('params (M)', 'params_m', '.2f'),
                      ('s/iter', 'iter_s', '.2f'), ('IQR s', 'iqr_s', '.2f'),
                      ('iter/s', 'iters_per_s', '.3f'),
                      ('speed vs ResNet-50', 'speed_vs_r50', '.2f')])]
    if result['targets']:
        parts += ['', '**Targets**', '', table(
            [dict(t, met='yes' if t['met'] else 'no')
             for t in result['targets']],
            [('target', 'target', 's'), ('goal', 'goal', 's'),
             ('measured', 'value', 's'), ('met', 'met', 's')])]
    return '\n'.join(parts)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark ConvMLP backbones and models (see the '
        'module docstring).')
    parser.add_argument('--quick', action='store_true',
                        help='small, fast run for the test suite: S only, '
                        'small sizes, no torch.compile, no whole models')
    parser.add_argument('--archs', nargs='+', choices=['s', 'm', 'l'])
    parser.add_argument('--sizes', nargs='+', type=parse_shape,
                        help='backbone input sizes, N or HxW')
    parser.add_argument('--switch-sizes', nargs='+', type=parse_shape)
    parser.add_argument('--scaling-sizes', nargs=2, type=parse_shape)
    parser.add_argument('--model-shape', type=parse_shape,
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
    args.scaling_sizes = args.scaling_sizes or (
        [(64, 64), (128, 128)] if quick else [(512, 512), (1024, 1024)])
    if args.compile is None:
        args.compile = not quick
    args.models = 'models' in args.sections and not (quick or
                                                     args.no_models)
    args.json = args.json or osp.join(
        'work_dirs', 'benchmark_quick.json' if quick else 'benchmark.json')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda asked for, but torch sees no GPU; '
                         'use --device cpu.')
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
    result['backbones'] = run_backbones(
        args, device, settings, result['matmul']) \
        if 'backbones' in wanted else []
    result['switches'] = run_switches(args, device, settings) \
        if 'switches' in wanted else []
    result['scaling'] = run_scaling(args, device, settings) \
        if 'scaling' in wanted else []
    result['models'] = run_models(args, device, settings) \
        if args.models else []
    result['targets'] = targets(result['switches'], result['scaling'])
    result['environment']['load_average_after'] = list(os.getloadavg())

    text = report(result)
    print(text)
    os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(result, f, indent=1)
    log(f'wrote {args.json}')
    return result


if __name__ == '__main__':
    main()
