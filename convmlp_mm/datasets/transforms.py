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
    Local files only; other backends load as upstream. The header is read
    first: more pixels than ``CONVMLP_MAX_PIXELS`` allows, or another size
    than the dataset's ``width``/``height``, is refused before decoding."""

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        local = not is_remote(path) and not self.backend_args and \
            not self.file_client_args
        if local and not self.ignore_empty:
            # mmdet's COCO-style datasets give the JSON's size: compared
            # from the header, as the pixel limit, before decoding.
            annotated = (results['width'], results['height']) \
                if 'width' in results and 'height' in results else None
            check_image_file(path, 'image', expected_size=annotated)
        try:
            loaded = super().transform(results)
        except AssertionError:  # mmcv: "failed to load image"
            raise AnnotationError(
                f'image: {path} does not decode as an image.') from None
        return loaded
