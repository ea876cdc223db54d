"""ConvMLP backbone, engine pieces and tools for mmdet 3 and mmsegmentation 1.

Importing this package (``custom_imports=dict(imports=['convmlp_mm'])`` in a
config) does the following, and nothing else:

1. checks that mmcv has its compiled ops (one ``ImportError`` pointing to
   ``make install`` otherwise, :mod:`convmlp_mm.install_check`);
2. registers :class:`~convmlp_mm.models.ConvMLP` as ``type='ConvMLP'`` in the
   model registry of each of mmdet and mmseg that is installed
   (:mod:`convmlp_mm.models`);
3. registers every class a config of this project, or a config our tools
   dump, can name: hooks, optimizer and model wrappers, the runner and the
   resumable loops (:mod:`convmlp_mm.engine`), and the image loading
   transform that names a file it cannot read
   (:mod:`convmlp_mm.datasets.transforms`);
4. two process-wide changes: mmengine's checkpoint loading goes through
   ``weights_only=True`` for every scheme
   (:func:`convmlp_mm.checkpoint.safe_loading.register_safe_loaders`, no
   switch: a checkpoint must never run code), and the one ``pkg_resources is
   deprecated`` warning that mmengine's ``mmdet::``/``mmseg::`` config
   handling triggers is filtered.

The tools make one more process-wide change, the allocator setting
(:mod:`convmlp_mm.engine.allocator`, switch ``CONVMLP_KEEP_FREED_MEMORY=0``),
when they build a Runner; importing the package does not.
"""
import warnings

# mmengine 0.10.7 imports pkg_resources whenever a config inherits mmdet::/
# mmseg:: bases, and setuptools >= 80 warns on that import, twice a command.
# Only that one warning is silenced; it says nothing a user can act on.
warnings.filterwarnings(
    'ignore', message='pkg_resources is deprecated', category=UserWarning)

from convmlp_mm.install_check import check_mmcv_ops  # noqa: E402

# A plain `pip install -e .` brings mmcv without its compiled ops: one clear
# ImportError pointing to `make install` instead of a failure deep inside a
# detector.
check_mmcv_ops()

from convmlp_mm import engine  # noqa: E402,F401  (registers hooks and wrappers)
from convmlp_mm.checkpoint import register_safe_loaders  # noqa: E402
from convmlp_mm.datasets import transforms  # noqa: E402,F401  (loading that names the file)
from convmlp_mm.errors import CheckpointError  # noqa: E402
from convmlp_mm.models import (  # noqa: E402
    ARCH_ZOO,
    REGISTERED_IN,
    CheckpointMismatchError,
    ConvMLP,
    convert_official_keys,
    load_backbone_checkpoint,
    resolve_arch,
)
from convmlp_mm.version import __version__  # noqa: E402

register_safe_loaders()

__all__ = [
    'ARCH_ZOO', 'REGISTERED_IN', 'CheckpointError', 'CheckpointMismatchError',
    'ConvMLP', 'convert_official_keys', 'load_backbone_checkpoint',
    'resolve_arch', '__version__'
]
