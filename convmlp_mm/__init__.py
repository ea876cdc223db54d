"""ConvMLP backbone for mmdet 3 and mmsegmentation 1.

Importing this package (``custom_imports=dict(imports=['convmlp_mm'])`` in a
config) registers :class:`ConvMLP` as ``type='ConvMLP'`` in the model
registry of each of mmdet and mmseg that is installed, and routes mmengine's
checkpoint loading through ``weights_only=True`` (see
:mod:`convmlp_mm.checkpoint`).
"""
from .arch import ARCH_ZOO, resolve_arch
from .backbone import ConvMLP
from .checkpoint import (CheckpointError, CheckpointMismatchError,
                         convert_official_keys, load_backbone_checkpoint,
                         register_safe_loaders)
from .version import __version__

__all__ = [
    'ARCH_ZOO', 'ConvMLP', 'CheckpointError', 'CheckpointMismatchError',
    'convert_official_keys', 'load_backbone_checkpoint', 'resolve_arch',
    '__version__'
]

register_safe_loaders()
# Registers AtomicCheckpointHook and NonFiniteLossHook in mmengine's HOOKS.
from . import hooks  # noqa: E402,F401


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
