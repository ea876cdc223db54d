#!/usr/bin/env python
"""Publish a checkpoint, as mmdet's publish_model.py: keep the weights and
``meta`` (classes, palette, config, versions), drop the training state
(optimizer, message hub, schedulers, random states) and write
``OUT-<first 8 hex of its sha256>.pth`` crash-safely.

    python tools/model_converters/publish_model.py \\
        work_dirs/demo/retinanet/epoch_12.pth retinanet_demo.pth
    # -> retinanet_demo-<hash>.pth; every tool that takes a checkpoint
    #    takes it (tools/test.py, tools/inference.py, the exporter)
"""
import argparse
from typing import Optional, Sequence

from convmlp_mm_cli import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('in_file', help='checkpoint from tools/train.py')
    parser.add_argument('out_file', help='output name; the hash is added '
                        'before .pth')
    return parser.parse_args(argv)


def _mb(size: int) -> str:
    return f'{size / 2**20:.1f} MB'


@command
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from convmlp_mm.deploy import publish_checkpoint
    report = publish_checkpoint(args.in_file, args.out_file)
    dropped = ', '.join(report['dropped']) or 'nothing'
    print(f'dropped {dropped}')
    print(f'published {report["path"]}: {_mb(report["size_out"])} '
          f'(was {_mb(report["size_in"])}), sha256 {report["sha256"]}')
    return report


if __name__ == '__main__':
    main()
