"""Looking at models and runs: parameters and MACs (:mod:`.complexity`),
feature maps (:mod:`.features`), curves of runs (:mod:`.curves`), the fp32
against ``--amp`` comparison (:mod:`.amp`) and figures of predictions
(:mod:`.figures`). The scripts of ``tools/analysis/`` parse the command line
and call these.

``convmlp_mm.visualization`` of earlier releases is now
:mod:`convmlp_mm.analysis.curves` and :mod:`convmlp_mm.analysis.figures`,
re-exported here.
"""
from convmlp_mm.analysis.amp import (
    PRECISIONS,
    amp_loss_curve,
    amp_report,
    compare_losses,
    final_validation,
    moving_average,
)
from convmlp_mm.analysis.complexity import (
    DEFAULT_SHAPES,
    ImageNetClassifier,
    backbone_complexity,
    complexity,
    count,
    library_of,
    model_complexity,
    report_lines,
)
from convmlp_mm.analysis.curves import (
    curve,
    load_scalars,
    match_key,
    plot_curves,
    plot_loss_comparison,
    plot_training_curves,
)
from convmlp_mm.analysis.features import (
    LEVEL_STRIDES,
    MODES,
    draw_grid,
    draw_level,
    extract_features,
    find_images,
    grid_size,
    load_image,
    strongest_channels,
    visualize_features,
)
from convmlp_mm.analysis.figures import (
    find_files,
    save_image_grid,
    save_segmentation_figure,
)

__all__ = [
    # amp
    'PRECISIONS', 'amp_loss_curve', 'amp_report', 'compare_losses',
    'final_validation', 'moving_average',
    # complexity
    'DEFAULT_SHAPES', 'ImageNetClassifier', 'backbone_complexity',
    'complexity', 'count', 'library_of', 'model_complexity', 'report_lines',
    # curves
    'curve', 'load_scalars', 'match_key', 'plot_curves',
    'plot_loss_comparison', 'plot_training_curves',
    # features
    'LEVEL_STRIDES', 'MODES', 'draw_grid', 'draw_level', 'extract_features',
    'find_images', 'grid_size', 'load_image', 'strongest_channels',
    'visualize_features',
    # figures
    'find_files', 'save_image_grid', 'save_segmentation_figure',
]
