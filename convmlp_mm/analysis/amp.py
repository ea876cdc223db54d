"""The same model trained twice, fp32 and ``--amp``, and the comparison of
their training-loss curves (``tools/analysis/amp_loss_curve.py``).

Both runs go through ``tools/train.py`` with the same config, seed and data
order; the only difference is ``--amp`` (bf16 autocast on CPU, fp16 with loss
scaling on a GPU). Each comparison trains in a new ``<work-dir>/<time>/``
folder; ``<work-dir>/amp_loss_curve.json`` and ``.png`` hold the latest.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Optional

import numpy as np
import torch

from convmlp_mm.analysis.curves import load_scalars, plot_loss_comparison
from convmlp_mm.checkpoint.fileio import write_text_atomically
from convmlp_mm.config import load_config, task_of
from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset
from convmlp_mm.errors import ConfigError

__all__ = [
    'PRECISIONS', 'amp_loss_curve', 'amp_report', 'compare_losses',
    'final_validation', 'moving_average'
]

PRECISIONS = ('fp32', 'amp')


def _built_in_data(task: str, data_dir: str) -> str:
    if task == 'segmentation':
        return make_ade20k_dataset(osp.join(data_dir, 'synthetic_ade20k'))
    return make_coco_dataset(osp.join(data_dir, 'synthetic_coco'))


def _train(train_script: str, config: str, run_dir: str, precision: str,
           data_root: str, steps: int, seed: int, by_epoch: bool) -> str:
    work_dir = osp.join(run_dir, precision)
    length = 'max_epochs' if by_epoch else 'max_iters'
    cmd = [sys.executable, train_script, config,
           '--work-dir', work_dir, '--data-root', data_root,
           '--cfg-options', f'randomness.seed={seed}',
           f'train_cfg.{length}={steps}',
           f'train_cfg.val_interval={steps}',
           'default_hooks.logger.interval=1',
           f'default_hooks.checkpoint.interval={steps}']
    if precision == 'amp':
        cmd.insert(3, '--amp')
    print(f'[amp_loss_curve] {precision}: {" ".join(cmd[1:])}', flush=True)
    with open(osp.join(run_dir, f'{precision}_console.log'), 'w') as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise ConfigError(f'the {precision} run failed; see {log.name}')
    return work_dir


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode='valid')


def compare_losses(curves: Dict[str, Dict[int, dict]], smooth: int) -> dict:
    """The two runs' losses at their common iterations, their gaps and
    drops (raw and over ``smooth``-iteration means) and median step
    times; ``curves`` maps each of :data:`PRECISIONS` to its training
    records by iteration."""
    iters = sorted(set(curves['fp32']) & set(curves['amp']))
    if not iters:
        raise ConfigError('the two runs logged no common iteration')
    fp32 = np.array([curves['fp32'][i]['loss'] for i in iters])
    amp = np.array([curves['amp'][i]['loss'] for i in iters])
    gap = np.abs(amp - fp32) / np.abs(fp32)
    smooth_fp32 = moving_average(fp32, smooth)
    smooth_amp = moving_average(amp, smooth)
    smooth_gap = np.abs(smooth_amp - smooth_fp32) / np.abs(smooth_fp32)
    times = {p: float(np.median([curves[p][i]['time'] for i in iters
                                 if 'time' in curves[p][i]] or [np.nan]))
             for p in PRECISIONS}
    return dict(
        iters=iters, fp32=fp32.tolist(), amp=amp.tolist(),
        first_loss={'fp32': float(fp32[0]), 'amp': float(amp[0])},
        last_smoothed_loss={'fp32': float(smooth_fp32[-1]),
                            'amp': float(smooth_amp[-1])},
        loss_drop={'fp32': float(smooth_fp32[0] / smooth_fp32[-1]),
                   'amp': float(smooth_amp[0] / smooth_amp[-1])},
        median_gap=float(np.median(gap)), max_gap=float(gap.max()),
        max_smoothed_gap=float(smooth_gap.max()), smooth_window=smooth,
        median_iter_s=times)


def final_validation(work_dir: str) -> Dict[str, float]:
    """The metrics of a run's last validation."""
    _, val = load_scalars(work_dir)
    if not val:
        return {}
    last = val[-1]
    return {k: v for k, v in last.items() if isinstance(v, float)
            and k not in ('iter', 'step', 'time', 'data_time')}


def amp_report(result: dict) -> str:
    """The comparison as Markdown: a table of the losses and a summary."""
    c = result['comparison']
    rows = ['| iteration | fp32 loss | amp loss | gap |', '|---|---|---|---|']
    stride = max(1, len(c['iters']) // 12)
    for k in list(range(0, len(c['iters']), stride)) + [len(c['iters']) - 1]:
        f, a = c['fp32'][k], c['amp'][k]
        rows.append(f'| {c["iters"][k]} | {f:.4f} | {a:.4f} | '
                    f'{abs(a - f) / abs(f):.1%} |')
    rows = list(dict.fromkeys(rows))  # the last row may repeat
    lines = [
        f'**{result["config"]}**, {len(c["iters"])} iterations, seed '
        f'{result["seed"]}; amp = {result["amp"]}', '', *rows, '',
        f'- loss drop (first / last {c["smooth_window"]}-iteration mean): '
        f'fp32 {c["loss_drop"]["fp32"]:.2f}x, '
        f'amp {c["loss_drop"]["amp"]:.2f}x',
        f'- gap between the curves: median {c["median_gap"]:.1%}, largest '
        f'{c["max_gap"]:.1%}; {c["smooth_window"]}-iteration means at most '
        f'{c["max_smoothed_gap"]:.1%} apart',
        f'- median time per iteration: fp32 '
        f'{c["median_iter_s"]["fp32"]:.2f} s, amp '
        f'{c["median_iter_s"]["amp"]:.2f} s']
    for p in PRECISIONS:
        if result['validation'][p]:
            metrics = ', '.join(f'{k} {v:.3f}' for k, v in
                                sorted(result['validation'][p].items()))
            lines.append(f'- validation after training, {p}: {metrics}')
    return '\n'.join(lines)


def amp_loss_curve(config: str, train_script: str, work_dir: str,
                   steps: int = 60, seed: int = 0, smooth: int = 10,
                   data_root: Optional[str] = None,
                   data_dir: str = 'data') -> dict:
    """Train ``config`` for ``steps`` iterations (or epochs) in fp32 and
    with ``--amp`` through ``train_script`` (``tools/train.py``), print the
    comparison and write it to ``<work_dir>/amp_loss_curve.json`` and
    ``.png``. Without ``data_root``, the built-in data of the config's task
    is made (or reused) under ``data_dir``."""
    cfg = load_config(config)
    by_epoch = 'max_epochs' in cfg.train_cfg
    data_root = data_root or _built_in_data(task_of(cfg), data_dir)
    # A new folder per invocation: mmengine's logs of an earlier, longer run
    # in the same work dir would otherwise be read as part of this one.
    run_dir = osp.join(work_dir, time.strftime('%Y%m%d_%H%M%S'))
    os.makedirs(run_dir)
    curves, val = {}, {}
    for precision in PRECISIONS:
        run = _train(train_script, config, run_dir, precision, data_root,
                     steps, seed, by_epoch)
        curves[precision] = {r['iter']: r for r in load_scalars(run)[0]}
        val[precision] = final_validation(run)
    amp = 'fp16 (GPU)' if torch.cuda.is_available() else 'bf16 autocast (CPU)'
    result = dict(config=config, seed=seed, steps=steps, amp=amp,
                  run_dir=run_dir, comparison=compare_losses(curves, smooth),
                  validation=val)
    print(amp_report(result))
    out = osp.join(work_dir, 'amp_loss_curve.json')
    write_text_atomically(out, json.dumps(result, indent=1))
    c = result['comparison']
    png = plot_loss_comparison(
        c['iters'], [('fp32', c['fp32']), (f'--amp: {amp}', c['amp'])],
        osp.basename(config), osp.join(work_dir, 'amp_loss_curve.png'))
    print(f'[amp_loss_curve] wrote {out} and {png}')
    return result
