"""The inputs of :func:`convmlp_mm.apis.inference`: which paths are images
or videos, which are refused, and output names that never collide.

Only regular files are opened: ``os.stat`` decides before any ``open``, so a
FIFO (which blocks the reader until a writer comes), a device such as
``/dev/zero`` (endless) or a socket is refused instead of hanging the run.
An image is decoded only once its header says it has at most
:func:`~convmlp_mm.datasets.checks.images.max_pixels` pixels
(``CONVMLP_MAX_PIXELS``, as in the data checks): a 440 KB PNG can hold
20000x20000 of them, 1.2 GB decoded.
"""
import os
import os.path as osp
import stat
from typing import List, Sequence, Set, Union

import mmcv
import numpy as np

from convmlp_mm.datasets.checks import check_image_file
from convmlp_mm.datasets.image_files import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    list_images,
)
from convmlp_mm.errors import AnnotationError, InferenceInputError

__all__ = ['InferenceInputError', 'MAX_IMAGE_BYTES', 'collect_inputs',
           'check_regular_file', 'read_image', 'unique_name']

#: Larger image files are refused: no photo is this big, and decoding one
#: could take the machine's memory.
MAX_IMAGE_BYTES = 256 * 2**20


def check_regular_file(path: str, limit: int = 0) -> int:
    """The size of ``path``; raise :class:`InferenceInputError` unless it is
    a regular, non-empty file (at most ``limit`` bytes when ``limit``)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InferenceInputError(
            f'{path}: cannot be read ({exc.strerror}).') from None
    if not stat.S_ISREG(info.st_mode):
        kind = 'a FIFO' if stat.S_ISFIFO(info.st_mode) else \
            'a device' if stat.S_ISCHR(info.st_mode) or \
            stat.S_ISBLK(info.st_mode) else \
            'a socket' if stat.S_ISSOCK(info.st_mode) else 'not a file'
        raise InferenceInputError(
            f'{path} is {kind}, not a regular file; refused (it could '
            'block or never end).')
    if info.st_size == 0:
        raise InferenceInputError(f'{path} is empty (0 bytes).')
    if limit and info.st_size > limit:
        raise InferenceInputError(
            f'{path} is {info.st_size / 2**20:.0f} MiB, more than the '
            f'{limit / 2**20:.0f} MiB an input image may have.')
    return info.st_size


def read_image(path: str) -> np.ndarray:
    """The RGB pixels of an image file; :class:`InferenceInputError` naming
    the file when it is not a regular file, too large (in bytes, or in
    pixels by its header, before decoding), truncated or does not
    decode."""
    check_regular_file(path, MAX_IMAGE_BYTES)
    try:
        check_image_file(path, 'input')
    except AnnotationError as exc:
        raise InferenceInputError(str(exc)) from None
    img = mmcv.imread(path, channel_order='rgb')
    if img is None:
        raise InferenceInputError(f'{path} does not decode as an image.')
    return img


def collect_inputs(inputs: Union[str, Sequence[str]]) -> List[str]:
    """Expand image files, folders (their images, sorted, not recursive) and
    video files into a flat list of paths. A path that does not exist or is
    of another kind is an error; special files are kept for the run to
    report and skip."""
    paths = [inputs] if isinstance(inputs, str) else list(inputs)
    if not paths:
        raise InferenceInputError('No inputs given: pass an image, a folder '
                                  'of images or a video.')
    found = []
    for path in paths:
        if osp.isdir(path):
            images = list_images(path)
            if not images:
                raise InferenceInputError(
                    f'No images ({", ".join(IMAGE_EXTENSIONS)}) in the '
                    f'folder {path}.')
            found.extend(images)
        elif not osp.lexists(path):
            raise InferenceInputError(f'Input not found: {path}')
        elif path.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
            found.append(path)
        else:
            raise InferenceInputError(
                f'{path} is neither an image ({", ".join(IMAGE_EXTENSIONS)}) '
                f'nor a video ({", ".join(VIDEO_EXTENSIONS)}).')
    return found


def unique_name(stem: str, used: Set[str]) -> str:
    """``stem``, or ``<stem>_<n>`` with the smallest ``n`` not in ``used``
    (compared case-insensitively, as some file systems do); the result is
    added to ``used``. Two inputs ``a/x.jpg`` and ``b/x.jpg`` (or ``x.jpg``
    and ``x.png``) get the outputs ``x`` and ``x_1``."""
    candidate, n = stem, 1
    while candidate.lower() in used:
        candidate = f'{stem}_{n}'
        n += 1
    used.add(candidate.lower())
    return candidate

