"""``ConvMLPRunner``: mmengine's Runner with strict whole-model loading and
one training run per work dir, and a console without the config dump.

Configs name it as ``runner_type = 'ConvMLPRunner'``; the tools set that
when a config names no runner, so the config they dump runs the same way
under mmdet's and mmseg's own ``tools/train.py`` (which build
``runner_type`` from the registry, ``custom_imports`` registering it).
"""
import logging

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.config.walk import config_classes
from convmlp_mm.engine.workdir_lock import WorkDirInUseError, WorkDirLock
from convmlp_mm.models.legacy import (
    check_checkpoint_classes,
    is_legacy_meta,
)
from convmlp_mm.models.loading import SKIP_HEADS_OPTION, load_state_into_model

CONFIG_DUMP = 'Config:\n'  # how mmengine's Runner._log_env starts it


class NoConfigDump(logging.Filter):
    """On the console handler: drop mmengine's config dump (about 500
    lines). The log file keeps it, and ``train`` writes the config to the
    work dir as well."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and
                    record.msg.startswith(CONFIG_DUMP))


@RUNNERS.register_module()
class ConvMLPRunner(Runner):
    """``Runner`` whose ``load_checkpoint`` (``load_from``, ``--resume``,
    ``tools/test.py``) goes through
    :func:`~convmlp_mm.models.loading.load_state_into_model`, whose
    ``train`` holds the work dir's lock
    (:class:`~convmlp_mm.engine.workdir_lock.WorkDirLock`), and whose
    console log leaves out the config (:class:`NoConfigDump`)."""

    _resuming = False

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            # FileHandler is a StreamHandler too: only the console's.
            if isinstance(handler, logging.StreamHandler) and \
                    not isinstance(handler, logging.FileHandler) and \
                    not any(isinstance(f, NoConfigDump)
                            for f in handler.filters):
                handler.addFilter(NoConfigDump())
        return logger

    def _log_env(self, env_cfg: dict) -> None:
        super()._log_env(env_cfg)
        if self.cfg._cfg_dict:
            self.logger.info('Config: not shown here; it is in '
                             f'{self.logger.log_file}')

    def resume(self, filename: str, *args, **kwargs) -> None:
        # A resumed run continues the same model: never skip a tensor.
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self,
                        filename: str,
                        map_location='cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module\.', '')]):
        """As ``Runner.load_checkpoint``, but strict always (``strict`` is
        accepted for compatibility); a mismatch raises
        ``CheckpointMismatchError`` and non-finite weights
        ``NonFiniteCheckpointError``."""
        checkpoint = CheckpointLoader.load_checkpoint(
            filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        # --tta wraps the detector/segmentor as ``module`` of a TTA model
        # (no model wrapper); the file holds the bare model's names, as
        # mmengine's load_state_dict unwraps BaseTTAModel too.
        while isinstance(model, BaseTTAModel):
            model = model.module
        skip = bool(self.cfg.get(SKIP_HEADS_OPTION, False)) and \
            not self._resuming
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if is_legacy_meta(meta) and not skip:
            # The release's mmdet 2 / mmseg 0.x files record their class
            # names: a file of other classes is refused, naming both lists.
            check_checkpoint_classes(meta, config_classes(self.cfg),
                                     f'Checkpoint "{filename}"',
                                     'the config')
        load_state_into_model(model, checkpoint, filename,
                              skip_mismatched_heads=skip,
                              revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def train(self):
        rank, world_size = get_dist_info()
        lock, failure = None, [None]
        if rank == 0:
            try:
                lock = WorkDirLock(self.work_dir).acquire()
            except WorkDirInUseError as exc:
                failure = [str(exc)]
        if world_size > 1:  # every rank reaches this: no rank waits alone
            broadcast_object_list(failure, src=0)
        if failure[0] is not None:
            raise WorkDirInUseError(failure[0])
        try:
            return super().train()
        finally:
            if lock is not None:
                lock.release()
