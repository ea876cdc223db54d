"""Keep freed CPU memory in the process for the next training step.

torch's CPU tensors come from glibc's malloc. By default glibc returns large
freed blocks to the operating system (blocks above a sliding ``mmap``
threshold are unmapped; the heap top is trimmed), so every step touches
fresh pages again and pays a page fault per 4 KiB. On this project's CPU VMs
a ConvMLP-S training step at 512x512 (batch 2) took 30k-85k page faults and
spent 10-25% of its time there; on the GPU the caching allocator avoids the
same cost. PyTorch's CPU tuning guide recommends jemalloc or tcmalloc for
this; :func:`keep_freed_cpu_memory` gets most of the effect from glibc itself
(``mallopt``), with nothing to install: blocks up to 32 MiB come from the
heap and the heap is trimmed only past 2 GiB of free space, so the resident size stays at the peak of a
step, as it does with the GPU's caching allocator.
"""
import ctypes
import ctypes.util
import os
import platform

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses mmap thresholds above HEAP_MAX_SIZE / 2: 32 MiB on 64-bit.
MMAP_THRESHOLD = 32 * 2**20
# mallopt takes a C int: give the heap top back only when 2 GiB lie free.
TRIM_THRESHOLD = 2**31 - 1

# Opting out, e.g. on a machine shared with memory-hungry neighbours.
ENV_SWITCH = 'CONVMLP_KEEP_FREED_MEMORY'

_applied = None


def keep_freed_cpu_memory() -> bool:
    """Tune glibc's malloc as described in the module docstring, once per
    process. Returns whether it applies (glibc on Linux, and the environment
    variable ``CONVMLP_KEEP_FREED_MEMORY`` not set to ``0``)."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(ENV_SWITCH, '1') == '0':
        return False
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    # mallopt returns 1 on success, 0 when glibc refuses the value.
    _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
