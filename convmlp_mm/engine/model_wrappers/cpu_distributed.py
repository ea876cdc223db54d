"""Distributed training without CUDA: :class:`CPUDistributedDataParallel`.

mmengine 0.10.7's Runner wraps DDP with ``device_ids=[LOCAL_RANK]``, which
DDP rejects for a CPU module. A 2-process CPU launch
(``./dist_detection.sh ... 2 DATA``) sets ``model_wrapper_cfg=dict(
type='CPUDistributedDataParallel')`` (see
:func:`convmlp_mm.engine.launch.setup_cpu_distributed`), and the config it
dumps names it.
"""
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` for processes without a GPU.

    ``device_ids`` is dropped. torch's SyncBatchNorm has no CPU kernel, so
    SyncBN layers become plain BN (per-process statistics), as mmengine does
    for non-distributed runs.
    """

    def __init__(self, module: nn.Module, device_ids=None, **kwargs):
        num_sync = sum(isinstance(m, nn.SyncBatchNorm) or
                       type(m).__name__ == 'SyncBatchNorm'
                       for m in module.modules())
        if num_sync:
            print_log(f'CPU distributed run: {num_sync} SyncBN layers become '
                      'BN (torch has no CPU SyncBN)', logger='current')
            module = revert_sync_batchnorm(module)
        super().__init__(module=module, device_ids=None, **kwargs)
