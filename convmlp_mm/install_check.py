"""The one check ``import convmlp_mm`` makes of the installation: mmcv must
have its compiled ops, which ``pip install -e .`` alone cannot build."""

__all__ = ['MMCV_OPS_MESSAGE', 'check_mmcv_ops']

MMCV_OPS_MESSAGE = (
    'convmlp_mm needs mmcv 2.x (>=2.0.0rc4, <2.2) with its compiled ops '
    '(mmcv._ext: nms, RoIAlign), and {problem}. pip install -e . cannot build '
    'them: run `make install` in the convmlp_mm checkout (it builds mmcv '
    '2.1.0 with its ops against the installed torch, about 10 minutes '
    'once), or see docs/get_started.md for your own environment.')


def check_mmcv_ops() -> None:
    """Raise one clear :class:`ImportError` unless mmcv's ops load."""
    try:
        from mmcv.utils import ext_loader
    except ImportError as exc:
        raise ImportError(MMCV_OPS_MESSAGE.format(
            problem=f'mmcv cannot be imported ({exc})')) from None
    try:
        ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
    except (ImportError, AssertionError) as exc:
        raise ImportError(MMCV_OPS_MESSAGE.format(
            problem=f'the installed mmcv has no compiled ops ({exc})')) \
            from None
