"""Class names as the data names them: a COCO file's categories, a
segmentation folder's ``classes.txt``; and the labels the datasets give
them (:func:`coco_label_names`)."""
import os.path as osp
from collections import Counter
from typing import List, Optional, Sequence

__all__ = ['CLASS_LIST_FILE', 'class_list_path', 'coco_category_names',
           'coco_label_names', 'examples', 'read_class_list',
           'repeated_names']

#: The class list of a segmentation folder: ``DATA_ROOT/classes.txt``.
CLASS_LIST_FILE = 'classes.txt'


def examples(items: Sequence, count: int = 5) -> str:
    """The first ``count`` of ``items``, comma-separated, with ``...`` when
    there are more."""
    shown = ', '.join(str(i) for i in list(items)[:count])
    return shown + (', ...' if len(items) > count else '')


def repeated_names(names: Sequence[str]) -> List[str]:
    """The names that occur more than once in ``names``, in order."""
    return [name for name, count in Counter(names).items() if count > 1]


def coco_category_names(data: dict) -> List[str]:
    """The category names of a parsed COCO file, in the order the file
    lists them (not by id): the order in which mmdet's CocoDataset
    numbers them (:func:`coco_label_names`)."""
    return [c['name'] for c in data['categories']]


def coco_label_names(data: dict,
                     classes: Optional[Sequence[str]] = None) -> List[str]:
    """The name of each label mmdet's ``CocoDataset`` (and ``CocoMetric``)
    gives the objects of a parsed COCO file: label i is the i-th of the
    categories named in ``classes`` (all, when ``None``) in the order the
    file lists them. mmdet 3.3 ``CocoDataset.load_data_list``:
    ``cat_ids = coco.get_cat_ids(cat_names=classes)``, which filters the
    file's ``categories`` list, then ``cat2label = {id: i for i, id in
    enumerate(cat_ids)}``. A name listed twice in the file comes twice."""
    wanted = None if classes is None else set(classes)
    return [name for name in coco_category_names(data)
            if wanted is None or name in wanted]


def class_list_path(dataset: dict) -> Optional[str]:
    """``DATA_ROOT/classes.txt`` of a dataset dict with a ``data_root``."""
    root = dataset.get('data_root')
    return osp.join(root, CLASS_LIST_FILE) if root else None


def read_class_list(path: str) -> List[str]:
    """The names of a class list file, one a line (line i: training label
    i), blank lines skipped."""
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]
