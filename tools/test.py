"""Test (and evaluate) a ConvMLP detector or segmentor checkpoint; the config
decides the task.

Upstream's flags (mmdet/mmseg tools/test.py) plus ``--data-root DIR``. See
docs/train_test.md.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

from convmlp_mm.models import CheckpointMismatchError
from convmlp_mm.config.prepare import prepare_test_config
from convmlp_mm.engine.launch import build_runner, setup_cpu_distributed
from convmlp_mm.errors import AnnotationError, CheckpointError, ConfigError
from convmlp_mm.cli import command
from convmlp_mm.config.options import (
    add_class_arguments,
    add_test_view_arguments,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a ConvMLP detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument(
        '--work-dir', help='the dir to save the metrics (json) and logs')
    parser.add_argument(
        '--data-root',
        help='dataset folder in the standard layout (COCO: annotations/, '
        'val2017/; ADE20K: images/, annotations/)')
    parser.add_argument(
        '--out',
        help='detection: dump the predictions to this .pkl file; '
        'segmentation: save the predicted masks into this folder (as '
        'mmdet/mmseg do)')
    parser.add_argument(
        '--show-dir',
        help='save images with the predictions drawn into this folder '
        '(inside the work dir\'s timestamped folder, as upstream)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (e.g. '
        'test_dataloader.dataset.ann_file=annotations/val.json)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--task',
        choices=['detection', 'segmentation'],
        help='refuse a config of the other task')
    add_class_arguments(parser)
    add_test_view_arguments(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


@command
def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        cfg = prepare_test_config(args)
        setup_cpu_distributed(cfg, args.launcher)
        runner = build_runner(cfg)
        runner.test()
    except (ConfigError, CheckpointError, CheckpointMismatchError,
            AnnotationError,
            FileNotFoundError) as exc:
        sys.exit(f'error: {exc}')


if __name__ == '__main__':
    main()
