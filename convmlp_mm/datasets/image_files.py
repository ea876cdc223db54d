"""Small helpers the tools and the inference API share."""
import os
import os.path as osp
from typing import List, Sequence, Tuple, Union

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')


def list_images(folder: str) -> List[str]:
    """The image files in ``folder`` (by extension, any case), sorted, not
    recursive."""
    return sorted(
        osp.join(folder, name) for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS))


def parse_shape(shape: Union[str, Sequence[int]]) -> Tuple[int, int]:
    """``'N'``, ``'HxW'``, ``[n]`` or ``[h, w]`` -> ``(h, w)``; raises
    ``ValueError`` with the accepted forms."""
    if isinstance(shape, str):
        parts = shape.lower().split('x')
    else:
        parts = list(shape)
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        h = w = 0
    if min(h, w) < 1:
        raise ValueError(
            f'size {shape!r} is not N or HxW with positive integers (e.g. '
            '224 or 800x1333)')
    return h, w
