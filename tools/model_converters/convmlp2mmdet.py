#!/usr/bin/env python
"""Convert an official ConvMLP ImageNet checkpoint into a backbone-only file.

The output holds ``{'state_dict': ..., 'meta': ...}`` with the classifier's
``norm.*``/``head.*`` removed and every tensor checked against the ConvMLP of
the given size. With ``--add-prefix`` the keys start with ``backbone.``, as
in a detector/segmentor checkpoint; either form goes into the backbone's
``init_cfg`` (a whole-model ``load_from`` refuses a backbone-only file).

    python tools/model_converters/convmlp2mmdet.py \
        convmlp_s_imagenet.pth convmlp_s_backbone.pth [--arch s] [--add-prefix]
"""
import argparse
import sys
from collections import OrderedDict

from convmlp_mm_cli import command


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument(
        '--arch', help='s, m or l (default: detected from the checkpoint)')
    parser.add_argument('--add-prefix', action='store_true',
                        help='prefix every key with "backbone."')
    return parser.parse_args(argv)


@command
def main(argv=None) -> int:
    args = parse_args(argv)
    # After parsing: --help answers before torch loads.
    from mmengine.runner.checkpoint import CheckpointLoader

    from convmlp_mm.checkpoint import (
        check_state_dict_fits,
        extract_state_dict,
        save_checkpoint_atomically,
    )
    from convmlp_mm.errors import CheckpointMismatchError
    from convmlp_mm.models import (
        ConvMLP,
        arch_advice,
        convert_official_keys,
        guess_arch,
    )
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    state_dict, dropped = convert_official_keys(
        extract_state_dict(checkpoint, args.src))
    arch = args.arch or guess_arch(state_dict)
    if arch is None:
        raise CheckpointMismatchError(
            f'Checkpoint "{args.src}" matches none of ConvMLP-S/M/L; '
            'pass --arch (or check the file).')
    model = ConvMLP(arch=arch)
    check_state_dict_fits(
        model, state_dict,
        f'Checkpoint "{args.src}" does not fit ConvMLP-{arch.upper()}',
        arch_advice(model, state_dict))
    prefix = 'backbone.' if args.add_prefix else ''
    out = OrderedDict((prefix + k, v) for k, v in state_dict.items())
    save_checkpoint_atomically(
        dict(state_dict=out, meta=dict(source=args.src, arch=arch)), args.dst)
    print(f'wrote {args.dst}: ConvMLP-{arch.upper()}, {len(out)} tensors'
          f'{" with prefix backbone." if prefix else ""}; dropped '
          f'{len(dropped["classifier"])} classifier tensors')
    return 0


if __name__ == '__main__':
    sys.exit(main())
