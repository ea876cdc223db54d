"""Build a bare ConvMLP backbone from a size or from a model config, for the
analysis tools and the benchmark."""
import logging
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from convmlp_mm.models.arch_zoo import ARCH_ALIASES, ARCH_ZOO
from convmlp_mm.models.backbones import ConvMLP

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def backbone_from(target: str, cfg_options: Optional[dict] = None,
                  seed: int = 0, init_weights: bool = True,
                  **overrides) -> Tuple[ConvMLP, dict, str]:
    """A ConvMLP with its initial weights (seeded), from a size (``s``,
    ``m``, ``l``, ``small``...) or from the backbone of a detector or
    segmentor config. ``overrides`` replace backbone arguments. With
    ``init_weights=False`` the weights are PyTorch's default initialisation
    (what the benchmark's published figures used) instead of the release's.

    Never loads the config's ``init_cfg`` or ``pretrained`` (load a
    checkpoint explicitly). SyncBN becomes BN: one process computes the
    same thing.

    Returns the backbone (in train mode), the input normalisation (``mean``,
    ``std``, ``bgr_to_rgb``, from the config's data preprocessor when there
    is one) and a display name.
    """
    norm = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True)
    if target.lower() in set(ARCH_ZOO) | set(ARCH_ALIASES):
        kwargs = dict(cfg_options or {}, arch=target)
        name = f'ConvMLP-{target[0].upper()}'
    elif osp.isfile(target):
        cfg = Config.fromfile(target)
        cfg.merge_from_dict(dict(cfg_options or {}))
        backbone_cfg = cfg.model.get('backbone')
        if not backbone_cfg or backbone_cfg.get('type') != 'ConvMLP':
            raise ValueError(
                f'{target}: model.backbone is not a ConvMLP; this tool '
                'works on ConvMLP backbones.')
        kwargs = {k: v for k, v in backbone_cfg.items() if k != 'type'}
        preprocessor = cfg.model.get('data_preprocessor') or {}
        for key in norm:
            if preprocessor.get(key) is not None:
                norm[key] = preprocessor[key]
        name = osp.splitext(osp.basename(target))[0]
    else:
        raise ValueError(
            f'{target!r} is neither a backbone size (s, m, l) nor an '
            f'existing config file.')
    kwargs.update(init_cfg=None, pretrained=None)
    kwargs.update(overrides)
    if isinstance(kwargs.get('norm_cfg'), dict) and \
            'SyncBN' in kwargs['norm_cfg'].get('type', ''):
        kwargs['norm_cfg'] = dict(kwargs['norm_cfg'], type='BN')
    torch.manual_seed(seed)
    backbone = ConvMLP(**kwargs)
    if init_weights:
        # mmengine logs one record per parameter (600 lines) at INFO when
        # the logger has no file: the tools print their result instead.
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            backbone.init_weights()
        finally:
            logger.setLevel(level)
    return backbone, norm, name
