"""Test (and evaluate) a ConvMLP detector or segmentor checkpoint; the config
decides the task.

Upstream's flags (mmdet/mmseg tools/test.py) plus ``--data-root DIR``. See
docs/train_test.md.
"""
import argparse

from convmlp_mm_cli import (
    add_test_view_arguments,
    command,
    parse_run_args,
    run_parser,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = run_parser(
        'Test (and evaluate) a ConvMLP detector or segmentor',
        'test config file path', checkpoint=True,
        work_dir_help='the dir to save the metrics (json) and logs',
        data_root_help='dataset folder in the standard layout (COCO: '
        'annotations/, val2017/; ADE20K: images/, annotations/)',
        cfg_example='test_dataloader.dataset.ann_file=annotations/val.json',
        task_help='refuse a config of the other task')
    add_test_view_arguments(parser)
    parser.add_argument(
        '--out',
        help='detection: dump the predictions to this .pkl file; '
        'segmentation: save the predicted masks into this folder (as '
        'mmdet/mmseg do)')
    parser.add_argument(
        '--show-dir',
        help='save images with the predictions drawn into this folder '
        '(inside the work dir\'s timestamped folder, as upstream)')
    return parse_run_args(parser, argv)


@command
def main(argv=None) -> None:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.config import prepare_test_config
    from convmlp_mm.engine import build_runner
    build_runner(prepare_test_config(args), args.launcher).test()


if __name__ == '__main__':
    main()
