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
import os.path as osp

from convmlp_mm_cli import command

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config',
                        default='configs/demo/fpn_convmlp_s_demo_shapes.py',
                        help='a config of configs/demo/ (or any config with '
                        '--data-root)')
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


@command
def main(argv=None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.analysis import amp_loss_curve
    return amp_loss_curve(
        args.config, osp.join(REPO, 'tools', 'train.py'), args.work_dir,
        steps=args.steps, seed=args.seed, smooth=args.smooth,
        data_root=args.data_root, data_dir=osp.join(REPO, 'data'))


if __name__ == '__main__':
    main()
