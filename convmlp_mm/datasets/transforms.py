"""Image loading that names the file: :class:`CheckedLoadImageFromFile`.

mmcv's ``LoadImageFromFile`` fails on a broken image with a bare
``failed to load image`` assertion after a traceback, and OpenCV decodes a
JPEG cut short as a picture whose bottom is grey, without a word. The tools
swap it for this subclass in every pipeline (:func:`use_checked_loading`),
so the images that the checks before training did not read (past
:data:`~convmlp_mm.datasets.dataset_checks.MAX_FILES_READ`) are checked when
they are read.
"""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS

__all__ = ['CheckedLoadImageFromFile', 'use_checked_loading']

REPLACED = ('LoadImageFromFile', 'mmcv.LoadImageFromFile')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises
    :class:`~convmlp_mm.config.data_checks.AnnotationError` naming the image
    when it is missing, not a regular file, a truncated JPEG/PNG, or does
    not decode. Local files only; other backends load as upstream."""

    def transform(self, results: dict) -> Optional[dict]:
        from convmlp_mm.config.data_checks import AnnotationError
        from convmlp_mm.datasets.dataset_checks import check_image_file
        path = results['img_path']
        local = '://' not in str(path) and not self.backend_args and \
            not self.file_client_args
        if local and not self.ignore_empty:
            check_image_file(path, 'image')
        try:
            loaded = super().transform(results)
        except AssertionError:  # mmcv: "failed to load image"
            raise AnnotationError(
                f'image: {path} does not decode as an image.') from None
        return loaded


def use_checked_loading(cfg) -> int:
    """Replace ``LoadImageFromFile`` with :class:`CheckedLoadImageFromFile`
    in every dataset pipeline of ``cfg``; returns how many were replaced."""
    from convmlp_mm.config.data_checks import leaf_datasets
    count = 0
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name) or {}
        for dataset in leaf_datasets(loader.get('dataset')):
            for step in dataset.get('pipeline') or []:
                if isinstance(step, dict) and step.get('type') in REPLACED:
                    step['type'] = 'CheckedLoadImageFromFile'
                    count += 1
    return count
