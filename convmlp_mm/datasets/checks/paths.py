"""Where a dataset's files are: the paths of one dataset dict inside its
``data_root``, joined as mmengine's ``BaseDataset`` joins them."""
import os.path as osp
from typing import List, Optional, Tuple

__all__ = ['ann_file_path', 'dataset_paths', 'is_remote', 'join_root']


def is_remote(path) -> bool:
    """Whether ``path`` is a URL (``s3://``, ``http://``...)."""
    return '://' in str(path)


def join_root(root: Optional[str], path: str) -> str:
    """``path`` inside ``root``, BaseDataset's rule: a relative path is
    relative to ``data_root``; absolute paths and URLs stay."""
    if not root or osp.isabs(path) or is_remote(path):
        return path
    return osp.join(root, path)


def ann_file_path(dataset: dict) -> Optional[str]:
    """The local path of a dataset's ``ann_file`` (inside its
    ``data_root``); ``None`` when it has none, or reads it through a storage
    backend or a URL."""
    ann_file = dataset.get('ann_file')
    if not ann_file or dataset.get('backend_args') or is_remote(ann_file):
        return None
    return join_root(dataset.get('data_root'), ann_file)


def dataset_paths(dataset: dict) -> List[Tuple[str, str]]:
    """``(key, path)`` for every local path a dataset dict reads: its
    ``ann_file``, each ``data_prefix``, or else its ``data_root``. None for a
    dataset read through a storage backend (petrel, ...)."""
    if dataset.get('backend_args'):
        return []
    root = dataset.get('data_root')
    found = []
    if dataset.get('ann_file'):
        found.append(('ann_file', join_root(root, dataset['ann_file'])))
    for key, prefix in (dataset.get('data_prefix') or {}).items():
        found.append((f'data_prefix.{key}',
                      join_root(root, prefix) if prefix else root))
    if root and not dataset.get('data_prefix') and \
            not dataset.get('ann_file'):
        found.append(('data_root', root))
    return [(key, path) for key, path in found
            if path and not is_remote(path)]
