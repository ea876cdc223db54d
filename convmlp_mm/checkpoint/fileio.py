"""Crash-safe file writes: a reader (or a resumed run) sees the old file or
the new one, never half of one.

Room: the new file is written beside the old one under a ``.partial`` name
and renamed over it only when complete, so for a moment both exist: writing
a file of N bytes needs N bytes free even when it replaces one of N bytes.
A write that finds the disk full (``ENOSPC``, ``EDQUOT``) or the file too
large (``EFBIG``) removes its ``.partial`` and raises :class:`DiskFullError`
naming the file, the bytes needed and the bytes free; the old file is kept.
A write that fails with any other error removes its ``.partial`` too.

torch's own writer (``torch.save`` to a path) reports a failed write as a
``RuntimeError`` from ``inline_container.cc`` without the reason, so
:func:`save_checkpoint_atomically` hands it a Python file object: the
``OSError`` (with its errno) is then the ``RuntimeError``'s context.
"""
import errno
import os
import os.path as osp
import shutil
from typing import Callable, Optional, Union

import torch

from convmlp_mm.errors import DiskFullError

PARTIAL_SUFFIX = '.partial'
NO_ROOM = {errno.ENOSPC: 'the disk is full',
           errno.EDQUOT: 'the disk quota is used up',
           errno.EFBIG: 'the file is larger than this file system or the '
           'process\'s file-size limit (ulimit -f) allows'}


def tensor_bytes(obj) -> int:
    """Bytes of the tensors and arrays in ``obj`` (nested dicts, lists,
    tuples): about what ``torch.save`` writes for a checkpoint."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if hasattr(obj, 'nbytes') and hasattr(obj, 'dtype'):  # numpy
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _size(n: int) -> str:
    for unit in ('bytes', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return f'{n} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
        n /= 1024
    return f'{n} bytes'


# What to do once there is room again, by default.
RUN_AGAIN = 'run the same command again'


def _no_room_errno(exc: BaseException) -> Optional[int]:
    """The errno of :data:`NO_ROOM` behind ``exc``: its own or that of the
    ``OSError`` in its context chain (torch's writer raises a
    ``RuntimeError`` while handling the file object's ``OSError``)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno if seen.errno in NO_ROOM else None
        seen = seen.__cause__ or seen.__context__
    return None


def write_failure(exc: Exception, path: str,
                  needed: Union[int, Callable[[], int]],
                  previous: Optional[str] = None,
                  then: str = RUN_AGAIN) -> Exception:
    """After a failed write of ``path``: remove its ``.partial`` and return
    the error to raise, a :class:`DiskFullError` when there was no room
    (``exc`` itself otherwise). ``needed`` (an int, or a function asked
    only then) is the size of the file; ``previous`` names the file kept;
    ``then`` says what to do once there is room."""
    partial = path + PARTIAL_SUFFIX
    if osp.exists(partial):
        os.remove(partial)
    code = _no_room_errno(exc)
    if code is None:
        return exc
    folder = osp.dirname(osp.abspath(path))
    needed = needed() if callable(needed) else needed
    free = shutil.disk_usage(folder).free
    kept = (f' The previous checkpoint {previous} is kept.'
            if previous and osp.isfile(previous) else ' No file was changed.')
    return DiskFullError(
        f'Could not write {path}: {NO_ROOM[code]} ({os.strerror(code)}). '
        f'It needs about {_size(needed)} ({needed} bytes) in {folder}, '
        f'which has {_size(free)} ({free} bytes) free; the unfinished '
        f'{osp.basename(partial)} was removed.{kept} Free at least '
        f'{_size(needed)} there (the crash-safe write keeps the old file '
        f'until the new one is complete, so both must fit at once), then '
        f'{then}.')


def replace_atomically(src: str, dst: str) -> None:
    """fsync ``src`` and rename it to ``dst`` (atomic on POSIX and Windows),
    then fsync the folder so the rename survives a power cut."""
    with open(src, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(src, dst)
    if hasattr(os, 'O_DIRECTORY'):
        fd = os.open(osp.dirname(osp.abspath(dst)), os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def partial_path(path: str) -> str:
    """Where ``path`` is written before :func:`replace_atomically` moves it;
    the parent folder is created."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    return path + PARTIAL_SUFFIX


def write_atomically(write: Callable[[str], None], path: str,
                     needed: Union[int, Callable[[], int]],
                     previous: Optional[str] = None,
                     then: str = RUN_AGAIN) -> None:
    """``write(partial)`` writes the new ``path`` under its ``.partial``
    name; it is then fsynced and renamed into place. Any error removes
    the ``.partial`` (a kill leaves it, for the next write to replace); no
    room is a :class:`DiskFullError` (see :func:`write_failure` for
    ``needed``, ``previous`` and ``then``)."""
    partial = partial_path(path)
    try:
        write(partial)
        replace_atomically(partial, path)
    except Exception as exc:  # a kill leaves the .partial, as SIGKILL does
        error = write_failure(exc, path, needed, previous, then)
        if error is exc:
            raise
        raise error from exc


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""

    def write(partial: str) -> None:
        with open(partial, 'w') as f:
            f.write(text)

    write_atomically(write, path, len(text.encode()))


def save_checkpoint_atomically(obj, path: str) -> None:
    """``torch.save`` to a temporary file renamed into place, so an
    interrupted write never leaves a half-written file under ``path``."""

    def write(partial: str) -> None:
        # A file object, not the path: see the module's docstring.
        with open(partial, 'wb') as f:
            torch.save(obj, f)

    write_atomically(write, path, lambda: tensor_bytes(obj))


def commit_checkpoint(save: Callable[[str], None],
                      path: str,
                      pointer: str,
                      *,
                      writer: bool = True,
                      needed: Union[int, Callable[[], int]] = 0,
                      previous: Optional[str] = None) -> None:
    """The crash-safe commit of a training checkpoint (both
    ``AtomicCheckpointHook`` and ``PreemptionHook``).

    ``save(partial)`` writes the checkpoint under its ``.partial`` name
    (every process calls it; in a distributed run only the ``writer``
    writes, as mmengine's ``Runner.save_checkpoint`` does); the writer then
    fsyncs and renames it to ``path`` and replaces ``pointer`` (mmengine's
    ``last_checkpoint`` text file) with ``path`` the same way. A kill at
    any moment leaves ``pointer`` naming a complete file. ``needed`` and
    ``previous`` are as in :func:`write_atomically`."""
    if not writer:
        save(path + PARTIAL_SUFFIX)
        return
    write_atomically(save, path, needed, previous,
                     then='run the same command with --resume')
    write_text_atomically(pointer, path)


__all__ = [
    'PARTIAL_SUFFIX', 'RUN_AGAIN', 'commit_checkpoint', 'partial_path',
    'replace_atomically', 'save_checkpoint_atomically', 'tensor_bytes',
    'write_atomically', 'write_failure', 'write_text_atomically'
]
