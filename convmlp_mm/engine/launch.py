"""Starting a run: CPU distributed set-up and building the Runner.

:func:`setup_cpu_distributed` makes ``--launcher pytorch`` work without CUDA:
mmengine 0.10.7's launcher calls ``torch.cuda.set_device`` and its Runner
wraps DDP with ``device_ids=[LOCAL_RANK]``, both CUDA-only. Here the gloo
process group is initialised first (the Runner then skips its own) and the
model is wrapped by
:class:`~convmlp_mm.engine.model_wrappers.CPUDistributedDataParallel`.

:func:`build_runner` is the tools' one way to a Runner: it sets up the
launcher, adds the metric check, and applies the one process-wide change the
tools make: :func:`~convmlp_mm.engine.allocator.keep_freed_cpu_memory`.
"""
import datetime
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from convmlp_mm.engine.allocator import ENV_SWITCH as ALLOCATOR_SWITCH
from convmlp_mm.engine.allocator import keep_freed_cpu_memory
from convmlp_mm.engine.runner import building_for_training
from convmlp_mm.errors import ConfigError


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Initialise gloo and pick the CPU DDP wrapper for a run without CUDA.

    Returns ``True`` when this process runs distributed on CPU. With CUDA,
    or ``launcher='none'``, nothing changes and mmengine does its own setup.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ConfigError(
            f'--launcher {launcher} needs CUDA (mmengine sets a CUDA device '
            'per process). On a machine without GPUs use torchrun: '
            './dist_detection.sh / ./dist_segmentation.sh, or --launcher '
            'pytorch.')
    missing = [v for v in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                           'MASTER_PORT') if v not in os.environ]
    if missing:
        raise ConfigError(
            f'--launcher pytorch expects torchrun\'s environment; '
            f'{", ".join(missing)} not set. Start it with torchrun (or '
            './dist_detection.sh / ./dist_segmentation.sh).')
    if not torch_dist.is_initialized():
        dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg') or {})
        dist_cfg.pop('backend', None)  # nccl in the bases: GPU only
        if isinstance(dist_cfg.get('timeout'), (int, float)):
            # Seconds, as mmengine's init_dist takes it. It bounds a wait on
            # a peer that hangs; a peer that dies is torchrun's to catch.
            dist_cfg['timeout'] = datetime.timedelta(
                seconds=dist_cfg['timeout'])
        torch_dist.init_process_group(backend='gloo', **dist_cfg)
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None or wrapper.get('type', 'MMDistributedDataParallel') \
            == 'MMDistributedDataParallel':
        wrapper = dict(wrapper or {}, type='CPUDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return True


def add_metric_check(cfg: Config) -> None:
    """Add :class:`~convmlp_mm.engine.hooks.NonFiniteMetricHook`: a run never
    ends with exit status 0 and a NaN metric."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') == 'NonFiniteMetricHook'
               for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='NonFiniteMetricHook')]


def build_runner(cfg: Config, launcher: str = 'none',
                 for_training: bool = False) -> Runner:
    """The registered ``runner_type``, as upstream; ``ConvMLPRunner``
    (strict loading, work-dir lock) when the config names none, recorded in
    the config so the dumped one runs the same way. ``launcher`` (the tools'
    ``--launcher``) goes through :func:`setup_cpu_distributed` first, and
    freed CPU memory is kept for the next step (see
    :mod:`convmlp_mm.engine.allocator`). ``for_training``: a
    ``ConvMLPRunner`` takes the work dir's lock before it writes anything
    there, so a run refused for a busy work dir changes nothing in it."""
    setup_cpu_distributed(cfg, launcher)
    if keep_freed_cpu_memory():
        print_log(f'glibc malloc keeps freed memory for reuse (convmlp_mm.'
                  f'engine.allocator; {ALLOCATOR_SWITCH}=0 turns this off)',
                  logger='current')
    add_metric_check(cfg)
    if 'runner_type' not in cfg:
        cfg.runner_type = 'ConvMLPRunner'
    if not for_training:
        return RUNNERS.build(cfg)
    with building_for_training():
        return RUNNERS.build(cfg)
