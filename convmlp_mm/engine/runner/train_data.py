"""What a resumed run needs to know to continue exactly: the batch size,
the number of processes and the data of the run that saved a checkpoint.

A resumed run continues at the checkpoint's iteration count and skips that
many batches (:mod:`~convmlp_mm.engine.runner.loops`): with another batch
size or number of processes those are other samples, and with other data
another order. ``ConvMLPRunner`` stores :func:`describe_train_data` in each
checkpoint's ``meta`` and, on resume, logs :func:`train_data_changes` as one
warning line. Stored as numbers and strings: ``weights_only`` loading reads
them.
"""
from typing import List, Optional

from torch.utils.data import DataLoader


def _leaf_datasets(dataset) -> list:
    # Through mmengine's ConcatDataset (datasets), RepeatDataset,
    # ClassBalancedDataset and SeededSampleDataset (dataset).
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        return [leaf for d in inner for leaf in _leaf_datasets(d)]
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        return _leaf_datasets(inner)
    return [dataset]


def _source(dataset) -> Optional[str]:
    """The annotation file, else the image folder, of a leaf dataset."""
    ann_file = getattr(dataset, 'ann_file', None)
    if ann_file:
        return str(ann_file)
    prefix = getattr(dataset, 'data_prefix', None)
    if not isinstance(prefix, dict):
        return None
    folder = prefix.get('img_path') or prefix.get('img')
    return str(folder) if folder else None


def describe_train_data(loader: DataLoader, world_size: int) -> dict:
    """Batch size per process, processes, samples, iterations per epoch and
    the data's files of a training data loader."""
    batch_size = getattr(loader.batch_sampler, 'batch_size', None) or \
        getattr(loader, 'batch_size', None)
    dataset = loader.dataset
    sources: List[str] = [s for s in map(_source, _leaf_datasets(dataset))
                          if s]
    return dict(batch_size=None if batch_size is None else int(batch_size),
                world_size=int(world_size),
                num_samples=len(dataset),
                iters_per_epoch=len(loader),
                sources=sources)


def train_data_changes(saved: Optional[dict], now: dict,
                       iteration: int) -> Optional[str]:
    """The one warning line for a run resumed after ``iteration`` whose batch
    size, processes or data differ from the checkpoint's (``saved``, from
    :func:`describe_train_data`); ``None`` when nothing changed or the
    checkpoint does not say (saved before this was recorded)."""
    if not saved:
        return None
    changes = []
    for key, what in (('batch_size', 'batch size {} per process'),
                      ('world_size', '{} process{}'),
                      ('num_samples', '{} training samples')):
        old, new = saved.get(key), now.get(key)
        if old is not None and new is not None and old != new:
            plural = '' if new == 1 else 'es'
            changes.append(f'{what.format(new, plural)} (checkpoint: {old})')
    old, new = saved.get('sources'), now.get('sources')
    if old and new and list(old) != list(new):
        changes.append(f'training data {", ".join(new)} (checkpoint: '
                       f'{", ".join(old)})')
    if not changes:
        return None
    return (f'Resumed with {", ".join(changes)}: the run continues after '
            f'iteration {iteration}, but the data order from there on '
            'differs from an uninterrupted run (the resume point counts '
            'batches, not samples), so the result will not be the one it '
            'would give. Resume with the checkpoint\'s settings for an '
            'exact continuation.')
