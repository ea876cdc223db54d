"""The benchmark's ``formulation`` section: the release's formulation
(:class:`~convmlp_mm.benchmark.reference.ReleaseConvMLP`), our default and
our default under bf16 autocast, on the same weights and input, timed in
turns; every speed-up the docs report comes from this table."""
from typing import List, Sequence

import torch

from convmlp_mm.benchmark.harness import (
    autocast,
    bf16_supported,
    columns,
    infer_fn,
    log,
    measure_interleaved,
    train_fn,
)
from convmlp_mm.benchmark.reference import (
    make_reference,
    max_relative_difference,
)
from convmlp_mm.benchmark.sections import (
    MODEL_PAIRS,
    build_backbone,
    build_whole_model,
    display_name,
    fmt_shape,
    synthetic_batch,
)
from convmlp_mm.models.builder import backbone_from

# Whole models timed on the default backbone and on the reference.
WHOLE_MODELS = ('RetinaNet', 'Semantic FPN')


def _outputs(model, x, amp=None) -> List[torch.Tensor]:
    model.eval()
    with torch.no_grad(), autocast(x.device, amp):
        return [o.float().clone() for o in model(x)]


def _release_init_bf16_difference(arch: str, x: torch.Tensor) -> float:
    """bf16 autocast against fp32 outputs with the release's
    initialisation (``init_weights``) instead of PyTorch's default, under
    which the difference was measured larger (docs/performance.md)."""
    model, _, _ = backbone_from(arch, init_weights=True, drop_path_rate=0.0)
    model = model.to(x.device)
    return max_relative_difference(_outputs(model, x, torch.bfloat16),
                                   _outputs(model, x))


def run_formulation(args, device, settings) -> List[dict]:
    """One row per size, image size and mode: the reference, the default
    (fp32) and bf16 autocast times, their ratios and output differences
    from the reference's fp32 outputs."""
    rows = []
    bf16 = bf16_supported(device)
    for arch in args.archs:
        for shape in args.formulation_sizes:
            default = build_backbone(arch, device)
            ref = make_reference(default)
            x = torch.randn(args.batch, 3, *shape, device=device)
            refs = _outputs(ref, x)
            diff = max_relative_difference(_outputs(default, x), refs)
            bf16_diff = bf16_init_diff = None
            if bf16:
                bf16_diff = max_relative_difference(
                    _outputs(default, x, torch.bfloat16), refs)
                bf16_init_diff = _release_init_bf16_difference(arch, x)
            for mode in ('inference', 'train'):
                make = infer_fn if mode == 'inference' else train_fn
                fns = {'reference': make(ref, x), 'default': make(default, x)}
                if bf16:
                    fns['bf16'] = make(default, x, torch.bfloat16)
                for model in (ref, default):
                    model.train(mode == 'train')
                times = measure_interleaved(fns, settings)
                ms = {k: m.median * 1e3 for k, m in times.items()}
                iqr = {k: m.iqr * 1e3 for k, m in times.items()}
                row = dict(
                    model=display_name(arch), size=fmt_shape(shape),
                    mode=mode, batch=args.batch,
                    reference_ms=ms['reference'],
                    reference_iqr_ms=iqr['reference'],
                    default_ms=ms['default'], default_iqr_ms=iqr['default'],
                    default_vs_reference=ms['reference'] / ms['default'],
                    default_diff=diff, bf16_diff=bf16_diff,
                    bf16_diff_release_init=bf16_init_diff)
                if bf16:
                    row.update(bf16_ms=ms['bf16'], bf16_iqr_ms=iqr['bf16'],
                               bf16_vs_default=ms['default'] / ms['bf16'],
                               bf16_vs_reference=ms['reference'] / ms['bf16'])
                rows.append(row)
                log(f'formulation {row["model"]} {row["size"]} {mode}: ' +
                    ', '.join(f'{k} {v:.0f} ms' for k, v in ms.items()))
            for model in (ref, default):
                model.zero_grad(set_to_none=True)
    return rows


FORMULATION_COLUMNS = columns(
    'model:s; size:s; mode:s; reference ms=reference_ms:.0f; '
    'IQR=reference_iqr_ms:.0f; default ms=default_ms:.0f; '
    'IQR=default_iqr_ms:.0f; bf16 ms=bf16_ms:.0f; IQR=bf16_iqr_ms:.0f; '
    'default vs reference=default_vs_reference:.2f; '
    'bf16 vs default=bf16_vs_default:.2f; '
    'bf16 vs reference=bf16_vs_reference:.2f; '
    'default diff=default_diff:.1e; bf16 diff=bf16_diff:.1e; '
    'bf16 diff, release init=bf16_diff_release_init:.1e')


def formulation_targets(rows: List[dict]) -> List[dict]:
    """The issue's goals (docs/performance.md) on the formulation rows."""
    out = []
    for row in rows:
        name = f'{row["model"]} {row["size"]} {row["mode"]}'
        ratio = row['default_vs_reference']
        out.append(dict(target=f'default fp32 vs reference, {name}',
                        goal='>= 1.5x', value=f'{ratio:.2f}x',
                        met=ratio >= 1.5))
        if row.get('bf16_vs_default') is not None and row['mode'] == 'train':
            ratio = row['bf16_vs_default']
            out.append(dict(target=f'bf16 vs default fp32, {name}',
                            goal='>= 1.8x', value=f'{ratio:.2f}x',
                            met=ratio >= 1.8))
            diff = row['bf16_diff']
            out.append(dict(target=f'bf16 outputs vs reference, {name}',
                            goal='<= 2e-2', value=f'{diff:.1e}',
                            met=diff <= 2e-2))
    return out


def run_whole_model_reference(args, device, settings,
                              titles: Sequence[str] = WHOLE_MODELS
                              ) -> List[dict]:
    """``train_step`` (AdamW) of RetinaNet and Semantic FPN (``titles``)
    with ConvMLP-S, on the default backbone and on the reference holding the
    same weights, timed in turns."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    rows = []
    for title, config, _, scope, shape in MODEL_PAIRS:
        if title not in titles:
            continue
        shape = args.model_shape or shape
        data = synthetic_batch(scope, shape, args.batch, device)
        steps = {}
        for variant in ('reference', 'default'):
            model = build_whole_model(config, scope, device)
            if variant == 'reference':
                # the configs' stochastic depth (0.1 per stage) in both
                model.backbone = make_reference(model.backbone)
            else:
                model.backbone.load_state_dict(
                    steps['reference'].model.backbone.state_dict())
            model.train()
            optim = OptimWrapper(optimizer=torch.optim.AdamW(
                model.parameters(), lr=1e-4, weight_decay=1e-4))
            steps[variant] = _Step(model, optim, data, scope, DefaultScope)
        times = measure_interleaved(steps, settings)
        row = dict(model=title, backbone='ConvMLP-S', size=fmt_shape(shape),
                   batch=args.batch,
                   reference_s=times['reference'].median,
                   reference_iqr_s=times['reference'].iqr,
                   default_s=times['default'].median,
                   default_iqr_s=times['default'].iqr,
                   default_vs_reference=times['reference'].median /
                   times['default'].median)
        rows.append(row)
        log(f'{title} {row["size"]}: reference {row["reference_s"]:.2f} s, '
            f'default {row["default_s"]:.2f} s')
    return rows


class _Step:
    """One ``train_step`` of a whole model in its registry scope."""

    def __init__(self, model, optim, data, scope, default_scope):
        self.model, self.optim, self.data = model, optim, data
        self.scope, self.default_scope = scope, default_scope

    def __call__(self):
        with self.default_scope.overwrite_default_scope(self.scope):
            return self.model.train_step(self.data, self.optim)


WHOLE_MODEL_COLUMNS = [
    ('model', 'model', 's'), ('backbone', 'backbone', 's'),
    ('size', 'size', 's'), ('reference s/iter', 'reference_s', '.2f'),
    ('IQR', 'reference_iqr_s', '.2f'), ('default s/iter', 'default_s', '.2f'),
    ('IQR', 'default_iqr_s', '.2f'),
    ('default vs reference', 'default_vs_reference', '.2f'),
]
