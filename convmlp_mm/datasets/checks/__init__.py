"""File-level data checks, run before any model is built. Each takes paths
or one dataset dict, never a whole config (walking a config is
:mod:`convmlp_mm.config`'s): ``paths`` (a dataset's paths inside its data
root), ``coco`` (COCO files, parsed once per run), ``seg`` (mmseg
image/mask folders), ``images`` (image files) and ``classes`` (class names
as a COCO file or ``classes.txt`` has them)."""
from convmlp_mm.datasets.checks.classes import (
    CLASS_LIST_FILE,
    class_list_path,
    coco_category_names,
    coco_label_names,
    examples,
    read_class_list,
    repeated_names,
)
from convmlp_mm.datasets.checks.coco import (
    FULL_CHECK_MAX_BYTES,
    CocoFiles,
    check_category_overlap,
    check_coco_content,
    check_coco_json,
)
from convmlp_mm.datasets.checks.images import MAX_FILES_READ, check_image_file
from convmlp_mm.datasets.checks.paths import (
    ann_file_path,
    dataset_paths,
    is_remote,
    join_root,
)
from convmlp_mm.datasets.checks.seg import check_seg_dataset

__all__ = [
    'CLASS_LIST_FILE', 'FULL_CHECK_MAX_BYTES', 'MAX_FILES_READ', 'CocoFiles',
    'ann_file_path', 'check_category_overlap', 'check_coco_content',
    'check_coco_json', 'check_image_file', 'check_seg_dataset',
    'class_list_path', 'coco_category_names', 'coco_label_names',
    'dataset_paths', 'examples', 'is_remote', 'join_root', 'read_class_list',
    'repeated_names'
]
