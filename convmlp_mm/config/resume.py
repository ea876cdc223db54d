"""Resume without a flag: a re-run of the same command (a requeued Slurm
job, a restarted pod, a plain second ``tools/train.py``) continues from the
work dir's ``last_checkpoint``. ``--no-resume`` or a new ``--work-dir``
starts afresh (docs/preemption.md).

:func:`apply_resume` decides which checkpoint a run resumes from and says
where it came from; :func:`completed_run` reads that checkpoint's progress
before anything is built: a run that is already complete trains nothing
and says so, one resumed past its (lowered) end is refused.
"""
import functools
import glob
import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.checkpoint import safe_torch_load
from convmlp_mm.errors import ConfigError

__all__ = ['LAST_CHECKPOINT', 'TRAIN_DATA_KEY', 'apply_resume',
           'completed_run']

LAST_CHECKPOINT = 'last_checkpoint'  # mmengine's name, in the work dir
# The checkpoint's ``meta`` key with the batch size, processes and data of
# the run that saved it (``ConvMLPRunner.save_checkpoint``).
TRAIN_DATA_KEY = 'train_data'


def _is_local(path: str) -> bool:
    return '://' not in path  # not http(s)://, s3://, open-mmlab://, ...


def _newest_checkpoint(work_dir: str) -> Optional[str]:
    found = [p for p in glob.glob(osp.join(work_dir, '*.pth'))
             if osp.isfile(p)]
    return max(found, key=osp.getmtime) if found else None


def _last_checkpoint(work_dir: str) -> Optional[str]:
    """What the work dir's ``last_checkpoint`` names; ``None`` without
    one. A name of a file that is gone is a :class:`ConfigError` naming the
    marker, the file and the ways on."""
    marker = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        last = f.read().strip()
    if last and (not _is_local(last) or osp.isfile(osp.expanduser(last))):
        return last
    newest = _newest_checkpoint(work_dir)
    example = f' (the newest there: {newest})' if newest else ''
    what = f'names {last}, which does not exist (deleted or moved)' if last \
        else 'is empty'
    raise ConfigError(
        f'{marker} {what}, so the run cannot resume from it. Restore that '
        'file, or write the path of an existing checkpoint into '
        f'{marker}{example}, or pass --no-resume to start afresh.')


def apply_resume(cfg: Config, resume: Optional[str],
                 no_resume: bool = False) -> None:
    """Set ``cfg.resume``/``cfg.load_from`` from ``--resume [PATH]`` and
    ``--no-resume``; with neither, resume when the work dir (``cfg.work_dir``
    already set) has a ``last_checkpoint``. Logs which checkpoint and why.

    ``--resume`` without a path in a work dir without a checkpoint starts
    from scratch, as upstream's ``--resume`` does (job scripts pass it on
    every start), and says so. Raises :class:`ConfigError` for a
    ``last_checkpoint`` or ``--resume PATH`` that names no file, and for a
    checkpoint past the end of ``train_cfg`` (:func:`completed_run`)."""
    if resume is not None and no_resume:
        raise ConfigError(
            '--resume and --no-resume contradict each other; give one.')
    if no_resume:
        cfg.resume = False  # also over a config's own ``resume = True``
        return
    if resume is not None and resume != 'auto':
        if _is_local(resume) and not osp.isfile(osp.expanduser(resume)):
            raise ConfigError(
                f'--resume {resume}: no such file. Give an existing '
                'checkpoint, or --resume without a path to resume from the '
                "work dir's last checkpoint.")
        _resume_from(cfg, resume, f'Resuming from {resume} (--resume).')
        return
    marker = osp.join(cfg.work_dir, LAST_CHECKPOINT)
    last = _last_checkpoint(cfg.work_dir)
    if last is None:
        if resume == 'auto':
            print_log(
                f'--resume: nothing to resume, {cfg.work_dir} has no '
                f'{LAST_CHECKPOINT}; training from scratch.',
                logger='current', level=logging.WARNING)
            cfg.resume = False
        return
    why = '--resume' if resume == 'auto' else \
        'no flag needed; --no-resume or another --work-dir starts afresh'
    _resume_from(cfg, last, f'Resuming from {last}, which {marker} names '
                 f'({why}).')


def _resume_from(cfg: Config, path: str, message: str) -> None:
    # load_from names the file, so mmengine resumes from exactly the one
    # named here (and not a config's own load_from, a fine-tuning start).
    cfg.resume, cfg.load_from = True, path
    # A complete run says only that (completed_run); one past its end stops.
    if completed_run(cfg) is None:
        print_log(message, logger='current')


@functools.lru_cache(maxsize=4)
def _meta(path: str, size: int, mtime_ns: int) -> dict:
    # Once per file version: apply_resume and completed_run both ask.
    return safe_torch_load(path, path).get('meta') or {}


def _progress(path: str, train_cfg: dict):
    """(setting, its value, where the checkpoint is, done, past the end)
    of the checkpoint ``path`` under ``train_cfg``; ``None`` for a loop
    counted otherwise."""
    stat = os.stat(path)
    meta = _meta(path, stat.st_size, stat.st_mtime_ns)
    epoch, step = meta.get('epoch'), meta.get('iter')
    if 'max_epochs' in train_cfg and epoch is not None:
        last = int(train_cfg['max_epochs'])
        per_epoch = (meta.get(TRAIN_DATA_KEY) or {}).get('iters_per_epoch')
        # A mid-epoch checkpoint (a preemption) counts its epochs done; its
        # iterations tell whether it has begun an epoch past the last.
        past = epoch > last or (per_epoch is not None and step is not None
                                and step > last * per_epoch)
        where = f'epoch {epoch}' + (f' (iteration {step})'
                                    if step is not None else '')
        return 'max_epochs', last, where, epoch >= last, past
    if 'max_iters' in train_cfg and step is not None:
        last = int(train_cfg['max_iters'])
        return 'max_iters', last, f'iteration {step}', step >= last, \
            step > last
    return None


def completed_run(cfg: Config) -> Optional[str]:
    """When ``cfg`` (after :func:`apply_resume`) resumes from a checkpoint
    that has trained all of ``train_cfg``: the one line to print instead of
    training (nothing is built, nothing in the work dir changes). ``None``
    when there is training left or nothing is resumed.

    Raises :class:`ConfigError` when the checkpoint is past the end (a
    lowered ``max_epochs``/``max_iters``): resuming would train nothing and
    leave a model trained longer than the config asks."""
    path = cfg.get('load_from') if cfg.get('resume') else None
    train_cfg = cfg.get('train_cfg')
    if not path or not _is_local(path) or not train_cfg:
        return None
    progress = _progress(osp.expanduser(path), train_cfg)
    if progress is None:
        return None
    setting, last, where, done, past = progress
    if past:
        raise ConfigError(
            f'{path}, the checkpoint this run resumes from, is at {where}, '
            f'past train_cfg.{setting}={last}: there is nothing to train, '
            f'and its model has trained longer than {setting} asks. Raise '
            f'{setting} to train on from it, or pass --no-resume (or '
            'another --work-dir) to train from scratch.')
    if not done:
        return None
    return (f'Nothing to train: the run is complete ({path} is at {where}, '
            f'train_cfg.{setting}={last}). Raise {setting} to train on, or '
            'pass --no-resume to train afresh.')
