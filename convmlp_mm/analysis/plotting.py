"""matplotlib for files only, and PNGs written so that a reader never sees
half of one. matplotlib is imported when a figure is drawn (it is not needed
to import :mod:`convmlp_mm.analysis`)."""
from convmlp_mm.checkpoint.fileio import partial_path, replace_atomically

__all__ = ['pyplot', 'save_figure']


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out_file: str, close: bool = True) -> str:
    """Save ``fig`` as a PNG through a temporary name, then close it."""
    partial = partial_path(out_file)
    fig.savefig(partial, format='png', dpi=100, bbox_inches='tight')
    replace_atomically(partial, out_file)
    if close:
        pyplot().close(fig)
    return out_file
