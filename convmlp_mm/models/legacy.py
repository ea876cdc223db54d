"""The original release's trained models: mmdet 2 / mmseg 0.x checkpoints.

:func:`upgrade_state_dict` is the one place a whole-model state dict is
upgraded before the strict fit check (``convmlp_mm.models.loading``
calls it for ``load_from``, ``--resume``, ``tools/test.py`` and inference);
``tools/model_converters/convmlp_release2mm.py`` uses it offline.

The release trained its nine downstream models with mmdet 2 and mmseg 0.x
(mmcv 1). Their files are ``{'meta', 'state_dict', 'optimizer'}``; ``meta``
holds ``CLASSES`` (mmseg also ``PALETTE``), the ``config`` text and the
mmcv 1 / mmdet 2 / mmseg 0.x versions, where mmengine keeps the class names
in ``meta['dataset_meta']``.

Parameter names: every module those nine configs build was compared between
the 2.x / 0.x sources and mmdet 3.3 / mmseg 1.2 (table below). None was
renamed, so the upgrade of their tensors is the identity; what differs is
the ``meta``, read by :func:`legacy_dataset_meta` and
:func:`check_checkpoint_classes`.
The release's backbones subclass its ImageNet ``ConvMLP`` with
``classifier_head=False`` (its src/detection/__init__.py, DetConvMLP), so
their ``backbone.*`` keys are the ImageNet names without ``norm``/``head``:
the names of our ``ConvMLP``.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from convmlp_mm.errors import LegacyCheckpointError

# Per module, the (old regex, new) renames from mmdet 2.x / mmseg 0.x to
# mmdet 3.3 / mmseg 1.2, applied to keys under the module's prefix. Each is
# empty: the attribute names are the same in both versions. Read in the
# mmdet 2.28.2 and mmsegmentation 0.30.0 wheels (PyPI), file:line:
#   FPN, mmdet/models/necks/fpn.py:106-107,128-129,149: lateral_convs.{i}
#     and fpn_convs.{i}, each an mmcv ConvModule whose weight is ``conv``
#     (mmcv 1 and 2 alike).
#   RetinaHead, mmdet/models/dense_heads/retina_head.py:64-65,86,91:
#     cls_convs.{i}.conv, reg_convs.{i}.conv, retina_cls, retina_reg.
#   RPNHead, mmdet/models/dense_heads/rpn_head.py:54,56,59 (num_convs=1):
#     rpn_conv, rpn_cls, rpn_reg.
#   Shared2FCBBoxHead, mmdet/models/roi_heads/bbox_heads/
#     convfc_bbox_head.py:58,154,87,94: shared_fcs.{0,1}, fc_cls, fc_reg;
#     background is the last of the num_classes + 1 scores in both.
#   FCNMaskHead, mmdet/models/roi_heads/mask_heads/fcn_mask_head.py:72,91,
#     110: convs.{0-3}.conv, upsample (deconv), conv_logits.
#   StandardRoIHead holds them as roi_head.bbox_head / roi_head.mask_head;
#     its RoI extractors and every loss module hold no parameters.
#   FPNHead, mmseg/models/decode_heads/fpn_head.py:31,38-53:
#     scale_heads.{i}.{j}.conv / .bn; conv_seg from decode_head.py:131.
# mmdet 3 / mmseg 1 data preprocessors keep mean and std as non-persistent
# buffers, so they add no keys either.
LEGACY_RENAMES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    'neck': (),  # FPN
    'bbox_head': (),  # RetinaHead
    'rpn_head': (),  # RPNHead
    'roi_head.bbox_head': (),  # Shared2FCBBoxHead
    'roi_head.mask_head': (),  # FCNMaskHead
    'decode_head': (),  # FPNHead
    'backbone': (),  # the release's DetConvMLP / SegConvMLP
}

# The versions mmcv 1's runner wrote into ``meta``: a file with one of these
# (or with ``CLASSES``, which mmengine never writes) is legacy.
LEGACY_VERSIONS = (('mmcv_version', '1.'), ('mmdet_version', '2.'),
                   ('mmseg_version', '0.'))


def is_legacy_meta(meta: Optional[Mapping]) -> bool:
    """Whether a checkpoint's ``meta`` was written by mmcv 1 (mmdet 2 /
    mmseg 0.x)."""
    if not isinstance(meta, Mapping):
        return False
    if 'CLASSES' in meta:
        return True
    return any(str(meta.get(key, '')).startswith(prefix)
               for key, prefix in LEGACY_VERSIONS)


def legacy_dataset_meta(meta: Mapping) -> Dict[str, object]:
    """mmengine's ``dataset_meta`` (``classes``, ``palette``) from an mmcv 1
    ``meta`` (``CLASSES``, ``PALETTE``); empty where it holds neither."""
    out: Dict[str, object] = {}
    if meta.get('CLASSES') is not None:
        out['classes'] = tuple(str(c) for c in meta['CLASSES'])
    if meta.get('PALETTE') is not None:
        out['palette'] = [tuple(int(v) for v in c) for c in meta['PALETTE']]
    return out


def _short(names: Sequence[str], limit: int = 4) -> str:
    shown = ', '.join(repr(n) for n in names[:limit])
    return f'({shown}{", ..." if len(names) > limit else ""})'


def check_checkpoint_classes(meta: Optional[Mapping],
                             classes: Optional[Sequence[str]],
                             checkpoint_name: str = 'checkpoint',
                             config_name: str = 'config') -> None:
    """Raise :class:`LegacyCheckpointError` (one line, naming both lists)
    when the class names a checkpoint's ``meta`` records differ from
    ``classes``. Reads mmcv 1's ``CLASSES`` and mmengine's
    ``dataset_meta.classes``; a checkpoint recording neither passes."""
    if not isinstance(meta, Mapping) or classes is None:
        return
    recorded = legacy_dataset_meta(meta).get('classes')
    if recorded is None and isinstance(meta.get('dataset_meta'), Mapping):
        found = meta['dataset_meta'].get('classes')
        recorded = tuple(found) if found is not None else None
    classes = tuple(classes)
    if recorded is None or recorded == classes:
        return
    differ = [f'{i}: {a!r} vs {b!r}'
              for i, (a, b) in enumerate(zip(recorded, classes)) if a != b]
    raise LegacyCheckpointError(
        f'{checkpoint_name} was trained on {len(recorded)} classes '
        f'{_short(recorded)} but {config_name} names {len(classes)} '
        f'{_short(classes)}' +
        (f' (first differences {"; ".join(differ[:3])})' if differ else '') +
        '; use the config the checkpoint was trained with, or set the '
        "config's classes to the checkpoint's")


def rename_keys(
    state_dict: Mapping[str, torch.Tensor],
    renames: Mapping[str, Sequence[Tuple[str, str]]] = LEGACY_RENAMES
) -> 'OrderedDict[str, torch.Tensor]':
    """Apply ``renames`` (module prefix -> (old regex, new) pairs) to the keys
    under each prefix; other keys and every tensor pass unchanged."""
    out = OrderedDict()
    for key, value in state_dict.items():
        for prefix, pairs in renames.items():
            if key.startswith(prefix + '.'):
                rest = key[len(prefix) + 1:]
                for old, new in pairs:
                    rest = re.sub(old, new, rest)
                key = f'{prefix}.{rest}'
                break
        out[key] = value
    return out


def upgrade_state_dict(state_dict: Mapping[str, torch.Tensor],
                       checkpoint_meta: Optional[Mapping],
                       model: nn.Module) -> Dict[str, torch.Tensor]:
    """Return ``state_dict`` in this project's layout for ``model``.

    Args:
        state_dict: The checkpoint's tensors.
        checkpoint_meta: The checkpoint's ``meta`` (``{}`` for a plain state
            dict); mmcv 1's versions or ``CLASSES`` mark a release file.
        model: The model it will be loaded into. When its ``dataset_meta``
            names classes (mmdet's ``init_detector`` and mmseg's
            ``init_model`` set it), a release file's ``CLASSES`` must match.

    The identity for mmdet 3 / mmseg 1 checkpoints; for release files the
    :data:`LEGACY_RENAMES` (none for the nine configs). A ``module.`` on
    every key is stripped when the model's own keys have none. The strict
    fit check is the caller's.
    """
    own_keys = model.state_dict().keys()
    if (state_dict and not any(k.startswith('module.') for k in own_keys)
            and all(k.startswith('module.') for k in state_dict)):
        state_dict = OrderedDict(
            (k[len('module.'):], v) for k, v in state_dict.items())
    if not is_legacy_meta(checkpoint_meta):
        return state_dict if isinstance(state_dict, dict) else OrderedDict(
            state_dict)
    dataset_meta = getattr(model, 'dataset_meta', None)
    if isinstance(dataset_meta, Mapping):
        check_checkpoint_classes(checkpoint_meta,
                                 dataset_meta.get('classes'),
                                 config_name='the model')
    return rename_keys(state_dict)


__all__ = [
    'LEGACY_RENAMES', 'check_checkpoint_classes', 'is_legacy_meta',
    'legacy_dataset_meta', 'rename_keys', 'upgrade_state_dict'
]
