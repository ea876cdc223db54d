"""Resume without a flag: a re-run of the same command (a requeued Slurm
job, a restarted pod, a plain second ``tools/train.py``) continues from the
work dir's ``last_checkpoint``. ``--no-resume`` or a new ``--work-dir``
starts afresh (docs/preemption.md)."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from convmlp_mm.errors import ConfigError


def apply_resume(cfg: Config, resume: Optional[str],
                 no_resume: bool = False) -> None:
    """Set ``cfg.resume``/``cfg.load_from`` from ``--resume [PATH]`` and
    ``--no-resume``; with neither, resume when the work dir (``cfg.work_dir``
    already set) has a ``last_checkpoint``."""
    if resume is not None and no_resume:
        raise ConfigError(
            '--resume and --no-resume contradict each other; give one.')
    # As upstream: a path resumes from it, no path from the work dir's latest.
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    elif not no_resume:
        marker = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(marker):
            with open(marker) as f:
                last = f.read().strip()
            print_log(
                f'Resuming from {last}, the last checkpoint of the work dir '
                f'{cfg.work_dir} (no flag needed; --no-resume or another '
                '--work-dir starts afresh).', logger='current')
            # load_from stays out: with resume on, mmengine would resume
            # from it instead of the work dir's checkpoint.
            cfg.resume, cfg.load_from = True, None
