"""Image sizes from headers, before anything is decoded (issue 23): the
size each format's header gives, as Pillow reads it and OpenCV decodes it,
and the pixel limit (``CONVMLP_MAX_PIXELS``) that the data checks, the
loading transform and inference share."""
import re
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from convmlp_mm.datasets.checks import check_image_file
from convmlp_mm.errors import AnnotationError

from huge_images import write_huge_png


def _save(path, **options):
    pixels = np.random.RandomState(0).randint(0, 255, (37, 53, 3), np.uint8)
    Image.fromarray(pixels).save(path, **options)
    return str(path)


FORMATS = {
    'baseline.jpg': {},
    'progressive.jpg': dict(progressive=True),
    'profile.jpg': dict(icc_profile=b'\0' * 3000),  # APP2 before the frame
    'rgb.png': {},
    'image.bmp': {},
    'image.webp': {},
    'image.tif': {},
}


@pytest.mark.parametrize('name,options', FORMATS.items(), ids=list(FORMATS))
def test_header_size_is_the_decoded_size(tmp_path, name, options):
    path = _save(tmp_path / name, **options)
    with Image.open(path) as img:
        assert img.size == (53, 37)
    assert cv2.imread(path).shape[:2] == (37, 53)
    assert check_image_file(path, 'image') == (53, 37)


def test_pixel_limit_past_pillows_own_refusal(tmp_path):
    """A BMP header of 20000x20000 (no pixel data): Pillow itself refuses
    to open it (DecompressionBombError); the check names the file, the
    limit and the setting instead."""
    width = height = 20000
    info = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 0, 0,
                       0, 0)
    path = str(tmp_path / 'bomb.bmp')
    with open(path, 'wb') as f:
        f.write(b'BM' + struct.pack('<IHHI', 14 + 40, 0, 0, 14 + 40) + info)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    with pytest.raises(AnnotationError, match=re.escape(
            f'input: {path} has more than 179.0 megapixels (Pillow read its '
            'header), more than the 89478485 pixels an image may have; it '
            'was not decoded.')):
        check_image_file(path, 'input')


def test_raised_limit_is_pillows_too(tmp_path, monkeypatch):
    """Raised past Pillow's own limit, the setting raises Pillow's (mmseg
    decodes masks with Pillow), which would refuse this image otherwise."""
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', Image.MAX_IMAGE_PIXELS)
    huge = write_huge_png(tmp_path / 'huge.png')
    with pytest.raises(Image.DecompressionBombError):
        Image.open(huge)
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', '400000000')
    assert check_image_file(huge, 'image') == (20000, 20000)
    with Image.open(huge) as img:  # the header only
        assert img.size == (20000, 20000)
