"""Class names as the data names them: a COCO file's categories, a
segmentation folder's ``classes.txt``."""
import os.path as osp
from typing import List, Optional, Sequence

__all__ = ['CLASS_LIST_FILE', 'class_list_path', 'coco_category_names',
           'examples', 'read_class_list']

#: The class list of a segmentation folder: ``DATA_ROOT/classes.txt``.
CLASS_LIST_FILE = 'classes.txt'


def examples(items: Sequence, count: int = 5) -> str:
    """The first ``count`` of ``items``, comma-separated, with ``...`` when
    there are more."""
    shown = ', '.join(str(i) for i in list(items)[:count])
    return shown + (', ...' if len(items) > count else '')


def coco_category_names(data: dict) -> List[str]:
    """The category names of a parsed COCO file, by id: mmdet's CocoDataset
    gives label i to the i-th category by id."""
    return [c['name'] for c in sorted(data['categories'],
                                      key=lambda c: c['id'])]


def class_list_path(dataset: dict) -> Optional[str]:
    """``DATA_ROOT/classes.txt`` of a dataset dict with a ``data_root``."""
    root = dataset.get('data_root')
    return osp.join(root, CLASS_LIST_FILE) if root else None


def read_class_list(path: str) -> List[str]:
    """The names of a class list file, one a line (line i: training label
    i), blank lines skipped."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]
