"""The ConvMLP backbone, its layers, sizes and checkpoint handling.

Importing this package registers :class:`ConvMLP` as ``type='ConvMLP'`` and
the Pure-MLP baseline :class:`PureMLP` as ``type='PureMLP'`` in the
``MODELS`` registry of each of mmdet and mmseg that is installed, each
guarded on its own.

``CheckpointMismatchError`` (home: :mod:`convmlp_mm.errors`),
``check_state_dict_fits`` and ``extract_state_dict`` (home:
:mod:`convmlp_mm.checkpoint.fit`) are re-exported here, where they were.
"""
from convmlp_mm.checkpoint import check_state_dict_fits, extract_state_dict
from convmlp_mm.errors import CheckpointMismatchError
from convmlp_mm.models.arch_zoo import ARCH_ALIASES, ARCH_ZOO, resolve_arch
from convmlp_mm.models.backbones import ConvMLP, ConvMLPBase, PureMLP
from convmlp_mm.models.builder import BACKBONES, backbone_class
from convmlp_mm.models.layers import channel_mlps_as, cpu_info
from convmlp_mm.models.legacy import (
    check_checkpoint_classes,
    is_legacy_meta,
    legacy_dataset_meta,
    upgrade_state_dict,
)
from convmlp_mm.models.official import (
    arch_advice,
    convert_official_keys,
    guess_arch,
    load_backbone_checkpoint,
)


def _register(registry_module: str) -> bool:
    try:
        module = __import__(registry_module, fromlist=['MODELS'])
    except ImportError:
        return False
    # Python imports this package once per name, so this runs once; a copy
    # imported under a second name would (rightly) fail as already registered.
    for backbone in BACKBONES.values():
        module.MODELS.register_module(module=backbone)
    return True


REGISTERED_IN = tuple(
    name for name in ('mmdet.registry', 'mmseg.registry') if _register(name))

__all__ = [
    'ARCH_ALIASES', 'ARCH_ZOO', 'BACKBONES', 'REGISTERED_IN',
    'CheckpointMismatchError', 'ConvMLP', 'ConvMLPBase', 'PureMLP',
    'arch_advice', 'backbone_class', 'channel_mlps_as',
    'check_checkpoint_classes', 'check_state_dict_fits',
    'convert_official_keys', 'cpu_info', 'extract_state_dict', 'guess_arch',
    'is_legacy_meta', 'legacy_dataset_meta', 'load_backbone_checkpoint',
    'resolve_arch', 'upgrade_state_dict'
]
