"""Train a ConvMLP detector (mmdet) or segmentor (mmseg); the config decides.

Upstream's flags (mmdet/mmseg tools/train.py) plus ``--data-root DIR``. See
docs/train_test.md.
"""
import argparse

from convmlp_mm_cli import (
    add_train_weight_arguments,
    command,
    parse_run_args,
    run_parser,
    startup_signals,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = run_parser(
        'Train a ConvMLP detector or segmentor', 'train config file path',
        checkpoint=False, work_dir_help='the dir to save logs and models',
        data_root_help='dataset folder in the standard layout (COCO: '
        'annotations/, train2017/, val2017/; ADE20K: images/, annotations/); '
        'every dataloader and evaluator reads from it',
        cfg_example='train_dataloader.batch_size=4 '
        'model.backbone.init_cfg.checkpoint=convmlp_s_imagenet.pth',
        task_help='refuse a config of the other task (dist_*.sh pass this)')
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
        '--preflight',
        action='store_true',
        help='check the config, task and data folder, then exit without '
        'building anything (dist_*.sh run this once before the processes)')
    add_train_weight_arguments(parser)
    return parse_run_args(parser, argv)


@command
def main(argv=None) -> None:
    # A preemption signal before training starts exits 75 (try again),
    # as one during training does (docs/preemption.md).
    with startup_signals():
        args = parse_args(argv)
        # After parsing: --help answers before torch loads.
        from convmlp_mm.config import completed_run, prepare_train_config
        from convmlp_mm.engine import build_runner
        cfg = prepare_train_config(args)
        complete = completed_run(cfg)
        if complete:
            print(complete)
        elif not args.preflight:
            build_runner(cfg, args.launcher, for_training=True).train()


if __name__ == '__main__':
    main()
