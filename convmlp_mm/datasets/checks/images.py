"""Image files checked without decoding them: present, regular, not empty,
at most :func:`max_pixels` pixels by their header, of the size their
annotation says, and a JPEG or PNG that ends where its format says it ends.

What is read, per dataset, so that the cost stays bounded (COCO's 118k
training images):

- every file: ``os.stat`` (it exists, is a regular file, is not empty);
- the first :data:`MAX_HEADERS_READ`: its header too (the first bytes of a
  PNG, the markers before a JPEG's frame header): the pixel limit and the
  size the annotation gives;
- the first :data:`MAX_FILES_READ`: its end too (a truncated download).

Past either cap, the tools' loading transform
(:class:`~convmlp_mm.datasets.transforms.CheckedLoadImageFromFile`) checks
each image in the same way, header first, when it is read: no image is
decoded before its size is known.

The pixel limit is read from the header because the file's size says
nothing: a 20000x20000 PNG of one colour takes 50-500 KB and decodes to
1.2 GB, with copies of it in every transform.
"""
import os
import stat
import struct
import sys
import warnings
from typing import Iterable, Optional, Sequence, Tuple

from mmengine.utils import track_iter_progress
from PIL import Image

from convmlp_mm.errors import AnnotationError, ConfigError

__all__ = ['DEFAULT_MAX_PIXELS', 'MAX_FILES_READ', 'MAX_HEADERS_READ',
           'MAX_PIXELS_VARIABLE', 'PROGRESS_FROM', 'check_image_file',
           'max_pixels', 'with_progress']

#: Files whose end (not only their existence) is read, per dataset.
#: COCO's 118k training images would take minutes; past this the loading
#: transform reports a broken file when it is read.
MAX_FILES_READ = 5000
#: Files whose header is read, per dataset: a few hundred bytes each (32 us
#: a file from the page cache here: 1.6 s for 50000); past this the loading
#: transform reads each header when it reads the image.
MAX_HEADERS_READ = 50000
#: Datasets of more files than this show a progress bar while checked.
PROGRESS_FROM = 1000
#: The setting that raises (or lowers) the pixel limit: a number of pixels.
MAX_PIXELS_VARIABLE = 'CONVMLP_MAX_PIXELS'
#: Pillow's own ``Image.MAX_IMAGE_PIXELS``, from which it warns of a
#: decompression bomb: 268 MB of RGB pixels, above any camera's photo but
#: medium-format ones.
DEFAULT_MAX_PIXELS = 89_478_485
JPEG_EXTENSIONS = ('.jpg', '.jpeg')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'
# JPEG frame headers (SOF0..SOF15); C4, C8 and CC are other markers.
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length: TEM, RST0..RST7.
JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])
EXIF_ORIENTATION = 0x0112


def max_pixels() -> int:
    """The most pixels an image may have: ``$CONVMLP_MAX_PIXELS`` or
    :data:`DEFAULT_MAX_PIXELS`. A limit above Pillow's is also given to
    Pillow (``Image.MAX_IMAGE_PIXELS``), so that Pillow (mmseg decodes masks
    with it) neither warns about nor refuses an image the limit allows."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, '').strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ConfigError(
            f'{MAX_PIXELS_VARIABLE}={value!r} is not a positive whole number '
            f'of pixels. Set it to one (e.g. {MAX_PIXELS_VARIABLE}='
            f'400000000 for 20000x20000 images), or unset it for the '
            f'default {DEFAULT_MAX_PIXELS}.')
    if Image.MAX_IMAGE_PIXELS is not None and \
            limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit
    return limit


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag of a JPEG APP1 segment (1 when it has none)."""
    if not segment.startswith(b'Exif\x00\x00'):
        return 1
    tiff = segment[6:]
    order = {b'II': '<', b'MM': '>'}.get(tiff[:2])
    if order is None:
        return 1
    try:
        offset, = struct.unpack_from(order + 'I', tiff, 4)
        count, = struct.unpack_from(order + 'H', tiff, offset)
        for entry in range(offset + 2, offset + 2 + 12 * count, 12):
            tag, = struct.unpack_from(order + 'H', tiff, entry)
            if tag == EXIF_ORIENTATION:
                return struct.unpack_from(order + 'H', tiff, entry + 8)[0]
    except struct.error:
        pass
    return 1


def _jpeg_header(f) -> Optional[Tuple[int, int, int]]:
    """(width, height, EXIF orientation) from a JPEG's markers, read up to
    its frame header; ``None`` when they do not lead to one."""
    f.seek(2)
    orientation = 1
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        while kind == 0xFF:  # fill bytes before a marker
            byte = f.read(1)
            if not byte:
                return None
            kind = byte[0]
        if kind in JPEG_STANDALONE:
            continue
        if kind in (0xD9, 0xDA):  # end of image, scan: no frame header
            return None
        length = f.read(2)
        if len(length) < 2 or int.from_bytes(length, 'big') < 2:
            return None
        length = int.from_bytes(length, 'big') - 2
        if kind in JPEG_FRAMES:
            frame = f.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack('>HH', frame[1:])
            return (width, height, orientation) if height else None
        if kind == 0xE1 and orientation == 1:
            orientation = _exif_orientation(f.read(length))
        else:
            f.seek(length, os.SEEK_CUR)


def _header(path: str) -> Optional[Tuple[int, int, int]]:
    """(width, height, EXIF orientation) of an image file from its header,
    without decoding it: PNG and JPEG here, other formats through Pillow
    (which reads the header only on open). ``None`` when nothing reads it;
    the decoder reports such a file."""
    with open(path, 'rb') as f:
        head = f.read(24)
        if head.startswith(PNG_SIGNATURE) and head[12:16] == b'IHDR':
            return struct.unpack('>II', head[16:24]) + (1, )
        if head.startswith(b'\xff\xd8'):
            found = _jpeg_header(f)
            if found is not None:
                return found
    try:
        with warnings.catch_warnings():
            # The limit is ours to apply, with its own message.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.size + (1, )
    except Image.DecompressionBombError:
        raise  # past twice Pillow's limit: the caller names it
    except Exception:  # noqa: BLE001 - any format Pillow cannot read
        return None


def _check_pixels(path: str, what: str, width: int, height: int,
                  limit: int) -> None:
    pixels = width * height
    if pixels > limit:
        raise AnnotationError(
            f'{what}: {path} is {width}x{height} pixels '
            f'({pixels / 1e6:.1f} megapixels), more than the {limit} '
            'pixels an image may have (decoded, it would take '
            f'{3 * pixels / 2**30:.1f} GiB, and more in every copy); it was '
            'not decoded. Downscale it, or raise the limit: '
            f'{MAX_PIXELS_VARIABLE}={pixels}.')


def _check_ends(path: str, what: str, size: int) -> None:
    lower = path.lower()
    if not lower.endswith(JPEG_EXTENSIONS + ('.png', )):
        return
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, size - 1024))
        tail = f.read()
    if lower.endswith(JPEG_EXTENSIONS):
        # Entropy-coded data never holds FF D9 (FF is stuffed), so a JPEG
        # without its end marker near the end was cut short.
        ok = head[:2] == b'\xff\xd8' and b'\xff\xd9' in tail
        kind = 'JPEG'
    else:
        ok = head == PNG_SIGNATURE and PNG_END in tail
        kind = 'PNG'
    if not ok:
        raise AnnotationError(
            f'{what}: {path} is not a complete {kind} file (truncated '
            'download or copy?). Download or copy it again, or remove it '
            'from the dataset.')


def check_image_file(path: str, what: str, read: bool = True,
                     header: Optional[bool] = None,
                     expected_size: Optional[Tuple[int, int]] = None,
                     expected_from: str = 'its annotation'
                     ) -> Optional[Tuple[int, int]]:
    """Raise :class:`AnnotationError` unless ``path`` is a regular, non-empty
    file. With ``header`` (default: ``read``), its header is read: at most
    :func:`max_pixels` pixels, and ``expected_size`` (width, height as
    ``expected_from`` gives them) when given; the size as stored is
    returned (``None`` when the header was not read). With ``read``, a
    JPEG/PNG must also end where its format says it ends (a truncated
    download decodes to a grey bottom, or not at all)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AnnotationError(f'{what}: {path} does not exist.') from None
    if not stat.S_ISREG(info.st_mode):
        raise AnnotationError(f'{what}: {path} is not a regular file.')
    if info.st_size == 0:
        raise AnnotationError(f'{what}: {path} is empty (0 bytes).')
    if read:
        _check_ends(path, what, info.st_size)
    if not (read if header is None else header):
        return None
    limit = max_pixels()  # first: it may lift Pillow's limit
    try:
        found = _header(path)
    except Image.DecompressionBombError:
        # Pillow refuses past twice its limit without giving the size;
        # max_pixels keeps Pillow's limit at or above ours.
        raise AnnotationError(
            f'{what}: {path} has more than '
            f'{2 * Image.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (Pillow '
            f'read its header), more than the {limit} pixels an image may '
            'have; it was not decoded. Downscale it, or raise the limit: '
            f'{MAX_PIXELS_VARIABLE}=PIXELS.') from None
    if found is None:
        return None
    width, height, orientation = found
    _check_pixels(path, what, width, height, limit)
    if expected_size is not None:
        # OpenCV (mmcv's decoder) turns a JPEG by its EXIF orientation.
        turned = orientation in (5, 6, 7, 8)
        decoded = (height, width) if turned else (width, height)
        if tuple(expected_size) != decoded:
            how = f' (turned by its EXIF orientation {orientation})' \
                if turned else ''
            raise AnnotationError(
                f'{what}: {path} is {decoded[0]}x{decoded[1]} pixels as '
                f'decoded{how}, but {expected_from} says '
                f'{expected_size[0]}x{expected_size[1]}; boxes and sizes '
                'would not match the pixels. Give it the file\'s width and '
                'height (and boxes in its pixels), or replace the file '
                'with the image the annotation describes.')
    return width, height


def with_progress(items: Sequence, what: str) -> Iterable:
    """``items`` as they are, or with mmengine's progress bar (files done,
    time left) when there are more than :data:`PROGRESS_FROM`: reading
    thousands of files takes minutes."""
    if len(items) <= PROGRESS_FROM:
        return items
    print(f'checking {len(items)} {what}', file=sys.stderr, flush=True)
    # Progress goes to stderr, as it is now (mmengine's default is stdout
    # as it was at its import): stdout stays the tools' results.
    return track_iter_progress(list(items), file=sys.stderr)
