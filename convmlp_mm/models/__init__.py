"""The ConvMLP backbone, its layers, sizes and checkpoint handling.

Importing this package registers :class:`ConvMLP` as ``type='ConvMLP'`` in
the ``MODELS`` registry of each of mmdet and mmseg that is installed, each
guarded on its own.
"""
from convmlp_mm.models.arch_zoo import ARCH_ALIASES, ARCH_ZOO, resolve_arch
from convmlp_mm.models.backbones import ConvMLP
from convmlp_mm.models.official import (
    CheckpointMismatchError,
    check_state_dict_fits,
    convert_official_keys,
    extract_state_dict,
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
    module.MODELS.register_module(module=ConvMLP)
    return True


REGISTERED_IN = tuple(
    name for name in ('mmdet.registry', 'mmseg.registry') if _register(name))

__all__ = [
    'ARCH_ALIASES', 'ARCH_ZOO', 'REGISTERED_IN', 'CheckpointMismatchError',
    'ConvMLP', 'check_state_dict_fits', 'convert_official_keys',
    'extract_state_dict', 'guess_arch', 'load_backbone_checkpoint',
    'resolve_arch'
]
