"""Crash-safe file writes: a reader (or a resumed run) sees the old file or
the new one, never half of one."""
import os
import os.path as osp

import torch

PARTIAL_SUFFIX = '.partial'


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


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    partial = partial_path(path)
    with open(partial, 'w') as f:
        f.write(text)
    replace_atomically(partial, path)


def save_checkpoint_atomically(obj, path: str) -> None:
    """``torch.save`` to a temporary file renamed into place, so an
    interrupted write never leaves a half-written file under ``path``."""
    partial = partial_path(path)
    torch.save(obj, partial)
    replace_atomically(partial, path)
