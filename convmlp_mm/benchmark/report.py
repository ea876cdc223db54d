"""The benchmark's targets table and its Markdown report."""
from typing import List

from convmlp_mm.benchmark.formulation import FORMULATION_COLUMNS
from convmlp_mm.benchmark.harness import columns, table
from convmlp_mm.benchmark.profiling import profile_report
from convmlp_mm.benchmark.reference import REFERENCE


def targets(switches, scaling) -> List[dict]:
    """The project's performance targets with the measured values."""
    out = []
    for size in sorted({r['size'] for r in switches}):
        rows = {r['variant']: r for r in switches if r['size'] == size}
        default = rows['default (channels-last inside)']
        plain = rows[REFERENCE]
        ratio = plain['train_ms'] / default['train_ms']
        out.append(dict(
            target=f'default fp32 train step vs reference ({size})',
            goal='>= 1.5x', value=f'{ratio:.2f}x', met=ratio >= 1.5))
        ratio = plain['inference_ms'] / default['inference_ms']
        out.append(dict(
            target=f'default fp32 inference vs reference ({size})',
            goal='>= 1.5x', value=f'{ratio:.2f}x', met=ratio >= 1.5))
        diff = plain['max_rel_diff']
        out.append(dict(target=f'reference vs default outputs ({size})',
                        goal='<= 1e-5', value=f'{diff:.1e}',
                        met=diff <= 1e-5))
        bf16 = rows.get('default + bfloat16 autocast')
        if bf16 is not None:
            ratio = default['train_ms'] / bf16['train_ms']
            out.append(dict(target=f'bf16 autocast train step vs fp32 '
                            f'({size})', goal='>= 1.8x',
                            value=f'{ratio:.2f}x', met=ratio >= 1.8))
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
            value=f'{copies["count"]} ({copies["mib"]:.1f} MiB); reference: '
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


# The tables of the sections that are plain rows: result key, title, columns
# (harness.columns).
TABLES = [
    ('backbones', '**Backbones** (median of runs, IQR; FLOP = 2 MACs, a '
     'training step counted as 3 forwards)',
     'model:s; size:s; mode:s; ms=median_ms:.0f; IQR ms=iqr_ms:.0f; '
     'img/s=images_per_s:.2f; peak MiB=peak_mib:.0f; '
     'GFLOP/s=gflop_per_s:.0f; % of best fp32 GEMM=pct_of_matmul:.0f'),
    ('switches', '**Switches on ConvMLP-S** (same weights and input; '
     'difference = max|out - default fp32| / max|default fp32|)',
     'variant:s; size:s; infer ms=inference_ms:.0f; train ms=train_ms:.0f; '
     'train IQR ms=train_iqr_ms:.0f; '
     'train speed vs default=train_speedup_vs_default:.2f; '
     'train peak MiB=train_peak_mib:.0f; '
     'memory vs default=train_mem_vs_default:.2f; '
     'difference=max_rel_diff:.1e; first call s=first_call_s:.1f'),
    ('scaling', '**Cost against pixels** (ConvMLP-S)',
     'mode:s; small:s; ms=small_ms:.0f; large:s; ms=large_ms:.0f; '
     'pixels x=pixel_ratio:.1f; time x=time_ratio:.2f'),
    ('models', '**Whole models, training iterations** (`train_step` with '
     'AdamW on a synthetic batch, no pretrained weights)',
     'model:s; backbone:s; size:s; params (M)=params_m:.2f; '
     's/iter=iter_s:.2f; IQR s=iqr_s:.2f; iter/s=iters_per_s:.3f; '
     'speed vs ResNet-50=speed_vs_r50:.2f'),
]


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
            '', table(result['complexity'], columns(
                'model:s; params (M)=params_m:.2f; GMACs=gmacs_224:.2f; '
                'paper GMACs=paper_gmacs:.2f'))]
    if result.get('formulation'):
        parts += ['', '**Formulation: the release\'s (reference), the default '
                  'and bf16 autocast** (same weights and input, timed in '
                  'turns; diff = max|out - reference fp32| / '
                  'max|reference fp32|)', '',
                  table(result['formulation'], FORMULATION_COLUMNS)]
    if result.get('profile'):
        parts += profile_report(result['profile'])
    for key, title, spec in TABLES:
        if result.get(key):
            parts += ['', title, '', table(result[key], columns(spec))]
    if result['targets']:
        parts += ['', '**Targets**', '', table(
            [dict(t, met='yes' if t['met'] else 'no')
             for t in result['targets']],
            columns('target:s; goal:s; measured=value:s; met:s'))]
    return '\n'.join(parts)
