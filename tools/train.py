"""Train a ConvMLP detector (mmdet) or segmentor (mmseg); the config decides.

Upstream's flags (mmdet/mmseg tools/train.py) plus ``--data-root DIR``. See
docs/train_test.md.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from convmlp_mm.engine import NonFiniteLossError
from convmlp_mm.models import CheckpointMismatchError
from convmlp_mm.config.prepare import prepare_train_config
from convmlp_mm.engine.launch import build_runner, setup_cpu_distributed
from convmlp_mm.errors import AnnotationError, CheckpointError, ConfigError
from convmlp_mm.cli import command
from convmlp_mm.config.options import (
    add_class_arguments,
    add_train_weight_arguments,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a ConvMLP detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--data-root',
        help='dataset folder in the standard layout (COCO: annotations/, '
        'train2017/, val2017/; ADE20K: images/, annotations/); every '
        'dataloader and evaluator reads from it')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: float16 with loss scaling on GPU, bfloat16 '
        'autocast on CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by (GPUs x batch per GPU) / '
        'auto_scale_lr.base_batch_size (16 in these configs)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or, without a path, from the '
        'latest checkpoint in the work dir (also the default when the work '
        'dir has a last_checkpoint)')
    parser.add_argument(
        '--no-resume',
        action='store_true',
        help='start afresh even if the work dir has a last_checkpoint '
        '(docs/preemption.md)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_dataloader.batch_size=4 '
        'model.backbone.init_cfg.checkpoint=convmlp_s_imagenet.pth)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--task',
        choices=['detection', 'segmentation'],
        help='refuse a config of the other task (dist_*.sh pass this)')
    parser.add_argument(
        '--preflight',
        action='store_true',
        help='check the config, task and data folder, then exit without '
        'building anything (dist_*.sh run this once before the processes)')
    add_class_arguments(parser)
    add_train_weight_arguments(parser)
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


@command
def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        cfg = prepare_train_config(args)
        if args.preflight:
            return
        setup_cpu_distributed(cfg, args.launcher)
        runner = build_runner(cfg)
        runner.train()
    except (ConfigError, CheckpointError, CheckpointMismatchError,
            AnnotationError, FileNotFoundError, NonFiniteLossError) as exc:
        # What the user must change, without a traceback to dig through.
        sys.exit(f'error: {exc}')


if __name__ == '__main__':
    main()
