"""``ConvMLPRunner``: mmengine's Runner with strict whole-model loading and
one training run per work dir, and a console without the config dump.

Configs name it as ``runner_type = 'ConvMLPRunner'``; the tools set that
when a config names no runner, so the config they dump runs the same way
under mmdet's and mmseg's own ``tools/train.py`` (which build
``runner_type`` from the registry, ``custom_imports`` registering it).
"""
import contextlib
import contextvars
import logging
from typing import Iterator, Optional

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.config.classes import check_checkpoint_label_map
from convmlp_mm.config.resume import TRAIN_DATA_KEY
from convmlp_mm.config.walk import config_classes
from convmlp_mm.engine.hooks.preemption_hook import PreemptionHook
from convmlp_mm.engine.runner.train_data import (
    describe_train_data,
    train_data_changes,
)
from convmlp_mm.engine.workdir_lock import WorkDirInUseError, WorkDirLock
from convmlp_mm.models.legacy import is_legacy_meta
from convmlp_mm.models.loading import SKIP_HEADS_OPTION, load_state_into_model
from convmlp_mm_cli import end_startup_signals

CONFIG_DUMP = 'Config:\n'  # how mmengine's Runner._log_env starts it

_for_training = contextvars.ContextVar('convmlp_mm_for_training',
                                       default=False)


@contextlib.contextmanager
def building_for_training() -> Iterator[None]:
    """A ``ConvMLPRunner`` built inside this takes the work dir's training
    lock before it writes anything there (``build_runner(...,
    for_training=True)``); one built elsewhere takes it in ``train``."""
    token = _for_training.set(True)
    try:
        yield
    finally:
        _for_training.reset(token)


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
    console log leaves out the config (:class:`NoConfigDump`).

    Each checkpoint's ``meta`` records the run's batch size, processes and
    data (``train_data``); a run resumed with others says what that means
    for exactness (:mod:`~convmlp_mm.engine.runner.train_data`). Training
    starts (``before_train``) ends the start-up signal handling of
    ``tools/train.py`` (:func:`convmlp_mm_cli.startup_signals`)."""

    _resuming = False
    _testing = False
    _lock: Optional[WorkDirLock] = None
    _locked = False  # on every rank, once rank 0 holds the lock
    _resumed_meta: Optional[dict] = None

    def __init__(self, *args, **kwargs) -> None:
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._release_lock()  # a run that failed to build holds nothing
            raise

    def setup_env(self, env_cfg: dict) -> None:
        super().setup_env(env_cfg)  # the distributed set-up, if any
        if _for_training.get():
            # Before the Runner makes its timestamp folder and log file and
            # dumps the config: a run refused here changes nothing there.
            self._take_lock()

    def _take_lock(self) -> None:
        rank, world_size = get_dist_info()
        failure = [None]
        if rank == 0:
            try:
                self._lock = WorkDirLock(self.work_dir).acquire()
            except WorkDirInUseError as exc:
                failure = [str(exc)]
        if world_size > 1:  # every rank reaches this: no rank waits alone
            broadcast_object_list(failure, src=0)
        if failure[0] is not None:
            raise WorkDirInUseError(failure[0])
        self._locked = True

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self._locked = False

    def call_hook(self, fn_name: str, **kwargs) -> None:
        super().call_hook(fn_name, **kwargs)
        if fn_name == 'before_train':
            # Start-up is over: a PreemptionHook has taken the signals over
            # in its before_train (it saves); without one, a signal ends the
            # run as it would have without tools/train.py's handler.
            end_startup_signals()

    def save_checkpoint(self, out_dir, filename, file_client_args=None,
                        save_optimizer=True, save_param_scheduler=True,
                        meta=None, by_epoch=True, backend_args=None):
        if meta is None or isinstance(meta, dict):
            meta = dict(meta or {})
            meta.setdefault(TRAIN_DATA_KEY, describe_train_data(
                self.train_dataloader, self.world_size))
        return super().save_checkpoint(
            out_dir, filename, file_client_args=file_client_args,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler, meta=meta,
            by_epoch=by_epoch, backend_args=backend_args)

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

    def test(self) -> dict:
        # The checkpoint must number the classes as the test data does.
        self._testing = True
        try:
            return super().test()
        finally:
            self._testing = False

    def resume(self, filename: str, *args, **kwargs) -> None:
        # A resumed run continues the same model: never skip a tensor.
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False
        meta, self._resumed_meta = self._resumed_meta or {}, None
        changes = train_data_changes(
            meta.get(TRAIN_DATA_KEY),
            describe_train_data(self.train_dataloader, self.world_size),
            self.iter)
        if changes:
            self.logger.warning(changes)

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
        if self._resuming:
            self._resumed_meta = meta if isinstance(meta, dict) else None
        if not skip and (is_legacy_meta(meta) or self._testing or
                         self._resuming):
            # Testing scores, and resuming trains, label i as the data's
            # i-th class: the file must have been trained so (the release's
            # mmdet 2 / mmseg 0.x files: the config's classes whenever they
            # load). One line naming both orders otherwise.
            loader = 'train_dataloader' if self._resuming else \
                'test_dataloader'
            check_checkpoint_label_map(meta, config_classes(self.cfg, loader),
                                       f'Checkpoint "{filename}"',
                                       'the config')
        load_state_into_model(model, checkpoint, filename,
                              skip_mismatched_heads=skip,
                              revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def train(self):
        if not self._locked:  # built outside building_for_training
            self._take_lock()
        try:
            return super().train()
        finally:
            for hook in self.hooks:
                if isinstance(hook, PreemptionHook):
                    hook.restore_signals()
            self._release_lock()
