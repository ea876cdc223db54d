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

from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.models import CheckpointMismatchError, extract_state_dict
from convmlp_mm.models.legacy import (
    LegacyCheckpointError,
    check_classes,
    config_classes,
    is_legacy_meta,
    legacy_dataset_meta,
    upgrade_state_dict,
)
from convmlp_mm.checkpoint.fileio import save_checkpoint_atomically
from convmlp_mm.config.core import load_config
from convmlp_mm.errors import CheckpointError, ConfigError
from convmlp_mm.cli import command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the model was trained as')
    parser.add_argument('src', help='release checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def build_model(cfg):
    """The config's model, without its ImageNet checkpoint (every tensor
    comes from the release file)."""
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def check_fits(model, state_dict, src: str, config: str) -> None:
    """Strict: one line naming the first keys missing, extra or of another
    shape, when any is."""
    own = model.state_dict()
    problems = [f'missing {k}' for k in own if k not in state_dict]
    problems += [f'unexpected {k}' for k in state_dict if k not in own]
    problems += [
        f'{k} is {tuple(state_dict[k].shape)} in the file, '
        f'{tuple(own[k].shape)} in the model' for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape]
    if problems:
        raise LegacyCheckpointError(
            f'{src} does not fit the model of {config} ({len(problems)} '
            f'problems: {"; ".join(problems[:3])}'
            f'{"; ..." if len(problems) > 3 else ""}); use the config of '
            'the same detector/segmentor and size as the checkpoint')


def convert(args: argparse.Namespace) -> str:
    cfg = load_config(args.config, args.cfg_options)
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not is_legacy_meta(meta):
        raise LegacyCheckpointError(
            f'{args.src} has no mmcv 1 meta (CLASSES, mmcv_version 1.x): it '
            'is not an mmdet 2 / mmseg 0.x checkpoint; an mmengine checkpoint '
            'needs no conversion, pass it to tools/test.py as it is')
    check_classes(meta, config_classes(cfg), f'checkpoint {args.src}',
                  f'config {args.config}')
    model = build_model(cfg)
    state_dict = upgrade_state_dict(extract_state_dict(checkpoint), meta,
                                    model)
    check_fits(model, state_dict, args.src, args.config)
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
    args = parse_args(argv)
    try:
        print(convert(args))
    except (CheckpointError, CheckpointMismatchError, ConfigError,
            LegacyCheckpointError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
