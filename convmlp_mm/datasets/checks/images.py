"""Image files checked without decoding them: present, regular, not empty,
and a JPEG or PNG that ends where its format says it ends."""
import os
import stat

from convmlp_mm.errors import AnnotationError

__all__ = ['MAX_FILES_READ', 'check_image_file']

#: Files whose content (not only their existence) is read, per dataset.
#: COCO's 118k training images would take minutes; past this the loading
#: transform reports a broken file when it is read.
MAX_FILES_READ = 5000
JPEG_EXTENSIONS = ('.jpg', '.jpeg')
PNG_END = b'IEND\xaeB`\x82'


def check_image_file(path: str, what: str, read: bool = True) -> None:
    """Raise :class:`AnnotationError` unless ``path`` is a regular, non-empty
    file; with ``read``, also unless a JPEG/PNG ends where its format says
    it ends (a truncated download decodes to a grey bottom, or not at
    all)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AnnotationError(f'{what}: {path} does not exist.') from None
    if not stat.S_ISREG(info.st_mode):
        raise AnnotationError(f'{what}: {path} is not a regular file.')
    if info.st_size == 0:
        raise AnnotationError(f'{what}: {path} is empty (0 bytes).')
    if not read:
        return
    lower = path.lower()
    if not lower.endswith(JPEG_EXTENSIONS + ('.png', )):
        return
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, info.st_size - 1024))
        tail = f.read()
    if lower.endswith(JPEG_EXTENSIONS):
        # Entropy-coded data never holds FF D9 (FF is stuffed), so a JPEG
        # without its end marker near the end was cut short.
        ok = head[:2] == b'\xff\xd8' and b'\xff\xd9' in tail
        kind = 'JPEG'
    else:
        ok = head == b'\x89PNG\r\n\x1a\n' and PNG_END in tail
        kind = 'PNG'
    if not ok:
        raise AnnotationError(
            f'{what}: {path} is not a complete {kind} file (truncated '
            'download or copy?). Download or copy it again, or remove it '
            'from the dataset.')
