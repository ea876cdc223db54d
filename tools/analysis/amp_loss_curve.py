"""Train the same model twice on the built-in data, fp32 and ``--amp``, and
compare the training-loss curves.

Both runs go through ``tools/train.py`` with the same config, seed and data
order; the only difference is ``--amp`` (bf16 autocast on CPU, fp16 with loss
scaling on a GPU). Each invocation trains in a new ``<work-dir>/<time>/``
folder; the Markdown table of the losses is printed, and
``<work-dir>/amp_loss_curve.json`` and ``.png`` hold the latest comparison.

    python tools/analysis/amp_loss_curve.py                     # Semantic FPN
    python tools/analysis/amp_loss_curve.py \\
        --config configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py --steps 4
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict

import numpy as np

from convmlp_mm.datasets import (
    SyntheticDatasetError,
    make_ade20k_dataset,
    make_coco_dataset,
)
from convmlp_mm.checkpoint.fileio import write_text_atomically
from convmlp_mm.config.core import load_config, task_of
from convmlp_mm.cli import command
from convmlp_mm.visualization import load_scalars, plot_loss_comparison

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PRECISIONS = ('fp32', 'amp')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--config', default='configs/demo/fpn_convmlp_s_demo_shapes.py',
        help='a config of configs/demo/ (or any config with --data-root)')
    parser.add_argument(
        '--steps', type=int, default=60,
        help='iterations (iteration-based configs) or epochs to train')
    parser.add_argument('--data-root',
                        help='dataset folder; default: the built-in data '
                        'under data/, made if missing')
    parser.add_argument('--work-dir', default='work_dirs/amp_loss_curve')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--smooth', type=int, default=10,
                        help='moving-average window for the compared '
                        'curves (iterations)')
    return parser.parse_args(argv)


def built_in_data(task: str) -> str:
    try:
        if task == 'segmentation':
            return make_ade20k_dataset(
                osp.join(REPO, 'data', 'synthetic_ade20k'))
        return make_coco_dataset(osp.join(REPO, 'data', 'synthetic_coco'))
    except SyntheticDatasetError as exc:
        raise SystemExit(f'error: {exc}')


def train(args, run_dir: str, precision: str, data_root: str,
          by_epoch: bool) -> str:
    work_dir = osp.join(run_dir, precision)
    length = 'max_epochs' if by_epoch else 'max_iters'
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), args.config,
           '--work-dir', work_dir, '--data-root', data_root,
           '--cfg-options', f'randomness.seed={args.seed}',
           f'train_cfg.{length}={args.steps}',
           f'train_cfg.val_interval={args.steps}',
           'default_hooks.logger.interval=1',
           f'default_hooks.checkpoint.interval={args.steps}']
    if precision == 'amp':
        cmd.insert(3, '--amp')
    print(f'[amp_loss_curve] {precision}: {" ".join(cmd[1:])}', flush=True)
    with open(osp.join(run_dir, f'{precision}_console.log'), 'w') as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f'error: the {precision} run failed; see '
                         f'{log.name}')
    return work_dir


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode='valid')


def compare(curves: Dict[str, Dict[int, dict]], smooth: int) -> dict:
    iters = sorted(set(curves['fp32']) & set(curves['amp']))
    if not iters:
        raise SystemExit('error: the two runs logged no common iteration')
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


def validation(work_dir: str) -> Dict[str, float]:
    _, val = load_scalars(work_dir)
    if not val:
        return {}
    last = val[-1]
    return {k: v for k, v in last.items() if isinstance(v, float)
            and k not in ('iter', 'step', 'time', 'data_time')}


def report(result: dict) -> str:
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


def plot(result: dict, out_file: str) -> str:
    c = result['comparison']
    return plot_loss_comparison(
        c['iters'],
        [('fp32', c['fp32']), (f'--amp: {result["amp"]}', c['amp'])],
        osp.basename(result['config']), out_file)


@command
def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config)
    task = task_of(cfg)
    by_epoch = 'max_epochs' in cfg.train_cfg
    data_root = args.data_root or built_in_data(task)
    # A new folder per invocation: mmengine's logs of an earlier, longer run
    # in the same work dir would otherwise be read as part of this one.
    run_dir = osp.join(args.work_dir, time.strftime('%Y%m%d_%H%M%S'))
    os.makedirs(run_dir)
    curves, val = {}, {}
    for precision in PRECISIONS:
        work_dir = train(args, run_dir, precision, data_root, by_epoch)
        curves[precision] = {r['iter']: r for r in load_scalars(work_dir)[0]}
        val[precision] = validation(work_dir)
    import torch
    amp = 'fp16 (GPU)' if torch.cuda.is_available() else 'bf16 autocast (CPU)'
    result = dict(config=args.config, seed=args.seed, steps=args.steps,
                  amp=amp, run_dir=run_dir,
                  comparison=compare(curves, args.smooth), validation=val)
    print(report(result))
    out = osp.join(args.work_dir, 'amp_loss_curve.json')
    write_text_atomically(out, json.dumps(result, indent=1))
    print(f'[amp_loss_curve] wrote {out} and '
          f'{plot(result, osp.join(args.work_dir, "amp_loss_curve.png"))}')
    return result


if __name__ == '__main__':
    main()
