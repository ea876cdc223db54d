"""The benchmark's sections: each measures one thing and returns table
rows (dicts)."""
import os.path as osp
import time
from typing import List, Tuple

import torch
import torch.nn as nn

from convmlp_mm.analysis.complexity import count
from convmlp_mm.benchmark.harness import (
    autocast,
    best_fp32_rate,
    bf16_supported,
    count_forward_copies,
    infer_fn,
    log,
    measure,
    measure_interleaved,
    peak_memory_mib,
    train_fn,
)
from convmlp_mm.benchmark.reference import (
    REFERENCE,
    make_reference,
    max_relative_difference,
)
from convmlp_mm.config import build_model
from convmlp_mm.models.builder import backbone_from

# The package's folder, followed through a link to the checkout.
PACKAGE = osp.dirname(osp.dirname(osp.realpath(__file__)))

# Paper Table 3, GMACs at 224x224 (docs/model_zoo.md).
PAPER_GMACS = {'s': 2.4, 'm': 3.9, 'l': 9.9}

SECTIONS = ('complexity', 'formulation', 'profile', 'backbones',
            'switches', 'scaling', 'models', 'model_reference')

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


def build_backbone(name: str, device: torch.device, **kwargs) -> nn.Module:
    """``'s'``/``'m'``/``'l'`` (ConvMLP) or ``'r50'`` (mmdet's ResNet-50,
    everything trainable, as the ConvMLP configs train theirs)."""
    if name == 'r50':
        from mmdet.models.backbones import ResNet
        torch.manual_seed(0)
        model = ResNet(depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                       norm_eval=False, norm_cfg=dict(type='BN'))
    else:
        # drop_path off: the variants are compared on identical outputs.
        # PyTorch's default initialisation, as for the published figures.
        model, _, _ = backbone_from(name, init_weights=False,
                                    drop_path_rate=0.0, **kwargs)
    return model.to(device)


def display_name(name: str) -> str:
    return 'ResNet-50' if name == 'r50' else f'ConvMLP-{name.upper()}'


def complexity(model: nn.Module, shape: Tuple[int, int],
               device: torch.device) -> Tuple[int, int]:
    """(parameters, MACs) of one image, by ``mmengine.analysis``."""
    result = count(model, (torch.randn(1, 3, *shape, device=device), ))
    return result['params'], result['macs']


def config_path(config: str) -> str:
    """The path of one of the project's configs (``configs/...``): in the
    checkout the package runs from, else in the package's ``.mim/`` copy
    (an installed wheel)."""
    for root in (osp.dirname(PACKAGE), osp.join(PACKAGE, '.mim')):
        path = osp.join(root, config)
        if osp.exists(path):
            return path
    raise FileNotFoundError(
        f'config {config} is neither in {osp.dirname(PACKAGE)} nor in '
        f'{osp.join(PACKAGE, ".mim")}; reinstall convmlp_mm (make install) '
        'or pass --no-models.')


def fmt_shape(shape: Tuple[int, int]) -> str:
    return f'{shape[0]}x{shape[1]}'


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
                    pct_of_matmul=100 * rate / best_fp32_rate(rates)))
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
        plain = make_reference(default)
        with_cp = build_backbone('s', device, with_cp=True)
        with_cp.load_state_dict(default.state_dict())
        variants = [
            (REFERENCE, plain, x, None),
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
            if row['variant'] == REFERENCE:
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
    if config.startswith(scope + '::'):
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(
            config if osp.isabs(config) else config_path(config))
    _strip_pretrained(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, scope)
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
