#!/usr/bin/env python
"""Convert one of the original release's trained models (mmdet 2 / mmseg 0.x)
into an mmengine checkpoint for the matching config here.

The file's recorded class names must be the config's; every tensor must fit
the config's model (strict: nothing missing, extra or of another shape). The
output holds ``state_dict`` and ``meta.dataset_meta`` (classes, palette).

    python tools/model_converters/convmlp_release2mm.py \
        configs/detection/maskrcnn_convmlp_s_fpn_1x_coco.py \
        maskrcnn_convmlp_s_coco.pth maskrcnn_convmlp_s_coco_mm3.pth
"""
import argparse
import sys

from convmlp_mm_cli import CfgOptions, command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the model was trained as')
    parser.add_argument('src', help='release checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def convert(args: argparse.Namespace) -> str:
    # Here, not at the top: --help answers before torch loads.
    from mmengine.runner.checkpoint import CheckpointLoader

    from convmlp_mm.checkpoint import (
        check_state_dict_fits,
        extract_state_dict,
        save_checkpoint_atomically,
    )
    from convmlp_mm.config import build_model, config_classes, load_config
    from convmlp_mm.errors import LegacyCheckpointError
    from convmlp_mm.models import (
        check_checkpoint_classes,
        is_legacy_meta,
        legacy_dataset_meta,
        upgrade_state_dict,
    )
    cfg = load_config(args.config, args.cfg_options)
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not is_legacy_meta(meta):
        raise LegacyCheckpointError(
            f'{args.src} has no mmcv 1 meta (CLASSES, mmcv_version 1.x): it '
            'is not an mmdet 2 / mmseg 0.x checkpoint; an mmengine checkpoint '
            'needs no conversion, pass it to tools/test.py as it is')
    check_checkpoint_classes(meta, config_classes(cfg),
                             f'checkpoint {args.src}',
                             f'config {args.config}')
    # Without its ImageNet checkpoint: every tensor comes from the file.
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    state_dict = upgrade_state_dict(extract_state_dict(checkpoint, args.src),
                                    meta, model)
    check_state_dict_fits(
        model, state_dict, f'{args.src} does not fit the model of '
        f'{args.config}', 'Use the config of the same detector/segmentor and '
        'size as the checkpoint.')
    versions = {k: meta[k] for k in ('mmcv_version', 'mmdet_version',
                                     'mmseg_version') if k in meta}
    save_checkpoint_atomically(
        dict(state_dict=state_dict,
             meta=dict(dataset_meta=legacy_dataset_meta(meta),
                       converted_from=args.src, source_versions=versions)),
        args.dst)
    return (f'wrote {args.dst}: {len(state_dict)} tensors, '
            f'{len(legacy_dataset_meta(meta).get("classes", ()))} classes, '
            f'from {", ".join(f"{k} {v}" for k, v in versions.items())}')


@command
def main(argv=None) -> int:
    print(convert(parse_args(argv)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
