"""Build a bare ConvMLP (or Pure-MLP) backbone from a size or from a model
config, for the analysis tools and the benchmark; find the backbone class a
config's ``type`` names."""
import logging
import os.path as osp
from typing import Dict, Optional, Tuple, Type

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from convmlp_mm.models.arch_zoo import ARCH_ALIASES, ARCH_ZOO
from convmlp_mm.models.backbones import ConvMLP, ConvMLPBase, PureMLP

# The backbones of this package, by the ``type`` a config gives them.
BACKBONES: Dict[str, Type[ConvMLPBase]] = {'ConvMLP': ConvMLP,
                                           'PureMLP': PureMLP}


def backbone_class(type_) -> Optional[Type[ConvMLPBase]]:
    """The backbone class of a config's ``type``: ``'ConvMLP'``,
    ``'mmdet.PureMLP'``..., or the class itself; ``None`` when it is not
    one of :data:`BACKBONES`."""
    if isinstance(type_, type):
        return type_ if type_ in BACKBONES.values() else None
    if not isinstance(type_, str):
        return None
    return BACKBONES.get(type_.rpartition('.')[2])


IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def backbone_from(target: str, cfg_options: Optional[dict] = None,
                  seed: int = 0, init_weights: bool = True,
                  **overrides) -> Tuple[ConvMLPBase, dict, str]:
    """A ConvMLP with its initial weights (seeded), from a size (``s``,
    ``m``, ``l``, ``small``...) or from the backbone of a detector or
    segmentor config (a ConvMLP or a PureMLP). ``overrides`` replace
    backbone arguments; for a size, ``cfg_options`` are the backbone's
    arguments, ``type='PureMLP'`` among them picking the Pure-MLP baseline
    (``type='PureMLP', conv_stage=True``...: the rows of Table 2). With
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
        kwargs.setdefault('type', 'ConvMLP')
        name = f'{kwargs["type"]}-{target[0].upper()}'
    elif osp.isfile(target):
        cfg = Config.fromfile(target)
        cfg.merge_from_dict(dict(cfg_options or {}))
        backbone_cfg = cfg.model.get('backbone')
        if not backbone_cfg or not backbone_class(backbone_cfg.get('type')):
            raise ValueError(
                f'{target}: model.backbone is not a ConvMLP; this tool '
                f'works on the backbones {", ".join(BACKBONES)}.')
        kwargs = dict(backbone_cfg)
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
    type_ = kwargs.pop('type')
    cls = backbone_class(type_)
    if cls is None:
        raise ValueError(f'Backbone type {type_!r} is not one of '
                         f'{", ".join(BACKBONES)}.')
    torch.manual_seed(seed)
    backbone = cls(**kwargs)
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
