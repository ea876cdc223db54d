"""Safe checkpoint loading: the one process-wide change importing
``convmlp_mm`` makes.

:func:`register_safe_loaders` (called by ``convmlp_mm/__init__.py``) makes
every scheme of mmengine's ``CheckpointLoader`` load with
``weights_only=True``: the ones registered now (local files, ``http(s)://``,
``open-mmlab://``, ``mmcls://``, ``torchvision://``, ``pavi://``, ...), any
a package registers later, and any put into its table by hand. After the
import, the backbone's ``init_cfg``, a config's ``load_from``, ``--resume``
and the tools all load through the same door. There is deliberately no
switch to turn this off: a checkpoint must never be able to run code.

What is torch's and mmengine's public API, and what is still patched:

- Local files and ``http(s)://`` are our own scheme loaders, registered
  with mmengine's public ``CheckpointLoader.register_scheme(force=True)``;
  they call :func:`safe_torch_load` (``weights_only=True``, errors that
  name the file, a cached download read without the network).
- The zoo schemes (``open-mmlab://``, ``mmcls://``, third-party ones)
  resolve a name to a URL and call ``torch.hub.load_state_dict_from_url``,
  which asks for ``weights_only=False``. Rather than re-implement each
  scheme, each load runs with torch's public switch
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``, which makes every ``torch.load``
  use ``weights_only=True`` whatever its caller passes (and
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is unset meanwhile). ``torch.load``
  itself is no longer replaced.
- Patched, because mmengine has no hook for it: the one public entry point
  ``CheckpointLoader.load_checkpoint``, which every scheme is reached
  through (mmengine's ``load_checkpoint``, ``Runner.resume``, ``init_cfg``,
  the inferencers), is wrapped so that the switch above is on during the
  load and every failure becomes a :class:`~convmlp_mm.errors.CheckpointError`
  naming the checkpoint and, when torch was reading one, the file on disk.
  mmengine's private ``_register_scheme``, ``_get_checkpoint_loader`` and
  ``_schemes`` are left alone.

Resuming: mmengine's own training checkpoints hold a ``HistoryBuffer`` (numpy
arrays and scalars) in their message hub. Exactly the classes that needs are
allow-listed (torch's public ``add_safe_globals``); the ``getattr`` its
pickle calls is served, through torch's ``safe_globals`` context and only
inside our loads, by a stand-in that resolves only ``HistoryBuffer``'s
statistics methods, because allow-listing ``builtins.getattr`` itself would
let a pickle reach any attribute of any allowed object.
"""
import contextlib
import functools
import os
import os.path as osp
import pickle
import re
import threading
import traceback
import zipfile
from typing import List, Optional
from urllib.parse import urlparse

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.errors import CheckpointError

# The statistics mmengine registers on HistoryBuffer; a checkpoint pickles
# them as getattr(HistoryBuffer, name) in the buffer's ``statistics_methods``.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner, name: str):
    """Stand-in for ``builtins.getattr`` while unpickling: resolves only
    ``HistoryBuffer.<statistic>``, refuses everything else."""
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({getattr(owner, "__name__", owner)!r}, '
        f'{name!r}); only HistoryBuffer statistics are allowed')


def mmengine_checkpoint_globals() -> List:
    """The classes (beyond torch's defaults) that an mmengine training
    checkpoint pickles: the message hub's ``HistoryBuffer`` and the numpy
    arrays and scalars inside it. Names written by numpy 1.x
    (``numpy.core``) map to the same functions, so checkpoints stay
    resumable across numpy versions."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:
        multiarray = np.core.multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype]
    # A dtype object is rebuilt as an instance of its numeric dtype class
    # (numpy.dtypes.Float64DType, ...): numbers only, no object/void dtypes.
    allowed += sorted({type(np.dtype(code)) for code in
                       '?' + np.typecodes['AllInteger'] +
                       np.typecodes['AllFloat']} - {np.dtype},
                      key=lambda cls: cls.__name__)
    for function in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed.append((function, f'{module}.{function.__name__}'))
    return allowed


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``weights_only``
    loading (torch >= 2.5; older torch cannot resume under safe loading)."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def _restricted_getattr():
    if hasattr(torch.serialization, 'safe_globals'):
        return torch.serialization.safe_globals(
            [(_history_buffer_statistic, 'builtins.getattr')])
    return contextlib.nullcontext()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ''


def read_error(exc: BaseException, name: str) -> CheckpointError:
    """The :class:`~convmlp_mm.errors.CheckpointError` for a ``torch.load``
    of ``name`` that raised ``exc``: a pickle that asks for more than
    tensors is refused, anything else is a damaged file."""
    if isinstance(exc, pickle.UnpicklingError):
        operand = re.search(r'Unsupported operand [^\n]*', str(exc))
        if not operand:
            # torch's own wording of what the pickle asked for, without the
            # boilerplate that suggests weights_only=False.
            detail = re.search(r'(Unsupported global|Trying to|Can only)'
                               r'[^\n]*', str(exc))
            return CheckpointError(
                f'Refusing to load checkpoint "{name}": it asks to run or '
                'build something other than tensors ('
                f'{detail.group(0) if detail else _first_line(exc)}). '
                'Checkpoints are loaded with weights_only=True so that a '
                'file cannot run code. If you wrote this file yourself and '
                'trust it, re-save it as a plain state dict '
                '(torch.save(model.state_dict(), path)).')
        # not a pickle stream at all: text, an HTML page, ...
        reason = operand.group(0)
    else:
        reason = f'{type(exc).__name__}: {_first_line(exc)}'
    return CheckpointError(
        f'Could not read checkpoint "{name}": it is truncated, corrupt or '
        f'not a PyTorch checkpoint ({reason}). Download or save it again.')


# What torch.load raises for a file it cannot (or may not) read.
READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError,
               ValueError, KeyError)
CHUNK = 1 << 20


REFETCH = 'Download it again, or publish it again from the original.'


def check_zip_crc(path: str, name: str, fix: str = REFETCH) -> None:
    """Raise :class:`~convmlp_mm.errors.CheckpointError` naming ``name``
    when a member of the zip checkpoint ``path`` does not match the CRC-32
    the zip records for it: bytes changed after the file was written (a
    bad copy, download or disk). ``torch.load`` itself does not look.

    Members recorded with CRC 0 are skipped: ``torch.save`` writes 0 when
    told not to compute them (``torch.serialization.set_crc32_options``).
    Files that are not zips (the legacy format) have no CRC; a zip too
    damaged to open is left to ``torch.load``'s own error. ``fix`` ends
    the message. Reading costs
    about 40% of a load from the page cache (200 MB: 0.04 s against
    0.10 s)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0 and info.file_size:
                    continue
                with archive.open(info) as member:
                    while member.read(CHUNK):
                        pass
    except zipfile.BadZipFile as exc:
        if 'CRC' not in str(exc):
            return
        member_name = str(exc).rsplit(' ', 1)[-1]
        raise CheckpointError(
            f'Checkpoint "{name}" is corrupted: the bytes of {member_name} '
            'do not match the CRC-32 recorded when it was written (changed '
            f'since: a failed copy or download, or a bad disk). {fix}') \
            from None
    except (OSError, EOFError, ValueError, NotImplementedError):
        return  # torch.load says what is wrong with the file


def safe_torch_load(source, name: str, map_location='cpu',
                    corrupted_fix: str = REFETCH):
    """``torch.load`` with ``weights_only=True`` and errors that name the file.

    mmengine training checkpoints (``--resume``) load too: see
    :func:`mmengine_checkpoint_globals`. A path is first checked against
    its zip's CRC-32s (:func:`check_zip_crc`).

    Args:
        source: A path or a binary file object.
        name: How to name the file in error messages (path or URL).
        corrupted_fix: What to do when the CRC check fails.
    """
    if isinstance(source, (str, os.PathLike)) and \
            zipfile.is_zipfile(source):
        check_zip_crc(source, name, corrupted_fix)
    try:
        with weights_only_loads():
            return torch.load(source, map_location=map_location,
                              weights_only=True)
    except READ_ERRORS as exc:
        raise read_error(exc, name) from exc


def _load_from_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint "{filename}" does not exist; check the path given '
            'to init_cfg, load_from or --resume.')
    return safe_torch_load(filename, filename, map_location)


def _load_from_http(filename: str, map_location=None, model_dir=None):
    # torch.hub's cache and download, but our own weights_only=True load.
    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        _download(filename, cached)
    if world_size > 1:
        barrier()
    # A download damaged in the cache would be read again on every run.
    return safe_torch_load(
        cached, f'{filename} (file {cached})', map_location,
        corrupted_fix=f'Delete {cached} so that the next run downloads it '
        'again.')


def _download(url: str, dst: str) -> None:
    try:
        torch.hub.download_url_to_file(url, dst, progress=False)
    except Exception as exc:  # urllib raises several unrelated types
        raise CheckpointError(
            f'Could not download checkpoint "{url}" ({type(exc).__name__}: '
            f'{exc}). Without network access, download it elsewhere and pass '
            'the local file instead, e.g. --cfg-options '
            'model.backbone.init_cfg.checkpoint=/path/to/'
            f'{osp.basename(urlparse(url).path)}') from exc


# The public switch of torch.load (torch >= 2.4) and its opposite.
FORCE_WEIGHTS_ONLY = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
FORCE_NO_WEIGHTS_ONLY = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
# Held during a load: the switches are process-wide, so one owner at a
# time; re-entrant for a load inside a load (open-mmlab:// calls http's).
_LOAD_LOCK = threading.RLock()
_depth = 0
_SAFE_MARK = '_convmlp_weights_only'


@contextlib.contextmanager
def weights_only_loads():
    """Inside this block every ``torch.load`` (torch.hub's, mmengine's, a
    third-party scheme's) loads with ``weights_only=True`` whatever its
    caller passes (torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``), and may call
    ``getattr`` for ``HistoryBuffer``'s statistics only. The environment is
    restored on leaving the outermost block."""
    global _depth
    with _LOAD_LOCK:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        saved = {k: os.environ.get(k)
                 for k in (FORCE_WEIGHTS_ONLY, FORCE_NO_WEIGHTS_ONLY)}
        os.environ[FORCE_WEIGHTS_ONLY] = '1'
        os.environ.pop(FORCE_NO_WEIGHTS_ONLY, None)
        _depth = 1
        try:
            with _restricted_getattr():
                yield
        finally:
            _depth = 0
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _file_torch_read(exc: BaseException) -> Optional[str]:
    """The path ``torch.load`` was reading where ``exc`` was raised (torch's
    messages name none), read from the traceback: ``''`` when it read a
    file object, None when ``exc`` was not raised inside ``torch.load``."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code is torch.serialization.load.__code__:
            source = frame.f_locals.get('f')
            return os.fspath(source) if isinstance(
                source, (str, os.PathLike)) else ''
    return None


def _guard_load_checkpoint() -> None:
    """Wrap ``CheckpointLoader.load_checkpoint`` (see the module docstring):
    :func:`weights_only_loads` around every scheme, and one
    :class:`~convmlp_mm.errors.CheckpointError` naming the checkpoint for
    a file torch cannot read, a scheme whose package is missing or a name
    it does not know."""
    if getattr(CheckpointLoader.load_checkpoint, _SAFE_MARK, False):
        return
    load = CheckpointLoader.load_checkpoint.__func__

    @functools.wraps(load)
    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        try:
            with weights_only_loads():
                return load(cls, filename, map_location, logger)
        except CheckpointError:
            raise
        except ImportError as exc:
            raise CheckpointError(
                f'Cannot load checkpoint "{filename}": its scheme needs a '
                f'package that is not installed ({exc}). Download the file '
                'elsewhere and pass its local path instead.') from exc
        except READ_ERRORS as exc:
            path = _file_torch_read(exc)
            if path is not None:
                shown = f'{filename} (file {path})' if path and \
                    path != str(filename) else filename
                raise read_error(exc, shown) from exc
            if isinstance(exc, KeyError):
                raise CheckpointError(
                    f'Cannot load checkpoint "{filename}": {exc} is not a '
                    'name this scheme knows. Check the spelling, or pass a '
                    'local path or a URL.') from exc
            raise

    setattr(load_checkpoint, _SAFE_MARK, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)


def register_safe_loaders() -> None:
    """Make every ``CheckpointLoader`` scheme, present and future, load with
    ``weights_only=True``; local files and ``http(s)://`` go through
    :func:`safe_torch_load` directly (clearer errors, no network needed for
    a cached file). Idempotent."""
    allow_mmengine_checkpoint_globals()
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(_load_from_http)
    _guard_load_checkpoint()


__all__ = [
    'allow_mmengine_checkpoint_globals', 'check_zip_crc',
    'mmengine_checkpoint_globals', 'read_error', 'register_safe_loaders',
    'safe_torch_load', 'weights_only_loads'
]
