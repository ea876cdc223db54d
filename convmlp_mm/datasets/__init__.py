"""Built-in synthetic datasets in the COCO and ADE20K formats (for the demo,
tests and quick experiments; nothing to download)."""
from convmlp_mm.datasets.synthetic import (
                        DEFAULT_CLASSES,
                        MARKER,
                        SHAPES,
                        SyntheticDatasetError,
                        ade20k_classes,
                        make_ade20k_dataset,
                        make_coco_dataset,
)

__all__ = [
    'DEFAULT_CLASSES', 'MARKER', 'SHAPES', 'SyntheticDatasetError',
    'ade20k_classes', 'make_ade20k_dataset', 'make_coco_dataset'
]
