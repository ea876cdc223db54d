"""ConvMLP backbone, engine pieces and tools for mmdet 3 and mmsegmentation 1.

Importing this package (``custom_imports=dict(imports=['convmlp_mm'])`` in a
config) does three things, and nothing else:

1. registers :class:`~convmlp_mm.models.ConvMLP` as ``type='ConvMLP'`` in the
   model registry of each of mmdet and mmseg that is installed
   (:mod:`convmlp_mm.models`);
2. registers every engine class a config of this project, or a config our
   tools dump, can name: ``AtomicCheckpointHook``, ``NonFiniteLossHook``,
   ``CPUAmpOptimWrapper``, ``CPUDistributedDataParallel``
   (:mod:`convmlp_mm.engine`);
3. routes mmengine's checkpoint loading through ``weights_only=True``
   (:func:`convmlp_mm.utils.safe_loading.register_safe_loaders`): the one
   process-wide change the import makes.

Before that it checks that mmcv has its compiled ops (one ``ImportError``
pointing to ``make install`` otherwise, :mod:`convmlp_mm.install_check`), and
it silences the one ``pkg_resources is deprecated`` warning that mmengine's
``mmdet::``/``mmseg::`` config handling triggers.

The tools make one more process-wide change, the allocator setting
(:mod:`convmlp_mm.utils.allocator`, switch ``CONVMLP_KEEP_FREED_MEMORY=0``),
when they build a Runner; importing the package does not.
"""
import warnings

# mmengine 0.10.7 imports pkg_resources whenever a config inherits mmdet::/
# mmseg:: bases, and setuptools >= 80 warns on that import, twice a command.
# Only that one warning is silenced; it says nothing a user can act on.
warnings.filterwarnings(
    'ignore', message='pkg_resources is deprecated', category=UserWarning)

from .install_check import check_mmcv_ops  # noqa: E402

# A plain `pip install -e .` brings mmcv without its compiled ops: one clear
# ImportError pointing to `make install` instead of a failure deep inside a
# detector.
check_mmcv_ops()

from . import engine  # noqa: E402,F401  (registers hooks and wrappers)
from .datasets import transforms  # noqa: E402,F401  (loading that names the file)
from .models import (  # noqa: E402
                     ARCH_ZOO,
                     REGISTERED_IN,
                     CheckpointMismatchError,
                     ConvMLP,
                     convert_official_keys,
                     load_backbone_checkpoint,
                     resolve_arch,
)
from .utils.safe_loading import (  # noqa: E402
    CheckpointError,
    register_safe_loaders,
)
from .version import __version__  # noqa: E402

register_safe_loaders()

__all__ = [
    'ARCH_ZOO', 'REGISTERED_IN', 'CheckpointError', 'CheckpointMismatchError',
    'ConvMLP', 'convert_official_keys', 'load_backbone_checkpoint',
    'resolve_arch', '__version__'
]
