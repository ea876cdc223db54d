"""Image and video file names: what the data checks, the inference API and
the analysis tools read."""
import os
import os.path as osp
from typing import List

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')


def list_images(folder: str) -> List[str]:
    """The image files in ``folder`` (by extension, any case), sorted, not
    recursive."""
    return sorted(
        osp.join(folder, name) for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS))

