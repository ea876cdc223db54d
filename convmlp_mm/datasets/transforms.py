"""Image loading that names the file: :class:`CheckedLoadImageFromFile`.

mmcv's ``LoadImageFromFile`` fails on a broken image with a bare
``failed to load image`` assertion after a traceback, and OpenCV decodes a
JPEG cut short as a picture whose bottom is grey, without a word. The tools
swap it for this subclass in every pipeline
(:func:`convmlp_mm.config.use_checked_loading`), so the images that the
checks before training did not read (past
:data:`~convmlp_mm.datasets.checks.MAX_FILES_READ`) are checked when they
are read.
"""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS

from convmlp_mm.datasets.checks.images import check_image_file
from convmlp_mm.datasets.checks.paths import is_remote
from convmlp_mm.errors import AnnotationError

__all__ = ['CheckedLoadImageFromFile']


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises
    :class:`~convmlp_mm.errors.AnnotationError` naming the image when it is
    missing, not a regular file, a truncated JPEG/PNG, or does not decode.
    Local files only; other backends load as upstream."""

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        local = not is_remote(path) and not self.backend_args and \
            not self.file_client_args
        if local and not self.ignore_empty:
            check_image_file(path, 'image')
        try:
            loaded = super().transform(results)
        except AssertionError:  # mmcv: "failed to load image"
            raise AnnotationError(
                f'image: {path} does not decode as an image.') from None
        return loaded
